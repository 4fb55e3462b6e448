// qemu-img command lines as libvirt 9 builds them (storage_util.c): create and convert,
// resize, and resize of a LUKS-encrypted volume. Pure argv builders: nothing runs here
// (qemu-img-run.ts runs them).
import type { Encryption } from '../proto/cistern/v1/storage.js';

export interface QemuImgCreateSpec {
  /** Output format as qemu-img names it (raw+luks => 'luks'). */
  format: string;
  path: string;
  /** Bytes; the argv carries ceil(capacity / 1024) 'K' as libvirt does. */
  capacity?: bigint;
  /** Bytes; decides preallocation=metadata (allocation < capacity) or falloc. */
  allocation?: bigint;
  preallocMetadata?: boolean;
  /** Explicit preallocation mode (overrides preallocMetadata's choice). */
  preallocation?: string;
  backingPath?: string;
  backingFormat?: string;
  /**
   * The size exactly, in bytes, instead of capacity's K: a create with a backing store and no
   * capacity gets the backing store's size (backing-size.ts), as qemu-img would have read it.
   */
  sizeBytes?: bigint;
  /**
   * `-u`: qemu-img records the backing path without opening it (it needs the size on the
   * command line then). For a relative backing path with a target that is not the volume's
   * own name (/dev/fd/3): qemu-img would look for it next to that name.
   */
  backingUnopened?: boolean;
  compat?: string;
  clusterSize?: bigint;
  lazyRefcounts?: boolean;
  extendedL2?: boolean;
  nocow?: boolean;
  /** qemu-img convert input. */
  inputPath?: string;
  inputFormat?: string;
  /** Encryption: secret object alias and file holding the passphrase. */
  secret?: { alias: string; file: string; qcow2: boolean; cipher?: Encryption['cipher']; ivgen?: Encryption['ivgen'] };
}

/** qemu's option syntax: a ',' inside a value is written ',,'. */
function escapeComma(s: string): string {
  return s.replace(/,/g, ',,');
}

/** The -o option string in libvirt 9's order (storageBackendCreateQemuImgOpts). */
export function qemuImgOptions(spec: QemuImgCreateSpec): string {
  const o: string[] = [];
  if (spec.backingPath && !spec.inputPath) o.push(`backing_fmt=${spec.backingFormat ?? 'raw'}`);
  if (spec.secret) {
    const prefix = spec.secret.qcow2 ? 'encrypt.' : '';
    if (spec.secret.qcow2) o.push('encrypt.format=luks');
    o.push(`${prefix}key-secret=${spec.secret.alias}`);
    const c = spec.secret.cipher;
    if (c?.name) {
      o.push(`${prefix}cipher-alg=${escapeComma(c.name)}-${c.size}`);
      if (c.mode) o.push(`${prefix}cipher-mode=${escapeComma(c.mode)}`);
      if (c.hash) o.push(`${prefix}hash-alg=${escapeComma(c.hash)}`);
      const iv = spec.secret.ivgen;
      if (iv?.name) {
        o.push(`${prefix}ivgen-alg=${escapeComma(iv.name)}`);
        if (iv.hash) o.push(`${prefix}ivgen-hash-alg=${escapeComma(iv.hash)}`);
      }
    }
  }
  if (spec.preallocation) {
    o.push(`preallocation=${spec.preallocation}`);
  } else if (spec.preallocMetadata) {
    const sizeK = divUp(spec.capacity ?? 0n, 1024n);
    const allocK = divUp(spec.allocation ?? spec.capacity ?? 0n, 1024n);
    o.push(sizeK > allocK ? 'preallocation=metadata' : 'preallocation=falloc');
  }
  if (spec.nocow) o.push('nocow=on');
  if (spec.compat) o.push(`compat=${spec.compat}`);
  else if (spec.format === 'qcow2') o.push('compat=0.10');
  if (spec.clusterSize && spec.clusterSize > 0n) o.push(`cluster_size=${spec.clusterSize}`);
  if (spec.lazyRefcounts && spec.format === 'qcow2') o.push('lazy_refcounts');
  if (spec.extendedL2 && spec.format === 'qcow2') o.push('extended_l2=on');
  return o.join(',');
}

/** ceil(a / b) for positive sizes. */
export function divUp(a: bigint, b: bigint): bigint {
  return (a + b - 1n) / b;
}

/**
 * qemu-img argv as libvirt 9 builds it (virStorageBackendCreateQemuImgCmdFromVol), with
 * `--` before the positional arguments:
 *   qemu-img create -f FMT [[-u] -b BACKING] [--object secret,...] [-o OPTS] -- PATH SIZEK|BYTES
 *   qemu-img convert -f IN -O FMT [--object secret,...] [-o OPTS] -- INPUT PATH
 */
export function qemuImgCreateArgv(spec: QemuImgCreateSpec, qemuImg = 'qemu-img'): string[] {
  const argv = [qemuImg];
  if (spec.inputPath) argv.push('convert', '-f', spec.inputFormat ?? 'raw', '-O', spec.format);
  else argv.push('create', '-f', spec.format);
  if (spec.backingPath && !spec.inputPath) argv.push(...(spec.backingUnopened ? ['-u'] : []), '-b', spec.backingPath);
  if (spec.secret) argv.push('--object', `secret,id=${spec.secret.alias},file=${escapeComma(spec.secret.file)}`);
  const opts = qemuImgOptions(spec);
  if (opts) argv.push('-o', opts);
  argv.push('--');
  if (spec.inputPath) argv.push(spec.inputPath);
  argv.push(spec.path);
  if (spec.sizeBytes !== undefined && !spec.inputPath) argv.push(String(spec.sizeBytes));
  else if (createSizeGiven(spec)) argv.push(`${divUp(spec.capacity ?? 0n, 1024n)}K`);
  return argv;
}

/** A create's command line has the size, except with a backing file and capacity 0 and no sizeBytes (qemu-img takes the backing file's). */
export function createSizeGiven(spec: QemuImgCreateSpec): boolean {
  return !spec.inputPath && (spec.sizeBytes !== undefined || divUp(spec.capacity ?? 0n, 1024n) > 0n || !spec.backingPath);
}

/** One image of a `qemu-img convert -n`: its spec and the format qemu-img is told. */
export interface QemuImgConvertEnd {
  /** a json: spec (qemuDescriptorChain, qemuDescriptorTarget) */
  image: string;
  format: string;
}

/**
 * The second step of libvirt 9's clone of or into a LUKS-encrypted volume
 * (storageBackendDoCreateQemuImg, VIR_STORAGE_VOL_ENCRYPT_CONVERT): the target was created at
 * its capacity, with its encryption, and the source's data is copied into it, each end
 * unlocked by its own secret object:
 *   qemu-img convert -n -f IN -O OUT [--object secret,...]... -- INPUT TARGET
 * libvirt names both ends with --image-opts; json: specs say the same and keep the source's
 * backing chain to the descriptors the agent opened.
 */
export function qemuImgConvertIntoArgv(input: QemuImgConvertEnd, target: QemuImgConvertEnd, secrets: readonly { alias: string; file: string }[], qemuImg = 'qemu-img'): string[] {
  const argv = [qemuImg, 'convert', '-n', '-f', input.format, '-O', target.format];
  for (const s of secrets) argv.push('--object', `secret,id=${s.alias},file=${escapeComma(s.file)}`);
  argv.push('--', input.image, target.image);
  return argv;
}

/** qemu-img resize [--shrink] -- PATH BYTES (capacity rounded up to 512 as libvirt does). */
export function qemuImgResizeArgv(path: string, capacity: bigint, shrink: boolean, qemuImg = 'qemu-img'): string[] {
  const rounded = divUp(capacity, 512n) * 512n;
  return [qemuImg, 'resize', ...(shrink ? ['--shrink'] : []), '--', path, String(rounded)];
}

/**
 * A qemu image spec for an open descriptor (/proc/PID/fd/N) of a `format` image: its backing
 * chain left closed, or the one given (qemuDescriptorChainNode, descriptors the agent opened
 * and checked).
 */
export function qemuDescriptorTarget(format: string, fdPath: string, backing: QemuImageNode | null = null): string {
  return `json:${JSON.stringify({ driver: format, backing, file: { driver: 'file', filename: fdPath } })}`;
}

/** One image of a qemu json: spec: its driver, its file, the image it is backed by. */
export type QemuImageNode = Record<string, unknown>;

/** One file of an image chain as qemu is to open it: through a descriptor it was handed. */
export interface DescriptorLayer {
  /** the qemu driver: the format it is read as */
  format: string;
  /** a block device (qemu's 'host_device'), else a regular file ('file') */
  blockDevice: boolean;
  /**
   * the id of the secret object that unlocks it, for a LUKS-encrypted layer: a raw one is then
   * read through qemu's 'luks' driver, a qcow2 one with `encrypt.key-secret`
   */
  keySecret?: string;
}

/**
 * A qemu image spec for a whole chain handed over as descriptors, the first layer as the
 * program's fd `firstFd`, the next as `firstFd + 1` ...: each layer's format is given (nothing
 * probed) and its backing is the next layer, spelled out, or null after the last: qemu opens no
 * file by a name a header holds, only /dev/fd/N, the files the agent opened and checked.
 */
export function qemuDescriptorChain(layers: readonly DescriptorLayer[], firstFd: number): string {
  return `json:${JSON.stringify(qemuDescriptorChainNode(layers, firstFd))}`;
}

/** qemuDescriptorChain's spec as the object it is, to be the backing of another image. */
export function qemuDescriptorChainNode(layers: readonly DescriptorLayer[], firstFd: number): QemuImageNode {
  let node: QemuImageNode | null = null;
  for (let i = layers.length - 1; i >= 0; i--) {
    const layer = layers[i]!;
    const file = { driver: layer.blockDevice ? 'host_device' : 'file', filename: `/dev/fd/${firstFd + i}` };
    // raw names no other file; every other format's header may, so its backing is always said
    if (layer.keySecret && layer.format === 'raw') node = { driver: 'luks', 'key-secret': layer.keySecret, file };
    else if (layer.keySecret) node = { driver: layer.format, encrypt: { 'key-secret': layer.keySecret }, backing: node, file };
    else node = layer.format === 'raw' ? { driver: 'raw', file } : { driver: layer.format, backing: node, file };
  }
  if (!node) throw new RangeError('an image chain has at least one file');
  return node;
}

/** A qemu object id: letters, digits, '-', '.', '_', starting with a letter (qemu's id_wellformed). */
const QEMU_ID = /^[A-Za-z][A-Za-z0-9._-]*$/;

/**
 * The id of the passphrase's secret object: libvirt's `NAME_encrypt0` when the volume name
 * makes a well-formed qemu id; otherwise (a name starting with a digit, or holding a space,
 * a comma, a colon ...) qemu-img would refuse it ("Parameter 'id' expects an identifier"),
 * and a comma would end the option: a fixed id then.
 */
export function qemuSecretAlias(volumeName: string): string {
  const alias = `${volumeName}_encrypt0`;
  return QEMU_ID.test(alias) ? alias : 'volume_encrypt0';
}

export interface QemuImgEncryptedResizeSpec {
  /** The volume's format: raw (a LUKS container) or qcow2 (LUKS inside). */
  format: 'raw' | 'qcow2';
  /** Where qemu-img opens the image: the agent's checked descriptor (/proc/PID/fd/N). */
  path: string;
  /** Bytes; rounded up to 512 as libvirt does. */
  capacity: bigint;
  shrink: boolean;
  secret: { alias: string; file: string };
  /** qcow2: the backing chain qemu-img is to open (a growing overlay's), else none (null) */
  backing?: QemuImageNode | null;
}

/**
 * qemu-img resize of a LUKS-encrypted volume as libvirt 9 builds it (storageBackendResizeQemuImg
 * with storageBackendCreateQemuImgSecretObject and storageBackendResizeQemuImgImageOpts), with
 * `--` before the positional arguments:
 *   raw:   qemu-img resize [--shrink] --object secret,id=A,file=F --image-opts -- driver=luks,key-secret=A,file.filename=PATH BYTES
 *   qcow2: qemu-img resize [--shrink] --object secret,id=A,file=F -- json:{qcow2, encrypt.key-secret=A, backing null or the chain, file PATH} BYTES
 * A qcow2 is named by a json: spec rather than --image-opts so that its backing chain is what
 * the agent opened (as qemuDescriptorTarget: the chain of a growing overlay, whose added area
 * qemu makes read as zeros, else none: qemu-img could not find a relative backing file next to
 * a /proc path; --image-opts can only say so with the deprecated `backing=`).
 */
export function qemuImgResizeEncryptedArgv(spec: QemuImgEncryptedResizeSpec, qemuImg = 'qemu-img'): string[] {
  const rounded = divUp(spec.capacity, 512n) * 512n;
  const { alias, file } = spec.secret;
  const argv = [qemuImg, 'resize', ...(spec.shrink ? ['--shrink'] : []), '--object', `secret,id=${alias},file=${escapeComma(file)}`];
  if (spec.format === 'raw') {
    argv.push('--image-opts', '--', `driver=luks,key-secret=${alias},file.filename=${escapeComma(spec.path)}`);
  } else {
    const image = { driver: 'qcow2', encrypt: { 'key-secret': alias }, backing: spec.backing ?? null, file: { driver: 'file', filename: spec.path } };
    argv.push('--', `json:${JSON.stringify(image)}`);
  }
  argv.push(String(rounded));
  return argv;
}


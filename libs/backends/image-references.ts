// The other files qemu opens when it opens an image: its backing chain, as qemu itself would
// find it. A volume's header is the word of whoever wrote the volume (an upload, a guest), and
// qemu-img convert copies the whole chain into the clone: a qcow2 whose backing file is
// /etc/shadow, cloned to raw and downloaded, hands out the host's file. So before qemu (or an
// in-process copy) reads an image, every file it would open is named here and the caller
// admits each one, or the work is refused. Where this reader cannot be sure of what qemu would
// open (a backing name it cannot read, a protocol, an external data file, a VMDK descriptor),
// it refuses rather than guesses.
import { closeSync, fstatSync, openSync, readlinkSync, readSync, type BigIntStats } from 'node:fs';
import { isAbsolute } from 'node:path';
import { CisternError, FailedPreconditionError, PermissionDeniedError } from '../errors/errors.js';
import { printable } from '../api/names.js';
import { MAX_HEADER, probeBuffer, readHeaderSync, type ProbeResult } from './format-probe.js';
import { O_PATH, openProbeSync } from './safe-open.js';
import { onOwnMount } from '../os/mount-namespace.js';

/** qemu's own limit on a chain is far higher; a longer one here is refused, not walked. */
export const MAX_CHAIN_LENGTH = 16;

/**
 * Admits one file the chain reaches, by where the descriptor opened for it really is (`real`,
 * the kernel's own record of the open file): returns, or throws PERMISSION_DENIED. `name` is
 * how the file was named (for the message), `why` how it is reached.
 */
export type AdmitFile = (name: string, real: string, why: string) => void;

/** One file of an image's chain, opened and admitted. */
export interface ImageLayer {
  /** the name qemu would give it: the start as given, then as each header names the next (relative ones resolved) */
  name: string;
  /** where the descriptor's file is (/proc/self/fd at the open) */
  real: string;
  /** a read-only descriptor of this process: every read of the file goes through it */
  fd: number;
  stat: BigIntStats;
  /** how qemu reads it: the declared format, else the probed one */
  format: string;
  probe: ProbeResult;
}

/**
 * An image and its backing chain as the check opened them: the files are read from these
 * descriptors afterwards (qemu-img gets them as /dev/fd/N), never by name again, so a name
 * swapped for a link after the check leads nowhere. Close it when the work is done.
 */
export interface ImageChain {
  /** the start first; ends at a file that names no other (raw, or no backing file) */
  layers: ImageLayer[];
  /** the start is not a file or block device (a directory): it is layers[0]'s stat, no further layer */
  notAFile?: BigIntStats;
  /** a file the chain names that could not be opened (only without `wholeChain`): qemu would fail on it */
  unopened?: { name: string; code: string; depth: number };
  close(): void;
}

const QCOW2_INCOMPAT_DATA_FILE = 1n << 2n;
const VMDK_DESC_SIZE = 20 * 512;
// VMDK4Header after the 'KDMV' magic (little endian): version, flags, capacity, granularity, desc_offset
const VMDK4_CAPACITY = 12;
const VMDK4_DESC_OFFSET = 28;
const VMDK_TEXT_VERSION = /^version=[123]\r?\n/;

/**
 * qemu reads 'nbd:...', 'json:{...}', 'file:...' as a protocol or an option string, not as a
 * file name: any name with a ':' before its first '/' (libvirt's virStorageIsFile says the same).
 */
export function isProtocol(name: string): boolean {
  return /^[^/]*:/.test(name);
}

/** qemu's vmdk_probe on text: after comment and blank lines, a 'version=1|2|3' line. */
function looksLikeVmdkDescriptor(buf: Buffer): boolean {
  const text = buf.toString('latin1');
  let p = 0;
  while (p < text.length) {
    if (text[p] === '#') {
      const nl = text.indexOf('\n', p);
      if (nl < 0) return false;
      p = nl + 1;
    } else if (text[p] === ' ' || text[p] === '\r' || text[p] === '\n') {
      while (p < text.length && text[p] === ' ') p++;
      if (text[p] === '\r') p++;
      if (p < text.length && text[p] !== '\n') return false;
      p++;
    } else {
      return VMDK_TEXT_VERSION.test(text.slice(p, p + 11));
    }
  }
  return false;
}

/**
 * The backing file name stored in a qcow/qcow2 header, read where qemu reads it (the header's
 * offset may lie beyond the bytes a probe reads), or undefined when it has none.
 */
function qcowBackingName(fd: number, header: Buffer, image: string): string | undefined {
  const offset = header.readBigUInt64BE(8);
  const size = header.readUInt32BE(16);
  if (offset === 0n || size === 0) return undefined;
  if (size > 1023 || offset > BigInt(Number.MAX_SAFE_INTEGER)) throw unreadable(image, 'its backing file name is out of range');
  const name = Buffer.alloc(size);
  if (readSync(fd, name, 0, size, Number(offset)) !== size) throw unreadable(image, 'its backing file name lies beyond its end');
  // qemu copies it into a C string: the name ends at its first NUL, and an empty one is none
  const end = name.indexOf(0);
  const text = name.subarray(0, end < 0 ? size : end).toString('utf8');
  return text === '' ? undefined : text;
}

/**
 * qemu's vmdk_open_vmdk4: a KDMV header whose capacity is 0 and that has a descriptor offset
 * is not an extent but a wrapper of the descriptor at that offset, which qemu then opens as a
 * descriptor file, extents and all ("RW 8 FLAT "/etc/shadow" 0"). A header too short to say is
 * refused as one: qemu would not open it anyway.
 */
function vmdkWrapsDescriptor(header: Buffer): boolean {
  if (header.length < VMDK4_DESC_OFFSET + 8) return true;
  return header.readBigUInt64LE(VMDK4_CAPACITY) === 0n && header.readBigUInt64LE(VMDK4_DESC_OFFSET) !== 0n;
}

/** qemu's vmdk_parent_open: 'parentFileNameHint="..."' in the 10 KiB of descriptor at 0x200. */
function vmdkParentName(fd: number, image: string): string | undefined {
  const desc = Buffer.alloc(VMDK_DESC_SIZE);
  const n = readSync(fd, desc, 0, VMDK_DESC_SIZE, 0x200);
  const text = desc.subarray(0, n).toString('latin1');
  const at = text.indexOf('parentFileNameHint="');
  if (at < 0) return undefined;
  const from = at + 'parentFileNameHint="'.length;
  const end = text.indexOf('"', from);
  if (end < 0) throw unreadable(image, 'its parentFileNameHint has no end');
  return end === from ? undefined : Buffer.from(text.slice(from, end), 'latin1').toString('utf8');
}

function unreadable(image: string, why: string): PermissionDeniedError {
  return new PermissionDeniedError(
    `image '${printable(image, 200)}' cannot be checked: ${why}; refusing to let qemu open a chain whose files are not known`,
  );
}

/**
 * Opens `path` for reading the way the chain check does: the name is resolved once (links
 * followed, as qemu follows them) into an O_PATH descriptor, which opens nothing for I/O
 * (a character device's driver does not see it); the kernel's record of where that
 * descriptor's file is goes to `admit`; only an admitted regular file or block device is then
 * opened for reading, through the O_PATH descriptor (/proc/self/fd/N), so the file read is the
 * file admitted whatever its name leads to by then.
 */
function openAdmitted(name: string, why: string, admit: AdmitFile): { fd: number; real: string; stat: BigIntStats } {
  const pathFd = openSync(name, O_PATH);
  try {
    const real = readlinkSync(`/proc/self/fd/${pathFd}`);
    // a name from another mount namespace is whatever that namespace's owner made it
    if (!onOwnMount(pathFd)) {
      throw new PermissionDeniedError(
        `${why} '${printable(name, 200)}' leads into another mount namespace (a link through /proc/PID/root or /proc/PID/fd), where its real place cannot be checked`,
      );
    }
    admit(name, real, why);
    const stat = fstatSync(pathFd, { bigint: true });
    if (!stat.isFile() && !stat.isBlockDevice()) return { fd: -1, real, stat };
    return { fd: openProbeSync(`/proc/self/fd/${pathFd}`), real, stat };
  } finally {
    closeSync(pathFd);
  }
}

function closeAll(layers: readonly ImageLayer[]): void {
  for (const l of layers) {
    try {
      closeSync(l.fd);
    } catch {
      /* read-only: nothing to lose */
    }
  }
}

/**
 * Opens the image named `start` and every file qemu would open for it, read as `format`
 * ('' = as qemu would probe it; 'probe' = as this reader probes it, what a clone passes to
 * qemu-img as -f): each file is admitted (`admit`, on its descriptor) before a byte of it is
 * read. Throws PERMISSION_DENIED for what cannot be checked, and what `admit` throws. A file
 * of the chain that cannot be opened ends the chain (`unopened`), unless `wholeChain`: then it
 * is FAILED_PRECONDITION here (a create records the chain with `qemu-img create -u`, unopened,
 * and would make an overlay whose base is missing instead of failing).
 */
export function openImageChain(start: string, format: string, admit: AdmitFile, why: string, { wholeChain = false } = {}): ImageChain {
  const layers: ImageLayer[] = [];
  const chain: ImageChain = { layers, close: () => closeAll(layers.splice(0)) };
  try {
    walkChain(start, format, admit, why, wholeChain, chain);
    return chain;
  } catch (err) {
    chain.close();
    throw err;
  }
}

function walkChain(path: string, format: string, admit: AdmitFile, why: string, wholeChain: boolean, chain: ImageChain): void {
  let image = path; // the name qemu uses for the image: relative backing names resolve against its directory
  let declared = format;
  let reached = why;
  for (let depth = 0; ; depth++) {
    if (depth > MAX_CHAIN_LENGTH) throw unreadable(path, `its backing chain is longer than ${MAX_CHAIN_LENGTH} files`);
    const cannotOpen = (code: string): void => {
      if (!wholeChain) {
        chain.unopened = { name: image, code, depth };
        return;
      }
      throw new FailedPreconditionError(
        `inaccessible backing store volume '${printable(path, 200)}': ` +
          `${depth === 0 ? 'it' : `its backing chain names '${printable(image, 200)}', which`} cannot be opened (${code})`,
      );
    };
    let opened: { fd: number; real: string; stat: BigIntStats };
    try {
      opened = openAdmitted(image, reached, admit);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (!code || err instanceof CisternError) throw err;
      return cannotOpen(code);
    }
    if (opened.fd < 0) {
      // a directory (the clone of a directory volume is refused by its caller); deeper in a chain, qemu fails on it
      if (depth === 0 && !wholeChain) chain.notAFile = opened.stat;
      else cannotOpen('not a regular file or block device');
      return;
    }
    const { fd, stat: st } = opened;
    const header = readHeaderSync(fd, st.isFile() ? Number(st.size) : MAX_HEADER);
    const probe = probeBuffer(header, st.size);
    // qemu takes a recorded or requested format as it is; raw reads no other file
    const effective = declared === 'probe' ? probe.format : declared || (probe.format === 'raw' && looksLikeVmdkDescriptor(header) ? 'vmdk-descriptor' : probe.format);
    const layer: ImageLayer = { name: image, real: opened.real, fd, stat: st, format: effective === 'iso' ? 'raw' : effective, probe };
    chain.layers.push(layer);
    if (effective === 'raw' || effective === 'iso') return;
    if (effective === 'vmdk-descriptor') {
      throw unreadable(image, 'it is a VMDK descriptor, which names other files (extents) for qemu to read');
    }
    if (effective !== probe.format) {
      throw unreadable(image, `it is read as '${printable(effective)}' but its header says '${probe.format}'`);
    }
    refuseFilesBesidesChain(image, probe, header);
    let next: { name: string; format: string } | undefined;
    switch (effective) {
      case 'qcow':
      case 'qcow2': {
        const name = qcowBackingName(fd, header, image);
        if (name !== undefined) {
          if (!probe.backingStore || probe.backingStore.raw !== name) throw unreadable(image, 'its backing file name is not where a probe reads it');
          next = { name, format: probe.backingStore.format };
        }
        break;
      }
      case 'vmdk': {
        const name = vmdkParentName(fd, image);
        if (name !== undefined) next = { name, format: '' };
        break;
      }
      case 'qed':
      case 'cow':
        if (probe.backingStore) next = { name: probe.backingStore.raw, format: probe.backingStore.format };
        break;
      default:
        // vpc, vdi, bochs, ploop, dir, luks ...: formats that name no other file
        return;
    }
    if (!next) return;
    if (isProtocol(next.name)) {
      throw new PermissionDeniedError(
        `image '${printable(image, 200)}' names backing '${printable(next.name, 200)}', a protocol or option string qemu would open; only backing files inside this host's pools are allowed`,
      );
    }
    // as qemu: the directory of the image's name, the backing name appended as it is (the kernel resolves '..')
    image = isAbsolute(next.name) ? next.name : `${image.slice(0, image.lastIndexOf('/') + 1)}${next.name}`;
    reached = `the backing file of '${printable(path, 200)}'`;
    declared = next.format;
  }
}

/**
 * Refuses (PERMISSION_DENIED) an image whose header has qemu open files besides its backing
 * chain, by names no check sees: a qcow2's external data file (opened read-write by a resize,
 * which sets its size), a VMDK header wrapping a descriptor (its extents). `probe` is the
 * probe of `header`, the image's first bytes.
 */
function refuseFilesBesidesChain(image: string, probe: ProbeResult, header: Buffer): void {
  if (probe.format === 'qcow2' && probe.version === 3 && header.length >= 80 && (header.readBigUInt64BE(72) & QCOW2_INCOMPAT_DATA_FILE) !== 0n) {
    throw unreadable(image, 'it keeps its data in an external data file');
  }
  if (probe.format === 'vmdk' && vmdkWrapsDescriptor(header)) {
    throw unreadable(image, 'it is a VMDK whose header points at a text descriptor, which names other files (extents) for qemu to read');
  }
}

/**
 * The check of an image qemu-img opens alone, its backing chain closed or checked apart (a
 * resize): the image open as `fd` (`size` bytes) must name no file besides its backing chain
 * (refuseFilesBesidesChain). `image` names it in the refusal.
 */
export function checkImageAlone(image: string, fd: number, size: bigint): void {
  const header = readHeaderSync(fd, size > BigInt(MAX_HEADER) ? MAX_HEADER : Number(size));
  refuseFilesBesidesChain(image, probeBuffer(header, size), header);
}

/** The chain check alone: opens the chain (openImageChain) and closes it. */
export function checkImageReferences(start: string, format: string, admit: AdmitFile, why: string, options: { wholeChain?: boolean } = {}): void {
  openImageChain(start, format, admit, why, options).close();
}

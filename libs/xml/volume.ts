// <volume> documents <-> VolumeDefinition in the context of their pool
// (virStorageVolDefParseXML / virStorageVolDefFormat in src/conf/storage_conf.c).
import {
  type BackingStore,
  type Encryption,
  type PoolDefinition,
  PoolType,
  type Timestamps,
  type VolumeDefinition,
  type VolumeSourceDevice,
  type VolumeTarget,
} from '../proto/cistern/v1/storage.js';
import { Ctx, Out, attrOf, checkName, checkPath, checkText, childText, esc, normalizePermissions, readPermissions, sizeElement, writePermissions } from './common.js';
import { isDirLikePool, poolTypeInfo, volumeTypeFor, volumeTypeFromString, volumeTypeToString } from './formats.js';
import { normalizeSecret, writeSecret } from './pool.js';
import { attr, child, childrenNamed, parseXmlDocument, rootProblem, shown } from './safe-parse.js';
import { MAX_SIZE_BYTES, withoutLeadingBlanks } from './units.js';

export interface VolumeParseOptions {
  /**
   * The document describes a clone (vol-create-from): capacity may be omitted and comes from
   * the source volume, and an allocation not given stays unset (libvirt's has_allocation):
   * what it becomes is decided against the source (storageVolCreateXMLFrom takes the capacity
   * once raised to the source's; a structured definition keeps the source's).
   */
  cloning?: boolean;
  /**
   * A clone's structured definition on its way to the agent, which lays it over the source's:
   * a format it does not name stays empty, so the clone keeps its source's (as virsh vol-clone,
   * which sends the source's XML), where the pool's default would turn a qcow2 clone into a raw
   * one. Not for a clone given as XML (libvirt reads that alone: the pool's default format),
   * nor for documents that are printed back.
   */
  formatFromSource?: boolean;
}

const ENCRYPTION_FORMATS = ['default', 'qcow', 'luks'];
const VOLUME_FEATURES = ['lazy_refcounts', 'extended_l2'];

function emptyTarget(): VolumeTarget {
  return {
    path: '',
    format: '',
    permissions: undefined,
    timestamps: undefined,
    compat: '',
    nocow: false,
    clusterSize: 0n,
    lazyRefcounts: false,
    encryption: undefined,
    extendedL2: false,
  };
}

// ---------------------------------------------------------------- reading XML

function readEncryption(ctx: Ctx, el: ReturnType<typeof child> & object, key: string): Encryption {
  ctx.at(key, el.path, el.line);
  const format = attrOf(ctx, el, 'format', `${key}.format`);
  if (format === undefined || format === '') ctx.fail(`${key}.format`, `unknown volume encryption format; allowed: ${ENCRYPTION_FORMATS.join(', ')}`);
  if (attrOf(ctx, el, 'engine', `${key}.engine`) !== undefined) {
    ctx.fail(`${key}.engine`, "the encryption 'engine' attribute is not supported by Cistern; leave it out (qemu is used)");
  }
  const enc: Encryption = { format, secrets: [], cipher: undefined, ivgen: undefined };
  childrenNamed(el, 'secret').forEach((s, i) => {
    const k = `${key}.secrets[${i}]`;
    ctx.at(k, s.path, s.line);
    const type = attrOf(ctx, s, 'type', `${k}.type`);
    if (type === undefined || type === '') ctx.fail(`${k}.type`, "unknown volume encryption secret type; allowed: passphrase");
    enc.secrets.push({ type, uuid: attrOf(ctx, s, 'uuid', `${k}.uuid`) ?? '', usage: attrOf(ctx, s, 'usage', `${k}.usage`) ?? '' });
  });
  if (format === 'luks') {
    const c = child(el, 'cipher');
    if (c) {
      const name = attrOf(ctx, c, 'name', `${key}.cipher.name`);
      if (name === undefined) ctx.fail(`${key}.cipher.name`, "cipher info missing 'name' attribute");
      const size = attrOf(ctx, c, 'size', `${key}.cipher.size`);
      if (size === undefined || !/^[0-9]{1,10}$/.test(withoutLeadingBlanks(size)) || Number(size) > 0xffffffff) {
        ctx.fail(`${key}.cipher.size`, `cipher 'size' '${shown(size ?? '')}' must be an unsigned integer (bits), e.g. 256`);
      }
      enc.cipher = { name, size: Number(size), mode: attrOf(ctx, c, 'mode', `${key}.cipher.mode`) ?? '', hash: attrOf(ctx, c, 'hash', `${key}.cipher.hash`) ?? '' };
    }
    const iv = child(el, 'ivgen');
    if (iv) {
      if (!enc.cipher) ctx.fail(`${key}.ivgen`, 'ivgen element found, but cipher is missing');
      const name = attrOf(ctx, iv, 'name', `${key}.ivgen.name`);
      if (name === undefined) ctx.fail(`${key}.ivgen.name`, 'missing ivgen info name string');
      enc.ivgen = { name, hash: attrOf(ctx, iv, 'hash', `${key}.ivgen.hash`) ?? '' };
    }
  }
  return enc;
}

/**
 * Parses a libvirt <volume> document for a pool. The key, timestamps, source extents and
 * physical size are output only and ignored; the volume type and, for file and logical pools,
 * the target path are decided by the pool.
 */
export function parseVolumeXml(xml: string, pool: PoolDefinition, opts: VolumeParseOptions = {}): VolumeDefinition {
  const root = parseXmlDocument(xml, 'volume');
  const ctx: Ctx = new Ctx();
  const wrongRoot = rootProblem(root, 'volume');
  if (wrongRoot) ctx.fail('', wrongRoot);
  const typeAttr = attrOf(ctx, root, 'type', 'type');
  if (typeAttr !== undefined) ctx.wrap('type', () => volumeTypeFromString(typeAttr));

  const vol: VolumeDefinition = {
    type: 0,
    name: childText(ctx, root, 'name', 'name') ?? '',
    key: '',
    capacity: undefined,
    allocation: undefined,
    physical: undefined,
    sourceDevices: [],
    target: emptyTarget(),
    backingStore: undefined,
  };

  const bs = child(root, 'backingStore');
  if (bs) {
    ctx.at('backing_store', bs.path, bs.line);
    const path = childText(ctx, bs, 'path', 'backing_store.path');
    if (path !== undefined) {
      const fmt = child(bs, 'format');
      vol.backingStore = {
        path,
        format: fmt ? attrOf(ctx, fmt, 'type', 'backing_store.format') ?? '' : '',
        permissions: readPermissions(ctx, child(bs, 'permissions'), 'backing_store.permissions'),
        timestamps: undefined, // output only, as libvirt
      };
    }
  }
  const cap = child(root, 'capacity');
  if (cap && cap.text !== '') vol.capacity = sizeElement(ctx, cap, 'capacity');
  else if (cap) ctx.at('capacity', cap.path, cap.line);
  const alloc = child(root, 'allocation');
  if (alloc && alloc.text !== '') vol.allocation = sizeElement(ctx, alloc, 'allocation');

  const t = child(root, 'target');
  const target = vol.target!;
  if (t) {
    ctx.at('target', t.path, t.line);
    target.path = childText(ctx, t, 'path', 'target.path') ?? '';
    const fmt = child(t, 'format');
    if (fmt) target.format = attrOf(ctx, fmt, 'type', 'target.format') ?? '';
    target.permissions = readPermissions(ctx, child(t, 'permissions'), 'target.permissions');
    const enc = child(t, 'encryption');
    if (enc) target.encryption = readEncryption(ctx, enc, 'target.encryption');
    target.compat = childText(ctx, t, 'compat', 'target.compat') ?? '';
    target.nocow = child(t, 'nocow') !== undefined;
    const cs = child(t, 'clusterSize');
    if (cs) target.clusterSize = sizeElement(ctx, cs, 'target.cluster_size');
    const features = child(t, 'features');
    if (features) {
      ctx.at('target.features', features.path, features.line);
      if (!target.compat) target.compat = '1.1';
      for (const f of features.children) {
        if (f.ns !== '' || !VOLUME_FEATURES.includes(f.local)) {
          ctx.at('target.features.x', f.path, f.line);
          ctx.fail('target.features.x', `unsupported feature '${shown(f.qname)}'; allowed: ${VOLUME_FEATURES.join(', ')}`);
        }
        if (f.local === 'extended_l2') target.extendedL2 = true;
        else target.lazyRefcounts = true;
      }
    }
  }
  return normalizeVolume(vol, pool, ctx, opts);
}

// ---------------------------------------------------------------- defaults and checks

/**
 * The checks parseVolumeXml applies, for definitions that arrive structured (gRPC). Returns a
 * new definition with the pool's defaults applied; output-only fields (key, physical,
 * timestamps, source extents) are cleared.
 */
export function validateVolumeDefinition(vol: VolumeDefinition, pool: PoolDefinition, opts: VolumeParseOptions = {}): VolumeDefinition {
  const ctx: Ctx = new Ctx();
  if (!vol || typeof vol !== 'object') ctx.fail('definition', 'a volume definition is required');
  return normalizeVolume(vol, pool, ctx, opts);
}

function checkBytes(ctx: Ctx, key: string, v: bigint): bigint {
  if (typeof v !== 'bigint' || v < 0n || v > MAX_SIZE_BYTES) ctx.fail(key, `size ${String(v)} is out of range; allowed: 0 to ${MAX_SIZE_BYTES} bytes`);
  return v;
}

function checkFormat(ctx: Ctx, key: string, pool: PoolDefinition, given: string): string {
  const info = poolTypeInfo(pool.type);
  if (!info.volumeFormats.length) return '';
  const f = given || info.defaultVolumeFormat;
  if (!info.volumeFormats.includes(f)) {
    ctx.fail(key, `unknown volume format type '${shown(f)}' for volumes in ${info.name} pools; allowed: ${info.volumeFormats.join(', ')}`);
  }
  return f;
}

function normalizeEncryption(ctx: Ctx, e: Encryption | undefined, key: string): Encryption | undefined {
  if (!e) return undefined;
  if (!ENCRYPTION_FORMATS.includes(e.format)) ctx.fail(`${key}.format`, `unknown volume encryption format type '${shown(e.format)}'; allowed: ${ENCRYPTION_FORMATS.join(', ')}`);
  const secrets = (e.secrets ?? []).map((s, i) => {
    const k = `${key}.secrets[${i}]`;
    if (s.type !== 'passphrase') ctx.fail(`${k}.type`, `unknown volume encryption secret type '${shown(s.type ?? '')}'; allowed: passphrase`);
    return normalizeSecret(ctx, s, k);
  });
  const out: Encryption = { format: e.format, secrets, cipher: undefined, ivgen: undefined };
  if (e.format === 'luks') {
    if (e.cipher) {
      if (!e.cipher.name) ctx.fail(`${key}.cipher.name`, "cipher info missing 'name' attribute");
      if (!Number.isInteger(e.cipher.size) || e.cipher.size < 0 || e.cipher.size > 0xffffffff) ctx.fail(`${key}.cipher.size`, 'cipher size must be an unsigned integer');
      out.cipher = {
        name: checkText(ctx, `${key}.cipher.name`, e.cipher.name, 'cipher name', 64),
        size: e.cipher.size,
        mode: e.cipher.mode ? checkText(ctx, `${key}.cipher.mode`, e.cipher.mode, 'cipher mode', 64) : '',
        hash: e.cipher.hash ? checkText(ctx, `${key}.cipher.hash`, e.cipher.hash, 'cipher hash', 64) : '',
      };
    }
    if (e.ivgen) {
      if (!out.cipher) ctx.fail(`${key}.ivgen`, 'ivgen element found, but cipher is missing');
      if (!e.ivgen.name) ctx.fail(`${key}.ivgen.name`, 'missing ivgen info name string');
      out.ivgen = {
        name: checkText(ctx, `${key}.ivgen.name`, e.ivgen.name, 'ivgen name', 64),
        hash: e.ivgen.hash ? checkText(ctx, `${key}.ivgen.hash`, e.ivgen.hash, 'ivgen hash', 64) : '',
      };
    }
  }
  return out;
}

/** Path of a volume as the pool decides it; '' when the backend decides at creation. */
export function volumePathFor(pool: PoolDefinition, name: string): string {
  if ((isDirLikePool(pool.type) || pool.type === PoolType.POOL_TYPE_LOGICAL) && pool.target?.path) {
    return pool.target.path === '/' ? `/${name}` : `${pool.target.path}/${name}`;
  }
  return '';
}

/**
 * The key the system gives a new volume when it can be known before creation: the file path
 * for dir, fs and netfs pools. '' for the others (LV uuid, partition or LUN path are known
 * only once the backend created the volume).
 */
export function volumeKeyFor(pool: PoolDefinition, vol: VolumeDefinition): string {
  return isDirLikePool(pool.type) ? vol.target?.path || volumePathFor(pool, vol.name) : '';
}

function normalizeVolume(vol: VolumeDefinition, pool: PoolDefinition, ctx: Ctx, opts: VolumeParseOptions): VolumeDefinition {
  if (!pool || typeof pool !== 'object') ctx.fail('pool', 'the pool definition is required to read a volume');
  poolTypeInfo(pool.type, 'pool.type');
  if (!vol.name) ctx.fail('name', 'missing volume name element');
  const name = checkName(ctx, 'name', vol.name, 'volume name');

  const src = vol.target ?? emptyTarget();
  const target = emptyTarget();
  target.format = opts.formatFromSource && !src.format ? '' : checkFormat(ctx, 'target.format', pool, src.format);
  const decided = volumePathFor(pool, name);
  if (decided) target.path = decided;
  else if (src.path) target.path = checkPath(ctx, 'target.path', src.path);
  target.permissions = normalizePermissions(ctx, src.permissions, 'target.permissions');
  target.encryption = normalizeEncryption(ctx, src.encryption, 'target.encryption');
  if (src.compat) {
    if (!/^[0-9]{1,9}\.[0-9]{1,9}$/.test(src.compat)) ctx.fail('target.compat', `forbidden characters in compat '${shown(src.compat)}'; expected a version such as 0.10 or 1.1`);
    target.compat = src.compat;
  }
  target.lazyRefcounts = !!src.lazyRefcounts;
  target.extendedL2 = !!src.extendedL2;
  if ((target.lazyRefcounts || target.extendedL2) && !target.compat) target.compat = '1.1';
  target.nocow = !!src.nocow;
  target.clusterSize = checkBytes(ctx, 'target.cluster_size', src.clusterSize ?? 0n);

  let backingStore: BackingStore | undefined;
  if (vol.backingStore?.path) {
    const b = vol.backingStore;
    backingStore = {
      path: checkPath(ctx, 'backing_store.path', b.path),
      format: checkFormat(ctx, 'backing_store.format', pool, b.format),
      permissions: normalizePermissions(ctx, b.permissions, 'backing_store.permissions'),
      timestamps: undefined,
    };
  }

  let capacity = vol.capacity ?? undefined;
  if (capacity === undefined) {
    if (!opts.cloning && !backingStore) {
      ctx.fail('capacity', 'missing capacity element; a capacity is required unless the volume is cloned or has a backing store');
    }
    capacity = 0n;
  }
  capacity = checkBytes(ctx, 'capacity', capacity);
  const given = vol.allocation !== undefined && vol.allocation !== null;
  const allocation = given ? checkBytes(ctx, 'allocation', vol.allocation!) : opts.cloning ? undefined : capacity;

  return {
    type: volumeTypeFor(pool.type, target.format),
    name,
    key: '',
    capacity,
    allocation,
    physical: undefined,
    sourceDevices: [],
    target,
    backingStore,
  };
}

// ---------------------------------------------------------------- writing XML

function writeTimestamps(out: Out, ts: Timestamps | undefined): void {
  if (!ts || !(ts.atime || ts.mtime || ts.ctime || ts.btime)) return;
  out.open('<timestamps>');
  if (ts.atime) out.line(`<atime>${esc(ts.atime)}</atime>`);
  if (ts.mtime) out.line(`<mtime>${esc(ts.mtime)}</mtime>`);
  if (ts.ctime) out.line(`<ctime>${esc(ts.ctime)}</ctime>`);
  // libvirt 9.0 prints a birth time whenever it prints timestamps: 0 where the filesystem
  // gives none (virStorageVolTimestampFormat of a zeroed btime)
  out.line(`<btime>${esc(ts.btime || '0')}</btime>`);
  out.close('</timestamps>');
}

function writeEncryption(out: Out, e: Encryption | undefined): void {
  if (!e) return;
  out.open(`<encryption format='${esc(e.format)}'>`);
  for (const s of e.secrets) writeSecret(out, s);
  if (e.format === 'luks' && e.cipher?.name) {
    const c = e.cipher;
    out.line(`<cipher name='${esc(c.name)}' size='${c.size}'${c.mode ? ` mode='${esc(c.mode)}'` : ''}${c.hash ? ` hash='${esc(c.hash)}'` : ''}/>`);
    if (e.ivgen?.name) out.line(`<ivgen name='${esc(e.ivgen.name)}'${e.ivgen.hash ? ` hash='${esc(e.ivgen.hash)}'` : ''}/>`);
  }
  out.close('</encryption>');
}

function writeSourceDevices(out: Out, devices: readonly VolumeSourceDevice[]): void {
  // libvirt 9.0 leaves an empty <source> out (virXMLFormatElement); 4.7 printed it
  if (devices.length === 0) return;
  out.open('<source>');
  for (const d of devices) {
    out.open(`<device path='${esc(d.path)}'>`);
    for (const e of d.extents) out.line(`<extent start='${e.start}' end='${e.end}'/>`);
    out.close('</device>');
  }
  out.close('</source>');
}

/**
 * Prints a volume document as libvirt does. Live values (key, sizes, physical, timestamps,
 * source extents) print when set on the message.
 */
export function formatVolumeXml(vol: VolumeDefinition, pool: PoolDefinition): string {
  const info = poolTypeInfo(pool.type);
  const out = new Out();
  const t = vol.target ?? emptyTarget();
  const type = vol.type ? vol.type : volumeTypeFor(pool.type, t.format);
  out.open(`<volume type='${volumeTypeToString(type)}'>`);
  out.line(`<name>${esc(vol.name)}</name>`);
  if (vol.key) out.line(`<key>${esc(vol.key)}</key>`);
  writeSourceDevices(out, vol.sourceDevices ?? []);
  const capacity = vol.capacity ?? 0n;
  out.line(`<capacity unit='bytes'>${capacity}</capacity>`);
  out.line(`<allocation unit='bytes'>${vol.allocation ?? capacity}</allocation>`);
  if (vol.physical) out.line(`<physical unit='bytes'>${vol.physical}</physical>`);

  out.open('<target>');
  if (t.path) out.line(`<path>${esc(t.path)}</path>`);
  if (info.volumeFormats.length) out.line(`<format type='${esc(t.format || info.defaultVolumeFormat)}'/>`);
  writePermissions(out, t.permissions);
  writeTimestamps(out, t.timestamps);
  writeEncryption(out, t.encryption);
  if (t.compat) out.line(`<compat>${esc(t.compat)}</compat>`);
  if (t.clusterSize && t.clusterSize > 0n) out.line(`<clusterSize unit='B'>${t.clusterSize}</clusterSize>`);
  // libvirt prints <features> when the document had one; the model keeps the features only,
  // and a <features> element implies compat 1.1, so compat 1.1 prints an (empty) <features/>.
  if (t.lazyRefcounts || t.extendedL2) {
    out.open('<features>');
    if (t.lazyRefcounts) out.line('<lazy_refcounts/>');
    if (t.extendedL2) out.line('<extended_l2/>');
    out.close('</features>');
  } else if (t.compat === '1.1') out.line('<features/>');
  out.close('</target>');

  const b = vol.backingStore;
  if (b?.path) {
    out.open('<backingStore>');
    out.line(`<path>${esc(b.path)}</path>`);
    if (info.volumeFormats.length) out.line(`<format type='${esc(b.format || info.defaultVolumeFormat)}'/>`);
    writePermissions(out, b.permissions);
    writeTimestamps(out, b.timestamps);
    out.close('</backingStore>');
  }
  out.close('</volume>');
  return out.toString();
}

void attr;

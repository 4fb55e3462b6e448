// <pool> documents <-> PoolDefinition, with libvirt's defaults and checks
// (virStoragePoolDefParseXML / virStoragePoolDefFormatBuf in src/conf/storage_conf.c).
import { checkIscsiHost, checkIscsiName, checkMountOptionName, checkNetHost, checkNfsVersion, checkSourceDir, checkVgName } from '../api/source-names.js';
import {
  AdapterType,
  type Extent,
  type PciAddress,
  type Permissions,
  type PoolDefinition,
  type PoolSource,
  type SecretRef,
  type SourceAdapter,
  type SourceAuth,
  type SourceDevice,
  type SourceHost,
  PoolType,
  Tristate,
} from '../proto/cistern/v1/storage.js';
import {
  Ctx,
  Out,
  attrOf,
  checkName,
  checkPath,
  checkText,
  childText,
  esc,
  newUuid,
  normalizePermissions,
  parseUuid,
  readPermissions,
  sanitizePath,
  tristateAttr,
  tristateToString,
  writePermissions,
} from './common.js';
import {
  SOURCE_ADAPTER,
  SOURCE_DEVICE,
  SOURCE_DIR,
  SOURCE_HOST,
  SOURCE_INITIATOR_IQN,
  SOURCE_NAME,
  SUPPORTED_POOL_TYPES,
  poolTypeFromString,
  poolTypeInfo,
  type PoolTypeInfo,
} from './formats.js';
import { attr, child, childrenNamed, childrenNs, parseXmlDocument, rootProblem, shown, type XmlElement } from './safe-parse.js';
import { withoutLeadingBlanks } from './units.js';

/** Namespace of the fs/netfs mount options (<fs:mount_opts>). */
export const FS_NAMESPACE = 'http://libvirt.org/schemas/storagepool/fs/1.0';

/** Runtime values an active pool's document carries. */
export interface PoolLiveState {
  capacity: bigint;
  allocation: bigint;
  available: bigint;
  /** Source devices with their free extents (disk pools), matched to the definition by path. */
  devices?: SourceDevice[];
  /** The target directory as the last refresh saw it; replaces the defined permissions. */
  targetPermissions?: Permissions;
}

// ---------------------------------------------------------------- reading XML

function emptySource(): PoolSource {
  return {
    hosts: [],
    devices: [],
    dir: '',
    adapter: undefined,
    name: '',
    format: '',
    protocolVersion: '',
    initiatorIqn: '',
    auth: undefined,
    vendor: '',
    product: '',
  };
}

function emptyAdapter(): SourceAdapter {
  return {
    type: AdapterType.ADAPTER_TYPE_UNSPECIFIED,
    name: '',
    hasParentAddress: false,
    uniqueId: 0,
    parentAddress: undefined,
    parent: '',
    parentWwnn: '',
    parentWwpn: '',
    parentFabricWwn: '',
    wwnn: '',
    wwpn: '',
    managed: Tristate.TRISTATE_ABSENT,
  };
}

/** Unsigned integer attribute as libvirt's virXMLPropUInt with base 0 (decimal, 0x hex, 0 octal). */
function uintAttr(ctx: Ctx, el: XmlElement, name: string, key: string, max: number): number | undefined {
  const v = attrOf(ctx, el, name, key);
  if (v === undefined) return undefined;
  const t = withoutLeadingBlanks(v);
  let n: number;
  if (/^0[xX][0-9a-fA-F]{1,8}$/.test(t)) n = parseInt(t.slice(2), 16);
  else if (/^0[0-7]+$/.test(t)) n = parseInt(t, 8);
  else if (/^[0-9]{1,10}$/.test(t)) n = parseInt(t, 10);
  else return ctx.fail(key, `'${shown(v)}' is not a valid unsigned number`);
  if (n > max) ctx.fail(key, `${t} is out of range; at most 0x${max.toString(16)}`);
  return n;
}

function readAdapter(ctx: Ctx, el: XmlElement, key: string): SourceAdapter {
  ctx.at(key, el.path, el.line);
  const a = emptyAdapter();
  const type = attrOf(ctx, el, 'type', `${key}.type`);
  if (type === undefined) {
    // legacy form: only 'name' is allowed without a type
    for (const n of ['wwnn', 'wwpn', 'parent']) {
      if (attr(el, n) !== undefined) ctx.fail(key, "use of 'wwnn', 'wwpn' and 'parent' attributes requires the adapter 'type' (fc_host)");
    }
    if (child(el, 'parentaddr')) ctx.fail(key, "use of the 'parentaddr' element requires the adapter 'type' (scsi_host)");
    const name = attrOf(ctx, el, 'name', `${key}.name`);
    if (name !== undefined) {
      a.type = AdapterType.ADAPTER_TYPE_SCSI_HOST;
      a.name = name;
    }
    return a;
  }
  if (type === 'scsi_host') {
    a.type = AdapterType.ADAPTER_TYPE_SCSI_HOST;
    a.name = attrOf(ctx, el, 'name', `${key}.name`) ?? '';
    const pa = child(el, 'parentaddr');
    if (pa) {
      ctx.at(`${key}.parent_address`, pa.path, pa.line);
      const addr = child(pa, 'address');
      if (!addr) ctx.fail(`${key}.parent_address`, 'missing scsi_host PCI <address> element in <parentaddr>');
      a.hasParentAddress = true;
      const pci: PciAddress = {
        domain: uintAttr(ctx, addr, 'domain', `${key}.parent_address.domain`, 0xffff) ?? 0,
        bus: uintAttr(ctx, addr, 'bus', `${key}.parent_address.bus`, 0xff) ?? 0,
        slot: uintAttr(ctx, addr, 'slot', `${key}.parent_address.slot`, 0x1f) ?? 0,
        function: uintAttr(ctx, addr, 'function', `${key}.parent_address.function`, 7) ?? 0,
      };
      a.parentAddress = pci;
      const uid = attrOf(ctx, pa, 'unique_id', `${key}.unique_id`);
      if (uid === undefined || !/^[0-9]{1,10}$/.test(withoutLeadingBlanks(uid)) || Number(uid) > 0x7fffffff) {
        ctx.fail(`${key}.unique_id`, `missing or invalid scsi adapter 'unique_id' value '${shown(uid ?? '')}'; a non-negative integer is required`);
      }
      a.uniqueId = Number(uid);
    }
    return a;
  }
  if (type === 'fc_host') {
    a.type = AdapterType.ADAPTER_TYPE_FC_HOST;
    a.managed = tristateAttr(ctx, el, 'managed', `${key}.managed`);
    a.parent = attrOf(ctx, el, 'parent', `${key}.parent`) ?? '';
    a.parentWwnn = attrOf(ctx, el, 'parent_wwnn', `${key}.parent_wwnn`) ?? '';
    a.parentWwpn = attrOf(ctx, el, 'parent_wwpn', `${key}.parent_wwpn`) ?? '';
    a.parentFabricWwn = attrOf(ctx, el, 'parent_fabric_wwn', `${key}.parent_fabric_wwn`) ?? '';
    a.wwnn = attrOf(ctx, el, 'wwnn', `${key}.wwnn`) ?? '';
    a.wwpn = attrOf(ctx, el, 'wwpn', `${key}.wwpn`) ?? '';
    return a;
  }
  return ctx.fail(`${key}.type`, `unknown adapter type '${shown(type)}'; allowed: scsi_host, fc_host`);
}

function readSecret(ctx: Ctx, el: XmlElement, key: string): SecretRef {
  ctx.at(key, el.path, el.line);
  return {
    uuid: attrOf(ctx, el, 'uuid', `${key}.uuid`) ?? '',
    usage: attrOf(ctx, el, 'usage', `${key}.usage`) ?? '',
    type: attrOf(ctx, el, 'type', `${key}.type`) ?? '',
  };
}

function readAuth(ctx: Ctx, el: XmlElement, key: string): SourceAuth {
  ctx.at(key, el.path, el.line);
  const username = attrOf(ctx, el, 'username', `${key}.username`);
  if (username === undefined || username === '') ctx.fail(`${key}.username`, 'missing username for auth');
  const type = attrOf(ctx, el, 'type', `${key}.type`) ?? '';
  const s = child(el, 'secret');
  if (!s) ctx.fail(`${key}.secret`, 'missing <secret> element in auth');
  return { type, username, secret: readSecret(ctx, s, `${key}.secret`) };
}

/** Reads a <source> element as written; type-specific defaults and checks come later. */
export function readPoolSource(ctx: Ctx, el: XmlElement | undefined, key = 'source'): PoolSource {
  const src = emptySource();
  if (!el) return src;
  ctx.at(key, el.path, el.line);
  src.name = childText(ctx, el, 'name', `${key}.name`) ?? '';
  const fmt = child(el, 'format');
  if (fmt) src.format = attrOf(ctx, fmt, 'type', `${key}.format`) ?? '';
  childrenNamed(el, 'host').forEach((h, i) => {
    const k = `${key}.hosts[${i}]`;
    ctx.at(k, h.path, h.line);
    const name = attrOf(ctx, h, 'name', `${k}.name`);
    if (name === undefined) ctx.fail(`${k}.name`, 'missing storage pool host name');
    const port = attrOf(ctx, h, 'port', `${k}.port`);
    let p = 0;
    if (port !== undefined) {
      if (!/^[0-9]{1,5}$/.test(withoutLeadingBlanks(port)) || Number(port) > 65535) ctx.fail(`${k}.port`, `invalid port '${shown(port)}'; allowed: 1 to 65535`);
      p = Number(port);
    }
    src.hosts.push({ name, port: p });
  });
  const init = child(el, 'initiator');
  const iqn = init ? child(init, 'iqn') : undefined;
  if (iqn) src.initiatorIqn = attrOf(ctx, iqn, 'name', `${key}.initiator_iqn`) ?? '';
  childrenNamed(el, 'device').forEach((d, i) => {
    const k = `${key}.devices[${i}]`;
    ctx.at(k, d.path, d.line);
    const path = attrOf(ctx, d, 'path', `${k}.path`);
    if (path === undefined) ctx.fail(`${k}.path`, 'missing storage pool source device path');
    const partSeparator = tristateAttr(ctx, d, 'part_separator', `${k}.part_separator`);
    // <freeExtent> children are output only: dropped
    src.devices.push({ path, partSeparator, freeExtents: [] });
  });
  const dir = child(el, 'dir');
  if (dir) src.dir = attrOf(ctx, dir, 'path', `${key}.dir`) ?? '';
  const adapter = child(el, 'adapter');
  if (adapter) src.adapter = readAdapter(ctx, adapter, `${key}.adapter`);
  const auth = child(el, 'auth');
  if (auth) src.auth = readAuth(ctx, auth, `${key}.auth`);
  const proto = child(el, 'protocol');
  if (proto) src.protocolVersion = attrOf(ctx, proto, 'ver', `${key}.protocol_version`) ?? '';
  const vendor = child(el, 'vendor');
  if (vendor) src.vendor = attrOf(ctx, vendor, 'name', `${key}.vendor`) ?? '';
  const product = child(el, 'product');
  if (product) src.product = attrOf(ctx, product, 'name', `${key}.product`) ?? '';
  return src;
}

/** Parses a libvirt <pool> document, applying libvirt's defaults and checks. */
export function parsePoolXml(xml: string): PoolDefinition {
  const root = parseXmlDocument(xml, 'pool');
  const ctx: Ctx = new Ctx();
  const wrongRoot = rootProblem(root, 'pool');
  if (wrongRoot) ctx.fail('', wrongRoot);
  ctx.at('type', 'pool/@type', root.line);
  const typeName = attr(root, 'type');
  if (typeName === undefined) ctx.fail('type', `missing pool type attribute; supported: ${SUPPORTED_POOL_TYPES.join(', ')}`);
  const type = ctx.wrap('type', () => poolTypeFromString(typeName));
  const info = poolTypeInfo(type);

  const target = child(root, 'target');
  if (target) ctx.at('target', target.path, target.line);
  const features = child(root, 'features');
  const cow = features ? child(features, 'cow') : undefined;

  let mountOptions: string[] = [];
  if (type === PoolType.POOL_TYPE_FS || type === PoolType.POOL_TYPE_NETFS) {
    const opts = childrenNs(root, FS_NAMESPACE, 'mount_opts')[0];
    if (opts) {
      ctx.at('mountOptions', opts.path, opts.line);
      mountOptions = childrenNs(opts, FS_NAMESPACE, 'option').map((o, i) => {
        const name = attrOf(ctx, o, 'name', `mount_options[${i}]`);
        if (name === undefined) ctx.fail(`mount_options[${i}]`, 'no fs mount option name specified');
        return name;
      });
    }
  }
  const refresh = child(root, 'refresh');
  if (refresh) {
    const vol = child(refresh, 'volume');
    const alloc = vol ? attrOf(ctx, vol, 'allocation', 'refresh') : undefined;
    if (alloc !== undefined && alloc !== 'default') {
      ctx.fail('refresh', `volume allocation refresh mode '${shown(alloc)}' is not supported by Cistern; allowed: default`);
    }
  }

  const def: PoolDefinition = {
    type,
    name: childText(ctx, root, 'name', 'name') ?? '',
    uuid: childText(ctx, root, 'uuid', 'uuid') ?? '',
    source: readPoolSource(ctx, child(root, 'source')),
    target: {
      // logical pools ignore a given target path (libvirt uses /dev/<vg>)
      path: info.hasTarget ? childText(ctx, target, 'path', 'target.path') ?? '' : '',
      permissions: info.hasTarget && target ? readPermissions(ctx, child(target, 'permissions'), 'target.permissions') : undefined,
    },
    features: { cow: tristateAttr(ctx, cow, 'state', 'features.cow') },
    mountOptions,
  };
  return normalizePool(def, ctx);
}

// ---------------------------------------------------------------- defaults and checks

/** Types whose volumes are SCSI LUNs named under the pool's target directory. */
const LUN_POOLS: ReadonlySet<PoolType> = new Set([PoolType.POOL_TYPE_ISCSI, PoolType.POOL_TYPE_SCSI]);

/** The checks parsePoolXml applies, for definitions that arrive structured (gRPC). Returns a new, normalised definition. */
export function validatePoolDefinition(def: PoolDefinition): PoolDefinition {
  if (!def || typeof def !== 'object') new Ctx().fail('definition', 'a pool definition is required');
  return normalizePool(def, new Ctx());
}

function checkWwn(ctx: Ctx, key: string, v: string, what: string): void {
  const hex = v.startsWith('0x') ? v.slice(2) : v;
  if (!/^[0-9a-fA-F]{16}$/.test(hex)) ctx.fail(key, `malformed ${what} '${shown(v)}'; expected 16 hexadecimal digits (optionally prefixed 0x)`);
}

function normalizeAdapter(ctx: Ctx, a: SourceAdapter | undefined, key: string): SourceAdapter {
  if (!a || a.type === AdapterType.ADAPTER_TYPE_UNSPECIFIED) {
    return ctx.fail(key, "missing storage pool source adapter; give <adapter type='scsi_host' name='hostN'/> or type='fc_host' with wwnn and wwpn");
  }
  const out = emptyAdapter();
  out.type = a.type;
  if (a.type === AdapterType.ADAPTER_TYPE_SCSI_HOST) {
    const hasParent = !!a.hasParentAddress;
    if (!a.name && !hasParent) ctx.fail(key, "either 'name' or 'parentaddr' must be specified for the 'scsi_host' adapter");
    if (a.name && hasParent) ctx.fail(key, "both 'name' and 'parentaddr' cannot be specified for the 'scsi_host' adapter");
    if (a.name) {
      out.name = checkText(ctx, `${key}.name`, a.name, 'adapter name', 255);
      if (!/^[A-Za-z0-9_:.-]+$/.test(a.name)) ctx.fail(`${key}.name`, `adapter name '${shown(a.name)}' is not valid; expected a scsi_host name such as host0 or scsi_host5`);
    } else {
      const p = a.parentAddress ?? { domain: 0, bus: 0, slot: 0, function: 0 };
      const lim: Array<[keyof PciAddress, number]> = [['domain', 0xffff], ['bus', 0xff], ['slot', 0x1f], ['function', 7]];
      for (const [f, max] of lim) {
        const v = p[f];
        if (!Number.isInteger(v) || v < 0 || v > max) ctx.fail(`${key}.parent_address.${f}`, `PCI ${f} ${String(v)} is out of range; at most 0x${max.toString(16)}`);
      }
      if (!Number.isInteger(a.uniqueId) || a.uniqueId < 0 || a.uniqueId > 0x7fffffff) ctx.fail(`${key}.unique_id`, `unique_id ${String(a.uniqueId)} is out of range`);
      out.hasParentAddress = true;
      out.uniqueId = a.uniqueId;
      out.parentAddress = { domain: p.domain, bus: p.bus, slot: p.slot, function: p.function };
    }
    return out;
  }
  if (a.type === AdapterType.ADAPTER_TYPE_FC_HOST) {
    if (!a.wwnn || !a.wwpn) ctx.fail(key, "'wwnn' and 'wwpn' must be specified for adapter type 'fc_host'");
    checkWwn(ctx, `${key}.wwnn`, a.wwnn, 'wwnn');
    checkWwn(ctx, `${key}.wwpn`, a.wwpn, 'wwpn');
    if (a.parentWwnn && !a.parentWwpn) ctx.fail(`${key}.parent_wwnn`, `when providing parent_wwnn='${shown(a.parentWwnn)}', the parent_wwpn must also be provided`);
    if (!a.parentWwnn && a.parentWwpn) ctx.fail(`${key}.parent_wwpn`, `when providing parent_wwpn='${shown(a.parentWwpn)}', the parent_wwnn must also be provided`);
    if (a.parentWwnn) checkWwn(ctx, `${key}.parent_wwnn`, a.parentWwnn, 'parent_wwnn');
    if (a.parentWwpn) checkWwn(ctx, `${key}.parent_wwpn`, a.parentWwpn, 'parent_wwpn');
    if (a.parentFabricWwn) checkWwn(ctx, `${key}.parent_fabric_wwn`, a.parentFabricWwn, 'parent_fabric_wwn');
    if (a.parent) {
      checkText(ctx, `${key}.parent`, a.parent, 'adapter parent', 255);
      if (!/^[A-Za-z0-9_:.-]+$/.test(a.parent)) ctx.fail(`${key}.parent`, `adapter parent '${shown(a.parent)}' is not valid; expected a scsi_host name such as scsi_host5`);
    }
    if (![Tristate.TRISTATE_ABSENT, Tristate.TRISTATE_YES, Tristate.TRISTATE_NO].includes(a.managed)) ctx.fail(`${key}.managed`, 'managed must be yes or no');
    Object.assign(out, {
      parent: a.parent,
      parentWwnn: a.parentWwnn,
      parentWwpn: a.parentWwpn,
      parentFabricWwn: a.parentFabricWwn,
      wwnn: a.wwnn,
      wwpn: a.wwpn,
      managed: a.managed,
    });
    return out;
  }
  return ctx.fail(`${key}.type`, 'unknown adapter type; allowed: scsi_host, fc_host');
}

/** Secret reference of <auth> (pools) or <encryption> (volumes): exactly one of uuid and usage. */
export function normalizeSecret(ctx: Ctx, s: SecretRef | undefined, key: string): SecretRef {
  if (!s) return ctx.fail(key, 'missing <secret> element');
  if (s.uuid && s.usage) ctx.fail(key, 'either secret uuid or usage expected, not both');
  if (!s.uuid && !s.usage) ctx.fail(key, 'missing secret uuid or usage attribute');
  return {
    uuid: s.uuid ? parseUuid(ctx, `${key}.uuid`, s.uuid, 'secret uuid') : '',
    usage: s.usage ? checkText(ctx, `${key}.usage`, s.usage, 'secret usage', 1024) : '',
    type: s.type ? checkText(ctx, `${key}.type`, s.type, 'secret type', 64) : '',
  };
}

function normalizeAuth(ctx: Ctx, a: SourceAuth, key: string): SourceAuth {
  if (!a.type) ctx.fail(`${key}.type`, "storage pool missing auth type; allowed: chap");
  if (a.type !== 'chap') ctx.fail(`${key}.type`, `unsupported auth type '${shown(a.type)}'; allowed: chap`);
  if (!a.username) ctx.fail(`${key}.username`, 'missing username for auth');
  return { type: a.type, username: checkText(ctx, `${key}.username`, a.username, 'username', 255), secret: normalizeSecret(ctx, a.secret, `${key}.secret`) };
}

function validTristate(ctx: Ctx, key: string, t: Tristate): Tristate {
  if (t !== Tristate.TRISTATE_ABSENT && t !== Tristate.TRISTATE_YES && t !== Tristate.TRISTATE_NO) ctx.fail(key, 'must be yes or no');
  return t;
}

/**
 * Applies a pool type's source rules: format (default and allowed values) and the elements
 * the type uses. With `wholePool` false only the checks libvirt applies to a bare <source>
 * spec (find-storage-pool-sources) run.
 */
export function normalizePoolSource(ctx: Ctx, type: PoolType, s: PoolSource | undefined, wholePool: boolean, key = 'source'): PoolSource {
  const info = poolTypeInfo(type);
  const src = s ?? emptySource();
  const out = emptySource();
  const f = info.flags;

  if (info.poolFormats.length) {
    const fmt = src.format || info.defaultPoolFormat;
    if (!info.poolFormats.includes(fmt)) {
      ctx.fail(`${key}.format`, `unknown pool format type '${shown(fmt)}' for ${info.name} pools; allowed: ${info.poolFormats.join(', ')}`);
    }
    out.format = fmt;
  }
  if (f & SOURCE_HOST) {
    out.hosts = (src.hosts ?? []).map((h: SourceHost, i) => {
      const k = `${key}.hosts[${i}]`;
      if (!h.name) ctx.fail(`${k}.name`, 'missing storage pool host name');
      checkText(ctx, `${k}.name`, h.name, 'host name', 255);
      if (/[\s/]/.test(h.name)) ctx.fail(`${k}.name`, `host name '${shown(h.name)}' contains whitespace or '/'`);
      // what the agent checks before the host reaches mount or iscsiadm, checked here too so
      // that such a definition is refused before it is stored, not at its first start
      if (type === PoolType.POOL_TYPE_NETFS) ctx.wrap(`${k}.name`, () => checkNetHost(h.name));
      else if (type === PoolType.POOL_TYPE_ISCSI || type === PoolType.POOL_TYPE_ISCSI_DIRECT) ctx.wrap(`${k}.name`, () => checkIscsiHost(h.name));
      else if (h.name.startsWith('-')) ctx.fail(`${k}.name`, `host name '${shown(h.name)}' starts with '-'; give a host name or an IP address`);
      if (!Number.isInteger(h.port) || h.port < 0 || h.port > 65535) ctx.fail(`${k}.port`, `port ${String(h.port)} is out of range; allowed: 1 to 65535`);
      return { name: h.name, port: h.port };
    });
    if (wholePool && out.hosts.length === 0) ctx.fail(`${key}.hosts`, `missing storage pool source host name; ${info.name} pools need <host name='...'/>`);
  }
  if (f & SOURCE_DEVICE) {
    const localDevice = type === PoolType.POOL_TYPE_FS || type === PoolType.POOL_TYPE_DISK || type === PoolType.POOL_TYPE_LOGICAL;
    const iscsi = type === PoolType.POOL_TYPE_ISCSI || type === PoolType.POOL_TYPE_ISCSI_DIRECT;
    out.devices = (src.devices ?? []).map((d: SourceDevice, i) => {
      const k = `${key}.devices[${i}]`;
      if (!d.path) ctx.fail(`${k}.path`, 'missing storage pool source device path');
      const path = localDevice ? checkPath(ctx, `${k}.path`, d.path) : checkText(ctx, `${k}.path`, d.path, 'device path', 1024);
      // an iSCSI pool's device is its target's name, checked as the agent checks it before iscsiadm
      if (iscsi && d.path) ctx.wrap(`${k}.path`, () => checkIscsiName(d.path, `${k}.path`));
      return { path, partSeparator: validTristate(ctx, `${k}.part_separator`, d.partSeparator), freeExtents: [] };
    });
    if (wholePool && f === SOURCE_DEVICE && out.devices.length === 0) {
      ctx.fail(`${key}.devices`, `missing storage pool source device name; ${info.name} pools need <device path='...'/>`);
    }
  }
  if (f & SOURCE_DIR) {
    if (src.dir) out.dir = sanitizePath(ctx.wrap(`${key}.dir`, () => checkSourceDir(checkText(ctx, `${key}.dir`, src.dir, 'source dir', 4095), 'missing storage pool source path')));
    if (wholePool && !out.dir) ctx.fail(`${key}.dir`, `missing storage pool source path; ${info.name} pools need <dir path='...'/>`);
  }
  if (f & SOURCE_ADAPTER) {
    if (wholePool || src.adapter) out.adapter = normalizeAdapter(ctx, src.adapter, `${key}.adapter`);
  }
  if (f & SOURCE_NAME) {
    if (src.name) out.name = checkName(ctx, `${key}.name`, src.name, 'source name');
    if (src.name && type === PoolType.POOL_TYPE_LOGICAL) ctx.wrap(`${key}.name`, () => checkVgName(src.name));
  }
  if (f & SOURCE_INITIATOR_IQN) {
    if (src.initiatorIqn) out.initiatorIqn = checkText(ctx, `${key}.initiator_iqn`, src.initiatorIqn, 'initiator IQN', 223);
    if (src.initiatorIqn) ctx.wrap(`${key}.initiator_iqn`, () => checkIscsiName(src.initiatorIqn, `${key}.initiator_iqn`));
  }
  if (src.auth) out.auth = normalizeAuth(ctx, src.auth, `${key}.auth`);
  if (src.protocolVersion) {
    const nfsLike = type === PoolType.POOL_TYPE_NETFS && (out.format === 'nfs' || out.format === 'auto');
    if (!nfsLike) ctx.fail(`${key}.protocol_version`, `storage pool protocol ver is only supported for netfs pools with format nfs or auto (this is a ${info.name} pool${out.format ? ` with format ${out.format}` : ''})`);
    // a string since libvirt 9.0 (nfsvers=4.1), held at define to what the agent mounts with
    const v = src.protocolVersion.trim();
    ctx.wrap(`${key}.protocol_version`, () => checkNfsVersion(v));
    // a whole number as libvirt < 9 read it (its 0 meant none); a minor version as written
    out.protocolVersion = v.includes('.') ? v : Number(v) === 0 ? '' : String(Number(v));
  }
  if (src.vendor) out.vendor = checkText(ctx, `${key}.vendor`, src.vendor, 'vendor', 255);
  if (src.product) out.product = checkText(ctx, `${key}.product`, src.product, 'product', 255);
  return out;
}

function normalizePool(def: PoolDefinition, ctx: Ctx): PoolDefinition {
  const type = ctx.wrap('type', () => poolTypeInfo(def.type, 'type').type);
  const info = poolTypeInfo(type);
  const source = normalizePoolSource(ctx, type, def.source, true);

  let name = def.name || ((info.flags & SOURCE_NAME) !== 0 ? source.name : '');
  if (!name) ctx.fail('name', 'missing pool name element');
  name = checkName(ctx, 'name', name, 'pool name');
  if ((info.flags & SOURCE_NAME) !== 0 && !source.name) {
    // the pool's name is the volume group's when the source names none
    if (type === PoolType.POOL_TYPE_LOGICAL) ctx.wrap('name', () => checkVgName(name, 'name'));
    source.name = name;
  }

  const uuid = def.uuid ? parseUuid(ctx, 'uuid', def.uuid) : newUuid();

  const cow = validTristate(ctx, 'features.cow', def.features?.cow ?? Tristate.TRISTATE_ABSENT);
  if (cow !== Tristate.TRISTATE_ABSENT && type !== PoolType.POOL_TYPE_FS && type !== PoolType.POOL_TYPE_DIR) {
    ctx.fail('features.cow', `the cow feature may only be used for 'fs' and 'dir' pools, not ${info.name}`);
  }

  let target: PoolDefinition['target'];
  if (info.hasTarget) {
    let path: string;
    if (type === PoolType.POOL_TYPE_LOGICAL) path = `/dev/${source.name}`;
    else {
      if (!def.target?.path) ctx.fail('target.path', `missing storage pool target path; ${info.name} pools need <target><path>...</path></target>`);
      path = checkPath(ctx, 'target.path', def.target.path);
      if (LUN_POOLS.has(type) && path !== '/dev' && !path.startsWith('/dev/')) {
        // the agent names LUNs under it (virStorageBackendStablePath) and refuses any other
        // directory at start: refused here, a pool that could never start is not defined
        ctx.fail('target.path', `unable to use target path '${shown(path)}' for SCSI LUNs: use /dev or a stable directory under /dev such as /dev/disk/by-path or /dev/disk/by-id`);
      }
    }
    target = { path, permissions: normalizePermissions(ctx, def.target?.permissions, 'target.permissions') };
  } else {
    target = undefined;
    if (type === PoolType.POOL_TYPE_ISCSI_DIRECT && !source.initiatorIqn) {
      ctx.fail('source.initiator_iqn', "missing initiator IQN; iscsi-direct pools need <initiator><iqn name='...'/></initiator>");
    }
  }

  const mountOptions = (def.mountOptions ?? []).map((o, i) => {
    const k = `mount_options[${i}]`;
    if (type !== PoolType.POOL_TYPE_FS && type !== PoolType.POOL_TYPE_NETFS) ctx.fail(k, `mount options are only for fs and netfs pools, not ${info.name}`);
    if (!o) ctx.fail(k, 'no fs mount option name specified');
    checkText(ctx, k, o, 'mount option', 255);
    if (/[,\s]/.test(o)) ctx.fail(k, `mount option '${shown(o)}' contains ',' or whitespace; give one option per <fs:option>`);
    ctx.wrap(k, () => checkMountOptionName(o, k));
    return o;
  });

  return { type, name, uuid, source, target, features: { cow }, mountOptions };
}

// ---------------------------------------------------------------- writing XML

function writeAdapter(out: Out, a: SourceAdapter): void {
  if (a.type === AdapterType.ADAPTER_TYPE_FC_HOST) {
    let s = "<adapter type='fc_host'";
    if (a.parent) s += ` parent='${esc(a.parent)}'`;
    if (a.parentWwnn) s += ` parent_wwnn='${esc(a.parentWwnn)}'`;
    if (a.parentWwpn) s += ` parent_wwpn='${esc(a.parentWwpn)}'`;
    if (a.parentFabricWwn) s += ` parent_fabric_wwn='${esc(a.parentFabricWwn)}'`;
    if (a.managed !== Tristate.TRISTATE_ABSENT) s += ` managed='${tristateToString(a.managed)}'`;
    out.line(`${s} wwnn='${esc(a.wwnn)}' wwpn='${esc(a.wwpn)}'/>`);
  } else if (a.type === AdapterType.ADAPTER_TYPE_SCSI_HOST) {
    if (a.name) out.line(`<adapter type='scsi_host' name='${esc(a.name)}'/>`);
    else {
      const p = a.parentAddress ?? { domain: 0, bus: 0, slot: 0, function: 0 };
      const hex = (n: number, w: number) => n.toString(16).padStart(w, '0');
      out.open("<adapter type='scsi_host'>");
      out.open(`<parentaddr unique_id='${a.uniqueId}'>`);
      out.line(`<address domain='0x${hex(p.domain, 4)}' bus='0x${hex(p.bus, 2)}' slot='0x${hex(p.slot, 2)}' function='0x${p.function.toString(10)}'/>`);
      out.close('</parentaddr>');
      out.close('</adapter>');
    }
  }
}

function writeExtents(out: Out, open: string, extents: readonly Extent[]): void {
  if (!extents.length) {
    out.line(`${open}/>`);
    return;
  }
  out.open(`${open}>`);
  for (const e of extents) out.line(`<freeExtent start='${e.start}' end='${e.end}'/>`);
  out.close('</device>');
}

/** <source> as libvirt's virStoragePoolSourceFormat prints it for a pool type (flags decide which elements). */
export function writePoolSource(out: Out, info: PoolTypeInfo | undefined, src: PoolSource, liveDevices?: readonly SourceDevice[]): void {
  const f = info ? info.flags : ~0;
  out.open('<source>');
  if (f & SOURCE_HOST) {
    for (const h of src.hosts) out.line(`<host name='${esc(h.name)}'${h.port ? ` port='${h.port}'` : ''}/>`);
  }
  if (f & SOURCE_DEVICE) {
    for (const d of src.devices) {
      let s = `<device path='${esc(d.path)}'`;
      if (d.partSeparator === Tristate.TRISTATE_YES || d.partSeparator === Tristate.TRISTATE_NO) s += ` part_separator='${tristateToString(d.partSeparator)}'`;
      const live = liveDevices?.find((l) => l.path === d.path);
      writeExtents(out, s, live ? live.freeExtents : d.freeExtents);
    }
  }
  if (f & SOURCE_DIR && src.dir) out.line(`<dir path='${esc(src.dir)}'/>`);
  if (f & SOURCE_ADAPTER && src.adapter) writeAdapter(out, src.adapter);
  if (f & SOURCE_NAME && src.name) out.line(`<name>${esc(src.name)}</name>`);
  if (f & SOURCE_INITIATOR_IQN && src.initiatorIqn) {
    out.open('<initiator>');
    out.line(`<iqn name='${esc(src.initiatorIqn)}'/>`);
    out.close('</initiator>');
  }
  const fmt = info ? (info.poolFormats.length ? src.format || info.defaultPoolFormat : '') : src.format;
  if (fmt) out.line(`<format type='${esc(fmt)}'/>`);
  if (src.auth) {
    const a = src.auth;
    out.open(a.type ? `<auth type='${esc(a.type)}' username='${esc(a.username)}'>` : `<auth username='${esc(a.username)}'>`);
    writeSecret(out, a.secret);
    out.close('</auth>');
  }
  if (src.protocolVersion && src.protocolVersion !== '0') out.line(`<protocol ver='${esc(src.protocolVersion)}'/>`);
  if (src.vendor) out.line(`<vendor name='${esc(src.vendor)}'/>`);
  if (src.product) out.line(`<product name='${esc(src.product)}'/>`);
  out.close('</source>');
}

/** <secret [type=''] uuid=''|usage=''/> as virSecretLookupFormatSecret prints it. */
export function writeSecret(out: Out, s: SecretRef | undefined): void {
  if (!s) return;
  let line = s.type ? `<secret type='${esc(s.type)}'` : '<secret';
  if (s.uuid) line += ` uuid='${esc(s.uuid)}'`;
  else if (s.usage) line += ` usage='${esc(s.usage)}'`;
  out.line(`${line}/>`);
}

/**
 * Prints a pool document as libvirt does. Without `live` (an inactive or --inactive document)
 * capacity, allocation and available print 0; with it, the real sizes and free extents.
 */
export function formatPoolXml(def: PoolDefinition, live?: PoolLiveState): string {
  const info = poolTypeInfo(def.type);
  const out = new Out();
  const mountOptions = def.mountOptions ?? [];
  const ns = mountOptions.length ? ` xmlns:fs='${FS_NAMESPACE}'` : '';
  out.open(`<pool type='${info.name}'${ns}>`);
  out.line(`<name>${esc(def.name)}</name>`);
  out.line(`<uuid>${esc(def.uuid)}</uuid>`);
  out.line(`<capacity unit='bytes'>${live ? live.capacity : 0n}</capacity>`);
  out.line(`<allocation unit='bytes'>${live ? live.allocation : 0n}</allocation>`);
  out.line(`<available unit='bytes'>${live ? live.available : 0n}</available>`);
  const cow = def.features?.cow ?? Tristate.TRISTATE_ABSENT;
  if (cow === Tristate.TRISTATE_YES || cow === Tristate.TRISTATE_NO) {
    out.open('<features>');
    out.line(`<cow state='${tristateToString(cow)}'/>`);
    out.close('</features>');
  }
  writePoolSource(out, info, def.source ?? emptySource(), live?.devices);
  if (info.hasTarget) {
    out.open('<target>');
    if (def.target?.path) out.line(`<path>${esc(def.target.path)}</path>`);
    writePermissions(out, live?.targetPermissions ?? def.target?.permissions);
    out.close('</target>');
  }
  if (mountOptions.length) {
    out.open('<fs:mount_opts>');
    for (const o of mountOptions) out.line(`<fs:option name='${esc(o)}'/>`);
    out.close('</fs:mount_opts>');
  }
  out.close('</pool>');
  return out.toString();
}

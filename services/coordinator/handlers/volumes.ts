// Volume work goes to the agent; reads come from the cache.
import { AlreadyExistsError, InvalidArgumentError, NotFoundError } from '../../../libs/errors/errors.js';
import { volumeName, type VolumeRef } from '../../../libs/api/resource-names.js';
import type {
  CloneVolumeRequest,
  CreateVolumeRequest,
  DeleteVolumeRequest,
  DeleteVolumeResponse,
  GetVolumeRequest,
  GetVolumeXMLRequest,
  ListVolumesRequest,
  ListVolumesResponse,
  LookupVolumeRequest,
  ResizeVolumeRequest,
  Volume,
  WipeVolumeRequest,
  XMLDocument,
} from '../../../libs/proto/cistern/v1/storage.js';
import { compare } from '../cache.js';
import { volumeView } from '../catalog-view.js';
import type { CallContext, CoordinatorServices } from '../context.js';
import { forwardToPool } from '../forward.js';
import { catchUp } from '../catch-up.js';
import { storedListVolumes, storedVolumeMessage } from '../list-encoding.js';
import { requireActive, resolvePool, resolveStoredVolume, resolveVolume, resolveVolumeForWork } from '../lookup.js';
import { decodePageToken, encodePageToken, firstAfter, itemBytes, MAX_PAGE_BYTES, pageSize } from '../pagination.js';
import {
  checkAbsolutePath,
  checkRequestId,
  checkResizeCapacity,
  definitionErrorsUnderRequest,
  checkWipeAlgorithm,
  requireHost,
  requirePoolName,
  requireVolumeName,
  validateAgainstSchema,
  volumeDefinitionFrom,
} from '../validate.js';
import { SchemaValidator } from '../schema-validator.js';
import { storedSize, type StoredVolume } from '../stored-volume.js';
import { requireXml } from '../xml.js';
import { volumeByStableLink } from '../stable-link-lookup.js';
import { withDefaultSecret } from '../secrets/default-secret.js';
import { withInheritedEncryption } from '../secrets/clone-encryption.js';
import { volumeAfter } from '../volume-after.js';

/**
 * ALREADY_EXISTS from the cache, without asking the agent. Not for a call with a request
 * id: it may be the retry of a create that went through (the agent answers it from its
 * request cache, and says ALREADY_EXISTS otherwise).
 */
function requireAbsent(svc: CoordinatorServices, ctx: CallContext, host: string, pool: string, name: string): void {
  if (ctx.requestId) return;
  if (svc.cache.hasVolume(host, pool, name)) {
    throw new AlreadyExistsError(`storage volume '${name}' already exists in pool '${pool}' on host '${host}'`, { host, pool, volume: name });
  }
}

export async function createVolume(svc: CoordinatorServices, ctx: CallContext, req: CreateVolumeRequest): Promise<Volume> {
  const ref = requirePoolName(req.parent, 'parent');
  checkRequestId(req.requestId);
  const p = requireActive(resolvePool(svc, ref));
  await validateAgainstSchema(svc.schemas ?? new SchemaValidator(), req, 'storagevol', ctx.signal);
  const def = await volumeDefinitionFrom(req.definition, req.xml, p.definition, { signal: ctx.signal });
  requireAbsent(svc, ctx, ref.host, ref.pool, def.name);
  const reply = await definitionErrorsUnderRequest(
    'volume',
    req,
    forwardToPool(svc, ctx, p, { $case: 'createVolume', value: { ...req, definition: def, xml: '' } }),
  );
  return volumeAfter(svc, ref.host, ref.pool, def.name, reply);
}

export async function cloneVolume(svc: CoordinatorServices, ctx: CallContext, req: CloneVolumeRequest): Promise<Volume> {
  const ref = requirePoolName(req.parent, 'parent');
  const src = requireVolumeName(req.source, 'source');
  checkRequestId(req.requestId);
  if (src.host !== ref.host) {
    throw new InvalidArgumentError('source', `the source volume is on host '${src.host}', the destination pool on '${ref.host}'; a clone stays on one host`);
  }
  const p = requireActive(resolvePool(svc, ref));
  const source = resolveVolumeForWork(svc, src);
  await validateAgainstSchema(svc.schemas ?? new SchemaValidator(), req, 'storagevol', ctx.signal);
  // XML is read alone, as libvirt reads it: what it leaves out gets the pool's defaults. A
  // structured definition is laid over the source's by the agent: a format it does not name
  // stays empty so that the source's is kept (CloneVolumeRequest in storage.proto)
  const fromXml = req.xml !== '';
  const given = await volumeDefinitionFrom(req.definition, req.xml, p.definition, { cloning: true, formatFromSource: !fromXml, signal: ctx.signal });
  // a LUKS source's encryption comes with the secret of its path, as in libvirt's vol-dumpxml
  // that virsh vol-clone sends (secrets/clone-encryption.ts); XML is read alone, as libvirt's
  const def = fromXml ? given : await withInheritedEncryption(svc.secrets, given, { pool: source.pool.definition, volume: source.volume?.definition });
  requireAbsent(svc, ctx, ref.host, ref.pool, def.name);
  const reply = await definitionErrorsUnderRequest(
    'volume',
    req,
    // a LUKS source's passphrase goes with the request (secrets/resolve.ts)
    forwardToPool(svc, ctx, p, { $case: 'cloneVolume', value: { ...req, definition: def, xml: '' } }, { sourcePool: source.pool.definition, cloneFromXml: fromXml }, { volume: source.volume?.definition }),
  );
  return volumeAfter(svc, ref.host, ref.pool, def.name, reply);
}

export async function deleteVolume(svc: CoordinatorServices, ctx: CallContext, req: DeleteVolumeRequest): Promise<DeleteVolumeResponse> {
  const ref = requireVolumeName(req.name);
  checkRequestId(req.requestId);
  // the retry of a delete that went through finds no volume here: with a request id the agent
  // decides (its request cache answers a retry; it says NOT_FOUND otherwise)
  const pool = ctx.requestId ? requireActive(resolvePool(svc, ref)) : resolveVolumeForWork(svc, ref).pool;
  await forwardToPool(svc, ctx, pool, { $case: 'deleteVolume', value: req });
  return {};
}

export async function wipeVolume(svc: CoordinatorServices, ctx: CallContext, req: WipeVolumeRequest): Promise<Volume> {
  const ref = requireVolumeName(req.name);
  checkRequestId(req.requestId);
  checkWipeAlgorithm(req.algorithm);
  const { pool } = resolveVolumeForWork(svc, ref);
  const reply = await forwardToPool(svc, ctx, pool, { $case: 'wipeVolume', value: req });
  return volumeAfter(svc, ref.host, ref.pool, ref.volume, reply);
}

export async function resizeVolume(svc: CoordinatorServices, ctx: CallContext, req: ResizeVolumeRequest): Promise<Volume> {
  const ref = requireVolumeName(req.name);
  checkRequestId(req.requestId);
  checkResizeCapacity(req);
  let { pool, volume } = resolveVolumeForWork(svc, ref);
  if (!volume && !svc.hosts.busDown) {
    // an encrypted volume's passphrase goes with the request, found from its definition: a
    // name this coordinator has not read may be a volume another one made a moment ago, so
    // it reads what the stream holds first (catch-up.ts), as a NOT_FOUND of its own would
    await catchUp(svc).catch(() => false);
    ({ pool, volume } = resolveVolumeForWork(svc, ref));
  }
  // an encrypted volume's passphrase goes with the request (secrets/resolve.ts)
  const reply = await forwardToPool(svc, ctx, pool, { $case: 'resizeVolume', value: req }, {}, { volume: volume?.definition });
  return volumeAfter(svc, ref.host, ref.pool, ref.volume, reply);
}

export async function getVolume(svc: CoordinatorServices, ctx: CallContext, req: GetVolumeRequest): Promise<Volume> {
  const ref = requireVolumeName(req.name);
  if (req.refresh) await rereadOnHost(svc, ctx, ref, req);
  // the stored bytes, copied into the response by its serializer (list-encoding.ts): no decode
  const { pool, stored } = resolveStoredVolume(svc, ref);
  return storedVolumeMessage(stored, pool.stale);
}

/**
 * `refresh`: the volume read again by its agent (libvirt's vol-info and vol-dumpxml re-read
 * it), what changed in the cache before the answer is read from it. A host that is not online
 * cannot: the answer is then what is known, marked stale as any read of an offline host's pool.
 */
async function rereadOnHost(svc: CoordinatorServices, ctx: CallContext, ref: VolumeRef, req: { name: string }): Promise<void> {
  const { pool } = resolveVolume(svc, ref);
  if (!svc.hosts.isOnline(ref.host)) return;
  await forwardToPool(svc, ctx, pool, { $case: 'refreshVolume', value: { name: req.name, refresh: true } });
}

export async function listVolumes(svc: CoordinatorServices, _ctx: CallContext, req: ListVolumesRequest): Promise<ListVolumesResponse> {
  const ref = requirePoolName(req.parent, 'parent');
  const size = pageSize(req.pageSize);
  const after = decodePageToken(req.pageToken, `volumes:${ref.host}/${ref.pool}`, 1);
  const p = requireActive(resolvePool(svc, ref));
  const names = svc.cache.volumeNames(ref.host, ref.pool);
  const start = after ? firstAfter(names, after[0]!, compare) : 0;
  const limit = Math.min(names.length, start + size);
  // the stored bytes, copied into the response by its serializer (list-encoding.ts): no decode
  const stored: StoredVolume[] = [];
  let bytes = 0;
  let end = start;
  for (; end < limit; end++) {
    const s = svc.cache.storedVolume(ref.host, ref.pool, names[end]!)!;
    bytes += itemBytes(storedSize(s, p.stale));
    if (bytes > MAX_PAGE_BYTES && stored.length > 0) break;
    stored.push(s);
  }
  const nextPageToken = end < names.length ? encodePageToken(`volumes:${ref.host}/${ref.pool}`, [names[end - 1]!]) : '';
  return storedListVolumes(stored, p.stale, nextPageToken);
}

export async function getVolumeXml(svc: CoordinatorServices, ctx: CallContext, req: GetVolumeXMLRequest): Promise<XMLDocument> {
  const ref = requireVolumeName(req.name);
  if (req.refresh) await rereadOnHost(svc, ctx, ref, req);
  const { pool, volume } = resolveVolume(svc, ref);
  const lib = await requireXml('GetVolumeXML');
  // a LUKS volume names the secret of its path, as libvirt's vol-dumpxml after a refresh
  const definition = await withDefaultSecret(svc.secrets, volume.definition!);
  return { xml: lib.formatVolumeXml(definition, pool.definition) };
}

export async function lookupVolume(svc: CoordinatorServices, ctx: CallContext, req: LookupVolumeRequest): Promise<Volume> {
  const host = requireHost(req.host);
  if (req.key && req.path) throw new InvalidArgumentError('path', 'give either key or path, not both');
  if (!req.key && !req.path) throw new InvalidArgumentError('key', 'is required (or path)');
  if (req.key) checkLookupKey(req.key, 'key');
  // file and block volumes have absolute paths; network LUNs (iscsi-direct) have
  // libvirt's ip-HOST:PORT-iscsi-IQN-lun-N paths, looked up as they are
  const path = !req.path
    ? undefined
    : req.path.startsWith('/')
      ? checkAbsolutePath(req.path, 'path')
      : checkLookupKey(req.path, 'path');
  svc.hosts.requireKnown(host);
  // a /dev path no volume has may be the kernel name of one whose path is a stable link (libvirt's
  // storageVolLookupByPath): only such a miss asks the host (stable-link-lookup.ts)
  const found =
    path !== undefined
      ? (svc.cache.volumeByPath(host, path) ?? (await volumeByStableLink(svc, ctx, host, path)))
      : svc.cache.volumeByKey(host, req.key);
  if (!found) {
    const what = path !== undefined ? `path '${path}'` : `key '${req.key}'`;
    throw new NotFoundError(`no storage volume with matching ${what} on host '${host}'`, { host });
  }
  // stale as every read of the host's volumes (resolvePool): also while this coordinator is
  // cut off from NATS, when the host is online as last known but nothing it did since is heard
  return volumeView({ ...found, name: found.name || volumeName(host, found.pool, found.definition?.name ?? '') }, !svc.hosts.isCurrent(host));
}

function checkLookupKey(value: string, field: string): string {
  if (value.length > 4096 || /[\x00-\x1f\x7f]/.test(value)) {
    throw new InvalidArgumentError(field, 'is longer than 4096 characters or contains a control character');
  }
  return value;
}

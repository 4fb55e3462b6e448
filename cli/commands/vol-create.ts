// vol-create, vol-create-as, vol-create-from, vol-clone.
import {
  CloneVolumeRequest, CreateVolumeRequest, EventKind, GetVolumeXMLRequest, VolumeDefinition,
} from '../../libs/proto/cistern/v1/storage.js';
import { flag, req, str } from '../args.js';
import type { Command } from '../command.js';
import { attempt, UsageError } from '../errors.js';
import { readXmlFile } from '../files.js';
import { nodeToString } from '../format/dumpxml.js';
import { volumePath, volumeShortName } from '../format/volume.js';
import { volAsXml, type VolAsFields } from '../format/xml.js';
import { volumeTarget, withProgress, type ProgressTarget } from '../progress-watch.js';
import { resolveBackingVolume, resolvePool, type ResolvedPool } from '../resolve.js';
import { parseXmlTree } from '../xml-tree.js';
import { parseSize } from '../size.js';
import { POOL_OPTION } from './pool-lifecycle.js';
import { POOL_OPTIONAL, PREALLOC_OPTION, VALIDATE_OPTION, VOL_HOST_OPTION, VOL_OPTION, volumeFromOptions } from './vol-common.js';

/** Where a new volume's create or clone progress is published. */
function createTarget(pool: ResolvedPool): ProgressTarget {
  return { host: pool.host, pool: pool.pool, result: EventKind.VOLUME_CREATED };
}

/**
 * Whether a volume XML asks for allocated space, i.e. a create that reports progress:
 * libvirt allocates the capacity when <allocation> is absent; `0` or a backing store
 * (a copy-on-write overlay) allocate nothing.
 */
export function xmlAllocates(xml: string): boolean {
  if (/<backingStore[\s>]/.test(xml)) return false;
  return !/<allocation(\s[^>]*)?>\s*0+\s*<\/allocation>/.test(xml);
}

export const volCreate: Command = {
  name: 'vol-create',
  help: 'create a vol from an XML file',
  description: 'Create a vol.',
  options: [POOL_OPTION, { name: 'file', type: 'string', required: true, nonEmpty: true, help: 'file containing an XML vol description' }, PREALLOC_OPTION, VALIDATE_OPTION],
  async run(ctx) {
    // virsh looks the pool up before it reads the file: a wrong pool is reported as such
    const api = ctx.api();
    const pool = await resolvePool(api, req(ctx.opts, 'pool'));
    const file = req(ctx.opts, 'file');
    const xml = await readXmlFile(file);
    const create = (requestId: string) =>
      api.createVolume(CreateVolumeRequest.create({
        parent: pool.resource, xml, preallocMetadata: flag(ctx.opts, 'prealloc-metadata'), validate: flag(ctx.opts, 'validate'), requestId,
      }));
    const vol = await attempt(`Failed to create vol from ${file}`, () =>
      xmlAllocates(xml) ? withProgress(ctx, createTarget(pool), create) : create(''));
    ctx.printExtra(`Vol ${volumeShortName(vol)} created from ${file}\n`);
  },
};

/** The volume vol-create-as describes, as a VolumeDefinition message. */
export function volAsDefinition(f: VolAsFields): VolumeDefinition {
  return VolumeDefinition.create({
    name: f.name,
    capacity: f.capacity,
    ...(f.allocation !== undefined ? { allocation: f.allocation } : {}),
    ...(f.format !== undefined ? { target: { format: f.format } } : {}),
    ...(f.backingPath !== undefined
      ? { backingStore: { path: f.backingPath, format: f.backingFormat ?? '' } }
      : {}),
  });
}

export const volCreateAs: Command = {
  name: 'vol-create-as',
  help: 'create a volume from a set of args',
  description: 'Create a vol.',
  options: [
    POOL_OPTION,
    { name: 'name', type: 'string', required: true, nonEmpty: true, help: 'name of the volume' },
    { name: 'capacity', type: 'string', required: true, help: 'size of the vol, as scaled integer (default bytes)' },
    { name: 'allocation', type: 'string', help: 'initial allocation size, as scaled integer (default bytes)' },
    { name: 'format', type: 'string', nonEmpty: true, help: 'file format type raw,bochs,qcow,qcow2,qed,vmdk' },
    { name: 'backing-vol', type: 'string', nonEmpty: true, help: 'the backing volume if taking a snapshot' },
    { name: 'backing-vol-format', type: 'string', nonEmpty: true, help: 'format of backing volume if taking a snapshot' },
    PREALLOC_OPTION,
    { name: 'print-xml', type: 'bool', help: 'print XML document, but don\'t define/create' },
  ],
  async run(ctx) {
    // virsh looks the pool up first: `vol-create-as nopool x 1X` is a pool that does not exist
    const api = ctx.api();
    const pool = await resolvePool(api, req(ctx.opts, 'pool'));
    const name = req(ctx.opts, 'name');
    const fields: VolAsFields = { name, capacity: parseSize(req(ctx.opts, 'capacity'), 'capacity') };
    const allocation = str(ctx.opts, 'allocation');
    // virsh reads --allocation quietly (vshCommandOptStringQuiet): an empty one is as if not given
    if (allocation !== undefined && allocation !== '') fields.allocation = parseSize(allocation, 'allocation');
    const format = str(ctx.opts, 'format');
    if (format !== undefined) fields.format = format;
    const backing = str(ctx.opts, 'backing-vol');
    // read even without --backing-vol, as virsh does: an empty one is refused either way
    const backingFormat = str(ctx.opts, 'backing-vol-format');
    if (backing !== undefined) {
      const backingVol = await resolveBackingVolume(api, backing, pool);
      fields.backingPath = volumePath(backingVol);
      if (backingFormat !== undefined) fields.backingFormat = backingFormat;
    }
    if (flag(ctx.opts, 'print-xml')) {
      ctx.print(volAsXml(fields));
      return;
    }
    const create = (requestId: string) =>
      api.createVolume(CreateVolumeRequest.create({
        parent: pool.resource, definition: volAsDefinition(fields), preallocMetadata: flag(ctx.opts, 'prealloc-metadata'), requestId,
      }));
    // no --allocation means the whole capacity (libvirt); 0 or a backing volume allocate nothing
    const allocates = fields.allocation !== 0n && fields.backingPath === undefined;
    await attempt(`Failed to create vol ${name}`, () =>
      allocates ? withProgress(ctx, createTarget(pool), create) : create(''));
    ctx.printExtra(`Vol ${name} created\n`);
  },
};

export const volCreateFrom: Command = {
  name: 'vol-create-from',
  help: 'create a vol, using another volume as input',
  description: 'Create a vol from an existing volume.',
  options: [
    POOL_OPTION,
    { name: 'file', type: 'string', required: true, nonEmpty: true, help: 'file containing an XML vol description' },
    { name: 'vol', type: 'string', required: true, nonEmpty: true, help: 'vol name, key or path' },
    { name: 'inputpool', type: 'string', metavar: 'pool', nonEmpty: true, help: 'pool name or uuid of the input volume\'s pool' },
    PREALLOC_OPTION,
    { name: 'reflink', type: 'bool', help: 'use btrfs COW lightweight copy' },
    VALIDATE_OPTION,
    VOL_HOST_OPTION,
  ],
  async run(ctx) {
    // virsh's order: the pool, then the input volume, then the file
    const api = ctx.api();
    const pool = await resolvePool(api, req(ctx.opts, 'pool'));
    const file = req(ctx.opts, 'file');
    const input = await volumeFromOptions(ctx, 'vol', 'inputpool');
    const xml = await readXmlFile(file);
    const vol = await attempt(`Failed to create vol from ${file}`, () =>
      withProgress(ctx, createTarget(pool), (requestId) =>
        api.cloneVolume(CloneVolumeRequest.create({
          parent: pool.resource,
          source: input.name,
          xml,
          preallocMetadata: flag(ctx.opts, 'prealloc-metadata'),
          reflink: flag(ctx.opts, 'reflink'),
          validate: flag(ctx.opts, 'validate'),
          requestId,
        }))));
    // virsh prints the input volume's name (virStorageVolGetName), not the key or path that found it
    ctx.printExtra(`Vol ${volumeShortName(vol)} created from input vol ${volumeShortName(input)}\n`);
  },
};

/**
 * virshMakeCloneXML: the source volume's XML with /volume/name set to the new name, the rest
 * (key, target path) as the source has it, printed as libxml2 dumps the root element
 * (double-quoted attributes, no declaration, no final newline).
 */
export function cloneXml(sourceXml: string, newname: string): string {
  const doc = parseXmlTree(sourceXml);
  const root = doc.children[0];
  const name = root?.type === 'element' && root.name === 'volume'
    ? root.children.find((c) => c.type === 'element' && c.name === 'name')
    : undefined;
  if (!root || name?.type !== 'element') throw new UsageError('Failed to allocate XML buffer', 'the volume XML has no /volume/name');
  name.children = [{ type: 'text', parent: name, value: newname, order: name.order + 1 }];
  return nodeToString(root);
}

export const volClone: Command = {
  name: 'vol-clone',
  help: 'clone a volume.',
  description: 'Clone an existing volume within the parent pool.',
  options: [
    VOL_OPTION,
    { name: 'newname', type: 'string', required: true, nonEmpty: true, help: 'clone name' },
    POOL_OPTIONAL,
    PREALLOC_OPTION,
    { name: 'reflink', type: 'bool', help: 'use btrfs COW lightweight copy' },
    { name: 'print-xml', type: 'bool', help: 'print XML document rather than clone the volume' },
    VOL_HOST_OPTION,
  ],
  async run(ctx) {
    const source = await volumeFromOptions(ctx);
    const newname = req(ctx.opts, 'newname');
    if (flag(ctx.opts, 'print-xml')) {
      // virsh prints libvirt's error alone when the XML cannot be read: no line of its own
      const doc = await ctx.api().getVolumeXml(GetVolumeXMLRequest.create({ name: source.name }));
      ctx.print(cloneXml(doc.xml, newname));
      return;
    }
    const parent = source.name.split('/').slice(0, 4).join('/');
    const srcName = volumeShortName(source);
    await attempt(`Failed to clone vol from ${srcName}`, () =>
      withProgress(ctx, volumeTarget(source, EventKind.VOLUME_CREATED), (requestId) =>
        ctx.api().cloneVolume(CloneVolumeRequest.create({
          parent,
          source: source.name,
          definition: VolumeDefinition.create({ name: newname }),
          preallocMetadata: flag(ctx.opts, 'prealloc-metadata'),
          reflink: flag(ctx.opts, 'reflink'),
          requestId,
        }))));
    ctx.printExtra(`Vol ${newname} cloned from ${srcName}\n`);
  },
};

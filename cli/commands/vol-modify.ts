// vol-delete, vol-wipe, vol-resize.
import {
  DeleteVolumeRequest, EventKind, ResizeVolumeRequest, WipeAlgorithm, WipeVolumeRequest,
} from '../../libs/proto/cistern/v1/storage.js';
import { flag, req, str } from '../args.js';
import type { Command } from '../command.js';
import { attempt, UsageError } from '../errors.js';
import { volumeShortName } from '../format/volume.js';
import { volumeTarget, withProgress } from '../progress-watch.js';
import { parseSize, parseSizeValue } from '../size.js';
import { POOL_OPTIONAL, VOL_HOST_OPTION, VOL_OPTION, volumeFromOptions } from './vol-common.js';

export const volDelete: Command = {
  name: 'vol-delete',
  help: 'delete a vol',
  description: 'Delete a given vol.',
  options: [VOL_OPTION, POOL_OPTIONAL, VOL_HOST_OPTION],
  async run(ctx) {
    const vol = await volumeFromOptions(ctx);
    const text = req(ctx.opts, 'vol');
    await attempt(`Failed to delete vol ${text}`, () => ctx.api().deleteVolume(DeleteVolumeRequest.create({ name: vol.name })));
    ctx.printExtra(`Vol ${text} deleted\n`);
  },
};

export const WIPE_ALGORITHMS: Record<string, WipeAlgorithm> = {
  zero: WipeAlgorithm.WIPE_ALGORITHM_ZERO,
  nnsa: WipeAlgorithm.WIPE_ALGORITHM_NNSA,
  dod: WipeAlgorithm.WIPE_ALGORITHM_DOD,
  bsi: WipeAlgorithm.WIPE_ALGORITHM_BSI,
  gutmann: WipeAlgorithm.WIPE_ALGORITHM_GUTMANN,
  schneier: WipeAlgorithm.WIPE_ALGORITHM_SCHNEIER,
  pfitzner7: WipeAlgorithm.WIPE_ALGORITHM_PFITZNER7,
  pfitzner33: WipeAlgorithm.WIPE_ALGORITHM_PFITZNER33,
  random: WipeAlgorithm.WIPE_ALGORITHM_RANDOM,
  trim: WipeAlgorithm.WIPE_ALGORITHM_TRIM,
};

export function parseWipeAlgorithm(word: string): WipeAlgorithm {
  const alg = WIPE_ALGORITHMS[word];
  if (alg === undefined) {
    throw new UsageError(`Unsupported algorithm '${word}'; allowed: ${Object.keys(WIPE_ALGORITHMS).join(', ')}`);
  }
  return alg;
}

export const volWipe: Command = {
  name: 'vol-wipe',
  help: 'wipe a vol',
  description: 'Ensure data previously on a volume is not accessible to future reads',
  options: [
    VOL_OPTION, POOL_OPTIONAL,
    { name: 'algorithm', type: 'string', metavar: 'string', nonEmpty: true, help: 'perform selected wiping algorithm' },
    VOL_HOST_OPTION,
  ],
  async run(ctx) {
    // virsh looks the volume up before it reads --algorithm
    const vol = await volumeFromOptions(ctx);
    const algorithm = parseWipeAlgorithm(str(ctx.opts, 'algorithm') ?? 'zero');
    const text = req(ctx.opts, 'vol');
    await attempt(`Failed to wipe vol ${text}`, () =>
      withProgress(ctx, volumeTarget(vol, EventKind.VOLUME_WIPED), (requestId) =>
        ctx.api().wipeVolume(WipeVolumeRequest.create({ name: vol.name, algorithm, requestId }))));
    ctx.printExtra(`Vol ${text} wiped\n`);
  },
};

export interface ResizeArgs {
  capacity: bigint;
  delta: boolean;
  /** the size as the user wrote it, without a leading '-' (virsh prints it back) */
  shown: string;
}

/** virsh: a leading '-' means shrink by that much (needs --shrink, implies --delta). */
export function parseResizeCapacity(text: string, delta: boolean, shrink: boolean): ResizeArgs {
  // virsh skips leading blanks before it looks for the '-' (and prints the size without them)
  let shown = text.replace(/^\s+/, '');
  if (shown.startsWith('-')) {
    if (!shrink) throw new UsageError('negative size requires --shrink');
    shown = shown.slice(1);
    delta = true;
  }
  if (text === '') parseSize(text, 'capacity'); // virsh's "Option argument is empty"
  return { capacity: parseSizeValue(shown, 'capacity'), delta, shown };
}

export const volResize: Command = {
  name: 'vol-resize',
  help: 'resize a vol',
  description: 'Resizes a storage volume. This is safe only for storage volumes not in use by an active guest.\nSee blockresize for live resizing.',
  options: [
    VOL_OPTION,
    { name: 'capacity', type: 'string', required: true, help: 'new capacity for the vol, as scaled integer (default bytes)' },
    POOL_OPTIONAL,
    { name: 'allocate', type: 'bool', help: 'allocate the new capacity, rather than leaving it sparse' },
    { name: 'delta', type: 'bool', help: 'use capacity as a delta to current size, rather than the new size' },
    { name: 'shrink', type: 'bool', help: 'allow the resize to shrink the volume' },
    VOL_HOST_OPTION,
  ],
  async run(ctx) {
    // virsh looks the volume up before it reads the size: a missing volume is reported first
    const vol = await volumeFromOptions(ctx);
    const shrink = flag(ctx.opts, 'shrink');
    const r = parseResizeCapacity(req(ctx.opts, 'capacity'), flag(ctx.opts, 'delta'), shrink);
    const name = volumeShortName(vol);
    const allocate = flag(ctx.opts, 'allocate');
    const resize = (requestId: string): Promise<unknown> =>
      ctx.api().resizeVolume(ResizeVolumeRequest.create({
        name: vol.name, capacity: r.capacity, allocate, delta: r.delta, shrink, requestId,
      }));
    await attempt(`Failed to change size of volume '${name}' ${r.delta ? 'by' : 'to'} ${r.shown}`, () =>
      allocate ? withProgress(ctx, volumeTarget(vol, EventKind.VOLUME_RESIZED), resize) : resize(''));
    ctx.printExtra(`Size of volume '${name}' successfully changed ${r.delta ? 'by' : 'to'} ${r.shown}\n`);
  },
};

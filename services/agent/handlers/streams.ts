// Upload and download: the locks are taken here and held until the data has been
// written / the download stream has ended (libs/bus/streams.ts moves the bytes). After an
// upload the whole pool is refreshed, as libvirt does.
import type { AgentOpValue } from '../../../libs/bus/agent-rpc.js';
import { AgentReply, StreamChunk, type AgentRequest } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { EventKind } from '../../../libs/proto/cistern/v1/storage.js';
import { CancelledError, InternalError, InvalidArgumentError } from '../../../libs/errors/errors.js';
import { errorToWire } from '../../../libs/bus/agent-rpc.js';
import { checkExistingVolumeName } from '../../../libs/api/names.js';
import { acceptUpload, IDLE_TIMEOUT_MS, serveDownload, type UploadResult } from '../../../libs/bus/streams.js';
import {
  actorOf,
  activePool,
  backendFor,
  flushEvents,
  poolContext,
  requestPool,
  requireOperation,
  type AgentContext,
} from '../context.js';
import { commitVolume, existingVolume, rereadAfterFailure, untilPublishedCreateEnds } from './volume-ops.js';
import { refreshAfterUpload } from './pool-ops.js';
import { explainNoSpace } from '../no-space.js';


export async function uploadBegin(ctx: AgentContext, request: AgentRequest, op: AgentOpValue<'uploadBegin'>): Promise<AgentReply> {
  if (!ctx.nc) throw new InternalError('upload needs the bus connection');
  const nc = ctx.nc;
  const def = requestPool(request);
  checkExistingVolumeName(op.volume, 'volume');
  // a retry of an upload this agent committed gets its outcome and sends nothing; one of an
  // upload still taking data stops it first (upload-requests.ts)
  const earlier = await ctx.uploads?.earlier(request, actorOf(request).signal);
  if (earlier) {
    return AgentReply.create({
      result: { $case: 'uploadDone', value: { volume: earlier.volume, bytesWritten: earlier.bytesWritten } },
      eventSequence: earlier.eventSequence,
    });
  }
  await untilPublishedCreateEnds(ctx, def.name, op.volume, 'upload', actorOf(request).signal);
  const pool = activePool(ctx, def.name);
  const backend = backendFor(ctx, pool.definition.type);
  requireOperation(backend, 'uploadVol', 'uploading to a volume');
  const vol = existingVolume(ctx, pool, op.volume);
  // no check of the offset against the capacity (libvirt has none): a file volume grows when
  // written past its end, whatever its format; the backends refuse to write past the end of
  // a block device
  const capacity = vol.definition.capacity ?? 0n;
  const actor = actorOf(request);
  const release = ctx.locks.acquireVolume(def.name, op.volume, 'upload');
  // whether the backend has taken all the data it will: from then on a retry joins this upload
  // instead of stopping it
  let allTaken = false;
  let outcome: Promise<UploadResult> | undefined;
  try {
    const ready = acceptUpload(nc, ctx.host, (sent, senderGaveUp) => (outcome = write(sent, senderGaveUp)));
    if (outcome && ready.result?.$case === 'uploadReady') {
      const streamSubject = ready.result.value.streamSubject;
      ctx.uploads?.track(request, {
        outcome,
        allTaken: () => allTaken,
        // as the sender's own cancel: the upload fails CANCELLED, is not committed, and lets go
        stop: (reason) => {
          try {
            nc.publish(streamSubject, StreamChunk.encode({ ...StreamChunk.create(), error: errorToWire(new CancelledError(reason)) }).finish());
          } catch {
            // the bus is gone: the upload ends on its idle limit, the retry waits for that
          }
        },
      });
    }
    return ready;
  } catch (err) {
    release();
    throw err;
  }

  async function write(sent: AsyncIterable<Buffer>, senderGaveUp: AbortSignal): Promise<UploadResult> {
    let uploaded: UploadResult | undefined;
    let failure: unknown;
    // whether the backend took any data: an upload refused before that wrote nothing
    let flowed = false;
    const data = (async function* () {
      for await (const piece of sent) {
        flowed = true;
        yield piece;
      }
      allTaken = true;
    })();
    try {
      const pc = poolContext(ctx, pool.definition, actor, { operation: 'upload', volume: op.volume });
      // the backend reports progress (bytes written of length) through pc.progress. An
      // upload "to the end of the stream" (length 0) counts against the rest of the volume;
      // past it (a file volume grows) its total is not known (0) until the stream ends.
      // Reported as `done`, every report from there on read as the last one (done ==
      // total), which the throttle lets through: one event per chunk, thousands for an
      // image uploaded into a volume created small.
      const report = pc.progress;
      const rest = capacity > op.offset ? capacity - op.offset : 0n;
      if (report && op.length === 0n) pc.progress = (done, total) => report(done, total > 0n ? total : done < rest ? rest : 0n);
      let bytesWritten: bigint;
      try {
        bytesWritten = await backend.uploadVol!(pc, vol.definition, op.offset, op.length, data, { sparse: op.sparse });
        allTaken = true;
        // the client cancelled (or its deadline passed) during the final datasync: it was
        // told CANCELLED, so the upload is not committed as uploaded (docs/api.md); what was
        // written stays and is re-read, as after any failure once data flowed
        if (senderGaveUp.aborted) throw senderGaveUp.reason;
      } catch (err) {
        if (flowed) await rereadAfterFailure(ctx, pool, backend, pc, vol, actor);
        throw err;
      }
      // the stream has ended: its total is what it carried (the last event, done == total),
      // also when it carried less than its declared length (taken, as libvirt takes it)
      if ((op.length === 0n || bytesWritten < op.length) && bytesWritten > 0n) report?.(bytesWritten, bytesWritten);
      const volume = await commitVolume(ctx, pool, backend, pc, vol.definition, EventKind.VOLUME_UPLOADED, actor);
      const eventSequence = await flushEvents(ctx);
      ctx.log.info('volume uploaded', { pool: def.name, volume: op.volume, bytes: bytesWritten, requestId: actor.requestId });
      uploaded = { volume, bytesWritten, eventSequence };
    } catch (err) {
      failure = err;
    } finally {
      release();
    }
    // libvirt re-reads the whole pool once an upload's stream has closed, however it ended
    // (virStorageVolFDStreamCloseCb runs on an abort too: an interrupted upload is a refresh
    // event). The volume's lock is released first, so its scan is taken too. The answer waits
    // for the refresh (the caller then sees the pool as re-read), but not past half the
    // sender's idle timeout: a slower refresh ends in the background, and the upload has
    // succeeded, or failed, either way. After a failure the refresh's events carry no request
    // id: a failed call is not remembered, and its retry (same id) runs again as a call of
    // its own. An upload refused before any data reached the backend (libvirt's fails before its stream
    // opens) changed nothing: no refresh, no event
    if (!uploaded && !flowed) throw explainNoSpace(ctx, request, failure);
    const refreshActor = uploaded ? actor : { ...actor, requestId: '' };
    const refreshed = await waitAtMost(refreshAfterUpload(ctx, def.name, refreshActor), ctx.uploadRefreshWaitMs ?? IDLE_TIMEOUT_MS / 2);
    if (!uploaded) throw explainNoSpace(ctx, request, failure);
    return refreshed !== undefined && refreshed > uploaded.eventSequence ? { ...uploaded, eventSequence: refreshed } : uploaded;
  }
}

/** `work`'s result, or undefined when it takes longer than `ms` (it goes on regardless). */
async function waitAtMost<T>(work: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

export async function downloadBegin(ctx: AgentContext, request: AgentRequest, op: AgentOpValue<'downloadBegin'>): Promise<AgentReply> {
  if (!ctx.nc) throw new InternalError('download needs the bus connection');
  const def = requestPool(request);
  checkExistingVolumeName(op.volume, 'volume');
  if (!op.deliverSubject) throw new InvalidArgumentError('deliver_subject', 'a subject to deliver the data to is required');
  await untilPublishedCreateEnds(ctx, def.name, op.volume, 'download', actorOf(request).signal);
  const pool = activePool(ctx, def.name);
  const backend = backendFor(ctx, pool.definition.type);
  requireOperation(backend, 'downloadVol', 'downloading a volume');
  const vol = existingVolume(ctx, pool, op.volume);
  // The length announced in DownloadReady is what the last re-read knew of the volume. The
  // backend is given the length asked for (0 = to the end) and reads the volume as it is now,
  // as libvirt streams the file to its end: a file that grew since (a guest writing into its
  // image, data appended by hand) is downloaded whole, not cut at its old size. From the end
  // on the download is empty, as libvirt's.
  const size = vol.definition.physical ?? vol.definition.capacity ?? 0n;
  const rest = size > op.offset ? size - op.offset : 0n;
  const length = op.length > 0n && (rest === 0n || op.length < rest) ? op.length : rest;
  const actor = actorOf(request);
  const release = ctx.locks.acquireVolume(def.name, op.volume, 'download', 'shared');
  try {
    const pc = poolContext(ctx, pool.definition, actor, { operation: 'download', volume: op.volume });
    const data = backend.downloadVol!(pc, vol.definition, op.offset, op.length);
    return serveDownload(ctx.nc, op, data, length, (error) => {
      release();
      if (error) ctx.log.warn('download ended with an error', { pool: def.name, volume: op.volume, error });
      // progress events of the download are stored with the next flush
      void flushEvents(ctx);
    });
  } catch (err) {
    release();
    throw err;
  }
}

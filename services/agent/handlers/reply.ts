// Helpers for building AgentReply messages.
import { AgentReply } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { Volume, type Pool } from '../../../libs/proto/cistern/v1/storage.js';

/** Replies stay well under NATS's 1 MiB payload limit; bigger volume lists travel as events. */
export const MAX_REPLY_VOLUME_BYTES = 512 * 1024;

/** More volumes than this cannot fit MAX_REPLY_VOLUME_BYTES: not encoded only to be dropped. */
export const MAX_REPLY_VOLUMES = 2000;

/** `complete`: `volumes` is the pool's whole list, not only what changed. */
export function poolReply(pool: Pool, eventSequence: bigint, volumes?: Volume[], complete = true): AgentReply {
  const reply = AgentReply.create({ result: { $case: 'pool', value: pool }, eventSequence });
  if (volumes && volumes.length <= MAX_REPLY_VOLUMES) {
    let bytes = 0;
    for (const v of volumes) {
      bytes += Volume.encode(v).finish().length + 4;
      if (bytes > MAX_REPLY_VOLUME_BYTES) return reply;
    }
    reply.volumes = volumes;
    reply.volumesComplete = complete;
  }
  return reply;
}

/**
 * A volume operation's reply. With `pool` (the pool state its event carried) the reply holds
 * the whole change: the coordinator applies it and need not wait for the event. `complete`
 * false: the operation changed other volumes too (published as events up to
 * `eventSequence`), and the coordinator waits for those.
 */
export function volumeReply(volume: Volume, eventSequence: bigint, pool?: Pool, complete = true): AgentReply {
  const reply = AgentReply.create({ result: { $case: 'volume', value: volume }, eventSequence });
  if (pool) {
    reply.poolState = pool;
    reply.stateComplete = complete;
  }
  return reply;
}

/** DeleteVolume's reply: the removed volume's last state and the pool's new state. */
export function deletedReply(removed: Volume, pool: Pool, eventSequence: bigint, complete: boolean): AgentReply {
  return AgentReply.create({ result: { $case: 'done', value: {} }, removedVolume: removed, poolState: pool, eventSequence, stateComplete: complete });
}

export function doneReply(eventSequence = 0n): AgentReply {
  return AgentReply.create({ result: { $case: 'done', value: {} }, eventSequence });
}

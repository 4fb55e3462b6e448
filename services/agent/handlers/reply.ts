// Helpers for building AgentReply messages.
import { AgentReply } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { Volume, type Pool } from '../../../libs/proto/cistern/v1/storage.js';

/** Replies stay well under NATS's 1 MiB payload limit; bigger volume lists travel as events. */
export const MAX_REPLY_VOLUME_BYTES = 512 * 1024;

export function poolReply(pool: Pool, eventSequence: bigint, volumes?: Volume[]): AgentReply {
  const reply = AgentReply.create({ result: { $case: 'pool', value: pool }, eventSequence });
  if (volumes) {
    let bytes = 0;
    for (const v of volumes) {
      bytes += Volume.encode(v).finish().length + 4;
      if (bytes > MAX_REPLY_VOLUME_BYTES) return reply;
    }
    reply.volumes = volumes;
    reply.volumesComplete = true;
  }
  return reply;
}

export function volumeReply(volume: Volume, eventSequence: bigint): AgentReply {
  return AgentReply.create({ result: { $case: 'volume', value: volume }, eventSequence });
}

export function doneReply(eventSequence = 0n): AgentReply {
  return AgentReply.create({ result: { $case: 'done', value: {} }, eventSequence });
}

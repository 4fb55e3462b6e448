// Heartbeats (docs/bus.md, item 2): Heartbeat on cistern.heartbeat.<host> every interval,
// with a boot id that changes when the agent restarts.
import { randomBytes } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import { Heartbeat } from '../../libs/proto/cistern/agent/v1/agent.js';
import type { Host } from '../../libs/proto/cistern/v1/storage.js';
import { subjects } from '../../libs/bus/subjects.js';
import type { Logger } from '../../libs/log/logger.js';

/** A random non-zero 64-bit id for this process. */
export function newBootId(): bigint {
  const id = randomBytes(8).readBigUInt64BE();
  return id === 0n ? 1n : id;
}

export class HeartbeatSender {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly hostId: string,
    private readonly bootId: bigint,
    private readonly intervalMs: number,
    private readonly host: () => Host,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.beat();
    this.timer = setInterval(() => this.beat(), this.intervalMs);
  }

  beat(): void {
    try {
      const msg = Heartbeat.create({ host: this.host(), bootId: this.bootId, intervalMs: this.intervalMs });
      this.nc.publish(subjects.heartbeat(this.hostId), Heartbeat.encode(msg).finish());
    } catch (err) {
      // closed or draining: the next beat tries again
      this.log.debug('heartbeat not sent', { error: err });
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

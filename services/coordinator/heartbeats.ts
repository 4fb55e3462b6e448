// Agents' heartbeats into the host registry. An agent may publish only on its own heartbeat
// subject (docs/security.md), so the host a heartbeat names must be the one of its subject.
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { subjects } from '../../libs/bus/subjects.js';
import { Heartbeat } from '../../libs/proto/cistern/agent/v1/agent.js';
import type { Logger } from '../../libs/log/logger.js';
import type { HostRegistry } from './hosts.js';

export function followHeartbeats(nc: NatsConnection, hosts: HostRegistry, log: Logger): Subscription {
  const sub = nc.subscribe(subjects.heartbeatAll);
  void (async () => {
    for await (const msg of sub) {
      try {
        const hb = Heartbeat.decode(msg.data);
        if (msg.subject !== subjects.heartbeat(hb.host?.hostId ?? '')) {
          log.warn('ignored a heartbeat naming another host than its subject', { subject: msg.subject, host: hb.host?.hostId });
          continue;
        }
        hosts.onHeartbeat(hb);
      } catch (err) {
        log.warn('bad heartbeat', { subject: msg.subject, err });
      }
    }
  })();
  return sub;
}

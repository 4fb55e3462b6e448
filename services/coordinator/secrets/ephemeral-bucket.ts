// Where ephemeral secrets live: libvirt keeps a secret defined with ephemeral='yes', and its
// value, in memory only (secretDefineXML writes neither to disk), so it is gone when libvirtd
// restarts. Cistern's counterpart is a KV bucket in JetStream memory storage: nothing of it
// reaches a disk, and it is gone when the NATS servers restart. The coordinator may outlive
// that restart: a bucket found missing is made again (empty, as libvirt after a restart).
import type { NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';

export const EPHEMERAL_SECRET_BUCKET = 'cistern-secrets-ephemeral';

const MISSING = /stream not found|no stream/i;

export class EphemeralBucket {
  private constructor(
    private readonly open: () => Promise<KV>,
    private kv: KV,
  ) {}

  static async open(nc: NatsConnection, replicas: number): Promise<EphemeralBucket> {
    // history 1: a replaced value does not linger, in memory either
    const open = () => new Kvm(nc).create(EPHEMERAL_SECRET_BUCKET, { history: 1, replicas, storage: 'memory' });
    return new EphemeralBucket(open, await open());
  }

  /** Runs `op` on the bucket; once more on a bucket made again when the servers lost it. */
  async run<T>(op: (kv: KV) => Promise<T>): Promise<T> {
    try {
      return await op(this.kv);
    } catch (err) {
      if (!MISSING.test((err as Error)?.message ?? '')) throw err;
      this.kv = await this.open();
      return op(this.kv);
    }
  }
}

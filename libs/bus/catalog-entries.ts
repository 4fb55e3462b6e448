// What a catalog entry must be to count: what Cistern writes. The bucket is plain JetStream KV,
// so anything with NATS access (`nats kv put`, a restore of another version, a script) can put
// bytes there that are not: one such entry must not stop a coordinator or an agent from
// reading the others. Readers leave it out and report it (Catalog's onUnreadable).
import { FailedPreconditionError } from '../errors/errors.js';
import { CatalogPool, Heartbeat } from '../proto/cistern/agent/v1/agent.js';

/** An entry a read left out: its key, its revision, and what is wrong with it. */
export interface UnreadableEntry {
  key: string;
  revision: number;
  why: string;
}

/**
 * A pool entry that is not what Cistern writes, met where the pool itself is needed (a define,
 * an undefine, a start reading its definition): FAILED_PRECONDITION, naming the key.
 */
export class UnreadableCatalogEntryError extends FailedPreconditionError {
  constructor(
    readonly entry: UnreadableEntry,
    host: string,
    pool: string,
  ) {
    super(
      `the catalog entry of storage pool '${pool}' on host '${host}' (key ${entry.key}, revision ${entry.revision}) is not a pool definition Cistern wrote: ${entry.why}; DefinePool with that name replaces it, UndefinePool removes it`,
      { host, pool },
    );
  }
}

/** A pool entry's value: it decodes, has a definition, and the definition names the key's pool. */
export function readPoolEntry(pool: string, data: Uint8Array): { value: CatalogPool } | { why: string } {
  let value: CatalogPool;
  try {
    value = CatalogPool.decode(data);
  } catch (err) {
    return { why: `its ${data.length} bytes do not decode as a CatalogPool (${(err as Error).message})` };
  }
  if (!value.definition) return { why: 'it holds no pool definition' };
  if (value.definition.name !== pool) return { why: `its definition names pool '${value.definition.name}', not '${pool}'` };
  return { value };
}

/** A host record: it decodes and names the key's host. */
export function readHostRecord(host: string, data: Uint8Array): { record: Heartbeat } | { why: string } {
  let record: Heartbeat;
  try {
    record = Heartbeat.decode(data);
  } catch (err) {
    return { why: `its ${data.length} bytes do not decode as a host record (${(err as Error).message})` };
  }
  if (record.host?.hostId !== host) return { why: `it records host '${record.host?.hostId ?? ''}', not '${host}'` };
  return { record };
}

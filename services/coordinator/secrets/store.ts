// Secrets (libvirt's virSecret): definitions and values in their own JetStream KV bucket,
// `cistern-secrets`, which no agent may read (scripts/nats-config.mjs gives agents no
// JetStream access to it). Values are sealed with AES-256-GCM (crypto.ts) before they
// leave the coordinator; no call ever returns a value. The coordinator opens a value only
// to put it into the AgentRequest of the one operation that needs it.
import type { NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';
import { randomUUID } from 'node:crypto';
import {
  AbortedError,
  AlreadyExistsError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
} from '../../../libs/errors/errors.js';
import { checkAbsolutePath, checkNoInvisibleFormat, printable } from '../../../libs/api/names.js';
import { Secret, SecretUsageType, type SecretRef } from '../../../libs/proto/cistern/v1/storage.js';
import type { SecretValue } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { open, seal } from './crypto.js';
import { claimUsage, releaseUsage, usageOwner } from './usage-claims.js';
import { EphemeralBucket } from './ephemeral-bucket.js';

export const SECRET_BUCKET = 'cistern-secrets';
export const MAX_SECRET_VALUE = 64 * 1024;
const MAX_TEXT = 1024;
const CONTROL = /[\x00-\x1f\x7f]/;
// libvirt keeps a <description> as written: lines and their indentation are text, not control
const DESCRIPTION_CONTROL = /[\x00-\x08\x0b-\x1f\x7f]/;
const USAGE_ID_RULE = `up to ${MAX_TEXT} characters, no control characters, no invisible or direction-changing characters (Unicode format characters such as U+202E, U+2028/U+2029)`;

interface StoredRecord {
  meta: Secret;
  sealed?: Buffer;
  revision: number;
}

interface StoredSecret {
  /** Secret as JSON (hasValue false; derived from `value`). */
  meta: unknown;
  /** base64 of the sealed value */
  value?: string;
}

const keyOf = (uuid: string): string => `s.${uuid}`;

/** 32 hex digits, a dash allowed between two pairs: what libvirt's virUUIDParse takes (virsh names a secret so). */
const UUID_INPUT = /^[0-9a-f]{2}(?:-?[0-9a-f]{2}){15}$/;

/** `secrets/{uuid}` or the uuid alone -> the uuid (lower case, canonical 8-4-4-4-12). */
export function parseSecretName(value: string, field = 'name'): string {
  if (!value) throw new InvalidArgumentError(field, 'is required: secrets/{uuid} or the uuid');
  const text = (value.startsWith('secrets/') ? value.slice('secrets/'.length) : value).toLowerCase();
  if (!UUID_INPUT.test(text)) {
    throw new InvalidArgumentError(field, `'${printable(value)}' is not secrets/{uuid} or a uuid (32 hexadecimal digits, dashes optional, as 0a81f5b2-8403-7b23-c8d6-21ccc2f80d6f)`);
  }
  const hex = text.replace(/-/g, '');
  const uuid = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  return uuid;
}

const usageName = (t: SecretUsageType): string =>
  ({ [SecretUsageType.SECRET_USAGE_TYPE_ISCSI]: 'iscsi', [SecretUsageType.SECRET_USAGE_TYPE_VOLUME]: 'volume', [SecretUsageType.SECRET_USAGE_TYPE_CEPH]: 'ceph' })[
    t as 1 | 2 | 3
  ] ?? 'none';

function checkText(value: string, field: string, what: string, control = CONTROL, allowed = 'no control characters'): string {
  if (value.length > MAX_TEXT) throw new InvalidArgumentError(field, `${what} is ${value.length} characters long; at most ${MAX_TEXT} allowed`);
  if (control.test(value)) throw new InvalidArgumentError(field, `${what} '${printable(value)}' contains a control character; ${allowed}`);
  return value;
}

/** A definition from a request, checked; uuid generated when absent. */
export function checkSecretDefinition(input: Secret | undefined, field = 'secret'): Secret {
  if (!input) throw new InvalidArgumentError(field, 'is required (or xml)');
  // the uuid may come from either field (AIP-133 clients set name); generated when neither has it
  const named = input.name ? parseSecretName(input.name, `${field}.name`) : undefined;
  const uuid = input.uuid ? parseSecretName(input.uuid, `${field}.uuid`) : (named ?? randomUUID());
  if (named !== undefined && named !== uuid) {
    throw new InvalidArgumentError(`${field}.name`, `names secret '${printable(input.name)}' but uuid is '${uuid}'`);
  }
  const usageType = input.usageType;
  if (!(usageType in SecretUsageType) || usageType === SecretUsageType.UNRECOGNIZED || usageType < 0) {
    throw new InvalidArgumentError(`${field}.usage_type`, `usage type ${usageType} is not known; allowed: none, iscsi, volume, ceph`);
  }
  let usageId = checkText(input.usageId ?? '', `${field}.usage_id`, 'usage id');
  // 'virsh secret-list' shows it beside the uuid: it must not show as another secret's
  checkNoInvisibleFormat(usageId, `${field}.usage_id`, 'usage id', USAGE_ID_RULE);
  if (usageType === SecretUsageType.SECRET_USAGE_TYPE_UNSPECIFIED && usageId) {
    throw new InvalidArgumentError(`${field}.usage_id`, 'a usage id needs a usage type (iscsi, volume, ceph)');
  }
  if (usageType !== SecretUsageType.SECRET_USAGE_TYPE_UNSPECIFIED && !usageId) {
    throw new InvalidArgumentError(`${field}.usage_id`, `is required for usage type ${usageName(usageType)}`);
  }
  if (usageType === SecretUsageType.SECRET_USAGE_TYPE_VOLUME) usageId = checkAbsolutePath(usageId, `${field}.usage_id`);
  return Secret.create({
    name: `secrets/${uuid}`,
    uuid,
    usageType,
    usageId,
    description: checkText(input.description ?? '', `${field}.description`, 'description', DESCRIPTION_CONTROL, 'allowed: tab and line feed, no other control characters'),
    hasValue: false,
    ephemeral: !!input.ephemeral,
    private: !!input.private,
  });
}

export class SecretStore {
  private constructor(
    /** secrets kept on disk, and every usage claim (usage-claims.ts) */
    private readonly kv: KV,
    /** ephemeral secrets, in memory only (ephemeral-bucket.ts) */
    private readonly memory: EphemeralBucket,
    private readonly key: Buffer | undefined,
  ) {}

  static async open(nc: NatsConnection, key: Buffer | undefined, options: { replicas?: number } = {}): Promise<SecretStore> {
    // history 1: a replaced value does not linger in the bucket
    const kv = await new Kvm(nc).create(SECRET_BUCKET, { history: 1, replicas: options.replicas ?? 1 });
    return new SecretStore(kv, await EphemeralBucket.open(nc, options.replicas ?? 1), key);
  }

  /** `op` on the bucket a secret of that kind is kept in. */
  private on<T>(ephemeral: boolean, op: (kv: KV) => Promise<T>): Promise<T> {
    return ephemeral ? this.memory.run(op) : op(this.kv);
  }

  get hasKey(): boolean {
    return !!this.key;
  }

  private requireKey(): Buffer {
    if (!this.key) {
      throw new FailedPreconditionError('secret values need a key: start the coordinator with --secret-key-file (docs/security.md)');
    }
    return this.key;
  }

  private async read(uuid: string): Promise<StoredRecord | undefined> {
    return (await this.readIn(false, uuid)) ?? this.readIn(true, uuid);
  }

  private async readIn(ephemeral: boolean, uuid: string): Promise<StoredRecord | undefined> {
    const entry = await this.on(ephemeral, (kv) => kv.get(keyOf(uuid)));
    if (!entry || entry.operation !== 'PUT') return undefined;
    const stored = JSON.parse(new TextDecoder().decode(entry.value)) as StoredSecret;
    const meta = Secret.fromJSON(stored.meta);
    meta.hasValue = !!stored.value;
    // the bucket says where it is kept, whatever the record says
    meta.ephemeral = ephemeral;
    return { meta, sealed: stored.value ? Buffer.from(stored.value, 'base64') : undefined, revision: entry.revision };
  }

  private encode(meta: Secret, sealed: Buffer | undefined): Uint8Array {
    const stored: StoredSecret = { meta: Secret.toJSON({ ...meta, hasValue: false }) };
    if (sealed) stored.value = sealed.toString('base64');
    return new TextEncoder().encode(JSON.stringify(stored));
  }

  async list(): Promise<Secret[]> {
    const keysIn = async (ephemeral: boolean): Promise<string[]> =>
      this.on(ephemeral, async (kv) => {
        const keys: string[] = [];
        for await (const k of await kv.keys('s.*')) keys.push(k);
        return keys;
      });
    const [kept, ephemeral] = await Promise.all([keysIn(false), keysIn(true)]);
    const all = await Promise.all([...kept.map((k) => this.readIn(false, k.slice(2))), ...ephemeral.map((k) => this.readIn(true, k.slice(2)))]);
    return all.filter((s): s is NonNullable<typeof s> => !!s).map((s) => s.meta).sort((a, b) => a.uuid.localeCompare(b.uuid));
  }

  async get(name: string): Promise<Secret> {
    const uuid = parseSecretName(name);
    const found = await this.read(uuid);
    if (!found) throw new NotFoundError(`secret '${uuid}' is not defined`, { secret: uuid });
    return found.meta;
  }

  /** Defines a secret or redefines one (same uuid): the value is kept. */
  async define(input: Secret): Promise<Secret> {
    const def = checkSecretDefinition(input);
    if (def.usageType !== SecretUsageType.SECRET_USAGE_TYPE_UNSPECIFIED) {
      const clash = (await this.list()).find((s) => s.uuid !== def.uuid && s.usageType === def.usageType && s.usageId === def.usageId);
      if (clash) {
        throw new AlreadyExistsError(`secret '${clash.uuid}' is already defined for use with ${usageName(def.usageType)} '${printable(def.usageId)}'`);
      }
    }
    const current = await this.read(def.uuid);
    // as libvirt's virSecretObjListAdd: a secret keeps its usage (one of none included: libvirt
    // says 'already defined for use with (null)'), and a private one stays private
    if (current && (current.meta.usageType !== def.usageType || current.meta.usageId !== def.usageId)) {
      const was = current.meta.usageType === SecretUsageType.SECRET_USAGE_TYPE_UNSPECIFIED
        ? 'none'
        : `${usageName(current.meta.usageType)} '${printable(current.meta.usageId)}'`;
      throw new FailedPreconditionError(`secret '${def.uuid}' is defined for ${was}; undefine it to change its usage`);
    }
    if (current?.meta.private && !def.private) {
      throw new FailedPreconditionError(`secret '${def.uuid}' is private; a redefinition cannot make it not private (libvirt: cannot change private flag on existing secret)`);
    }
    const data = this.encode(def, current?.sealed);
    // a redefinition that changes `ephemeral` moves the secret, value included, as libvirt's
    // secretDefineXML saves it to disk or deletes it from there
    const moves = !!current && current.meta.ephemeral !== def.ephemeral;
    let revision: number;
    try {
      if (current && !moves) revision = await this.on(def.ephemeral, (kv) => kv.update(keyOf(def.uuid), data, current.revision));
      else revision = await this.on(def.ephemeral, (kv) => kv.create(keyOf(def.uuid), data));
      if (current && moves) {
        const created = revision;
        // changed meanwhile (a value set): the move is undone, and the caller retries
        await this.on(current.meta.ephemeral, (kv) => kv.purge(keyOf(def.uuid), { previousSeq: current.revision })).catch(async (err: unknown) => {
          await this.on(def.ephemeral, (kv) => kv.purge(keyOf(def.uuid), { previousSeq: created })).catch(() => undefined);
          throw err;
        });
      }
    } catch (err) {
      if (/wrong last sequence|key exists/i.test((err as Error)?.message ?? '')) {
        throw new AbortedError(`secret '${def.uuid}' was changed concurrently; retry`);
      }
      throw err;
    }
    // the listing above does not see a definition racing this one: the usage's claim decides
    // (usage-claims.ts). A redefinition keeps its usage, so only a new secret can lose it.
    if (def.usageType !== SecretUsageType.SECRET_USAGE_TYPE_UNSPECIFIED) {
      const owner = await claimUsage(this.kv, def.usageType, def.usageId, def.uuid, (other) => this.holdsUsage(other, def.usageType, def.usageId));
      if (owner !== undefined && !current) {
        await this.on(def.ephemeral, (kv) => kv.purge(keyOf(def.uuid), { previousSeq: revision })).catch(() => undefined);
        throw new AlreadyExistsError(`secret '${owner}' is already defined for use with ${usageName(def.usageType)} '${printable(def.usageId)}'`);
      }
    }
    return { ...def, hasValue: !!current?.sealed };
  }

  /**
   * The secret defined for a usage (libvirt's virSecretLookupByUsage): its definition only,
   * never its value. A volume's XML names it (withDefaultSecret).
   */
  async findByUsage(usageType: SecretUsageType, usageId: string): Promise<Secret | undefined> {
    return (await this.readByUsage(usageType, usageId))?.meta;
  }

  private async readByUsage(usageType: SecretUsageType, usageId: string): Promise<StoredRecord | undefined> {
    // the usage's owner (a definition that lost the race for it may still be in the listing
    // for a moment); a listing for secrets defined before claims existed
    const owner = usageType !== SecretUsageType.SECRET_USAGE_TYPE_UNSPECIFIED ? await usageOwner(this.kv, usageType, usageId) : undefined;
    const claimed = owner !== undefined && (await this.holdsUsage(owner, usageType, usageId)) ? await this.read(owner) : undefined;
    if (claimed) return claimed;
    const meta = (await this.list()).find((s) => s.usageId === usageId && (s.usageType === usageType || usageType === 0));
    return meta ? this.read(meta.uuid) : undefined;
  }

  private async holdsUsage(uuid: string, usageType: SecretUsageType, usageId: string): Promise<boolean> {
    const found = await this.read(uuid);
    return !!found && found.meta.usageType === usageType && found.meta.usageId === usageId;
  }

  async setValue(name: string, value: Uint8Array): Promise<Secret> {
    const uuid = parseSecretName(name);
    if (value.length === 0) throw new InvalidArgumentError('value', 'is empty; a secret value has 1 to 65536 bytes');
    if (value.length > MAX_SECRET_VALUE) throw new InvalidArgumentError('value', `is ${value.length} bytes; at most ${MAX_SECRET_VALUE} allowed`);
    const key = this.requireKey();
    for (let attempt = 0; ; attempt++) {
      const current = await this.read(uuid);
      if (!current) throw new NotFoundError(`secret '${uuid}' is not defined`, { secret: uuid });
      const sealed = seal(key, Buffer.from(value), uuid);
      try {
        await this.on(current.meta.ephemeral, (kv) => kv.update(keyOf(uuid), this.encode(current.meta, sealed), current.revision));
        return { ...current.meta, hasValue: true };
      } catch (err) {
        if (!/wrong last sequence/i.test((err as Error)?.message ?? '') || attempt >= 10) throw err;
      }
    }
  }

  async undefine(name: string): Promise<void> {
    const uuid = parseSecretName(name);
    const found = await this.read(uuid);
    if (!found) throw new NotFoundError(`secret '${uuid}' is not defined`, { secret: uuid });
    await this.on(found.meta.ephemeral, (kv) => kv.purge(keyOf(uuid))); // purge: no sealed value stays in the history
    // after the record: a claim left by a stop between the two is taken over (usage-claims.ts)
    if (found.meta.usageType !== SecretUsageType.SECRET_USAGE_TYPE_UNSPECIFIED) {
      await releaseUsage(this.kv, found.meta.usageType, found.meta.usageId, uuid);
    }
  }

  /**
   * The value a pool or volume reference names; FAILED_PRECONDITION when missing (never the
   * value in a message), with `notDefined` as the message when no such secret is defined.
   */
  async resolve(ref: SecretRef, usageType: SecretUsageType, what: string, notDefined?: string): Promise<SecretValue> {
    let found: { meta: Secret; sealed?: Buffer } | undefined;
    const label = ref.uuid ? `uuid '${printable(ref.uuid)}'` : `usage '${printable(ref.usage)}'`;
    if (ref.uuid) {
      let uuid: string;
      try {
        uuid = parseSecretName(ref.uuid, 'secret.uuid');
      } catch {
        throw new FailedPreconditionError(`${what} references secret ${label}, which is not a valid uuid`);
      }
      found = await this.read(uuid);
    } else if (ref.usage) {
      found = await this.readByUsage(usageType, ref.usage);
    }
    if (!found) throw new FailedPreconditionError(notDefined ?? `${what} references secret ${label}, which is not defined`);
    // by uuid as by usage: a secret is released only for what it is for (libvirt: "secret is of
    // type 'iscsi' not expected 'volume' type"): a volume's encryption cannot name a CHAP secret
    // to have its value sent to a host of the caller's choosing
    if (usageType !== SecretUsageType.SECRET_USAGE_TYPE_UNSPECIFIED && found.meta.usageType !== usageType) {
      throw new FailedPreconditionError(
        `${what} references secret ${label}, which is of type '${usageName(found.meta.usageType)}', not the expected '${usageName(usageType)}'`,
      );
    }
    if (!found.sealed) throw new FailedPreconditionError(`${what} references secret ${label}, which has no value yet (SetSecretValue)`);
    const key = this.requireKey();
    let value: Buffer;
    try {
      value = open(key, found.sealed, found.meta.uuid);
    } catch (err) {
      // a key changed (key rotation is not implemented): the value is lost, not the secret
      if (!(err instanceof FailedPreconditionError)) throw err;
      throw new FailedPreconditionError(
        `${what} references secret '${found.meta.uuid}', whose stored value cannot be opened: ${err.message}; set its value again (SetSecretValue)`,
      );
    }
    return { uuid: found.meta.uuid, usageId: found.meta.usageId, value };
  }
}

// The seam for authentication, authorization and audit (issue 7). Every handler runs
// through runCall(): it asks the guard who is calling and whether they may call this
// method, then reports the outcome for the audit log. Today's guard lets everyone in as
// 'anonymous' (or the principal named in metadata) and logs mutating calls.
import type { Metadata } from '@grpc/grpc-js';
import { asCisternError } from '../../libs/errors/errors.js';
import type { Logger } from './log.js';

/** viewer: reads and events; operator: volume work, refresh; admin: pool definitions and lifecycle, hosts. */
export type Role = 'viewer' | 'operator' | 'admin';

export interface MethodSpec {
  name: string;
  role: Role;
  mutating: boolean;
}

const spec = (name: string, role: Role, mutating: boolean): MethodSpec => ({ name, role, mutating });

export const METHODS: Record<string, MethodSpec> = Object.fromEntries(
  [
    spec('ListHosts', 'viewer', false),
    spec('GetHost', 'viewer', false),
    spec('DefinePool', 'admin', true),
    spec('CreatePool', 'admin', true),
    spec('UndefinePool', 'admin', true),
    spec('BuildPool', 'admin', true),
    spec('StartPool', 'admin', true),
    spec('StopPool', 'admin', true),
    spec('DeletePool', 'admin', true),
    spec('RefreshPool', 'operator', true),
    spec('GetPool', 'viewer', false),
    spec('ListPools', 'viewer', false),
    spec('GetPoolXML', 'viewer', false),
    spec('SetPoolAutostart', 'admin', true),
    spec('FindPoolSources', 'admin', false),
    spec('GetPoolCapabilities', 'viewer', false),
    spec('CreateVolume', 'operator', true),
    spec('CloneVolume', 'operator', true),
    spec('DeleteVolume', 'operator', true),
    spec('WipeVolume', 'operator', true),
    spec('ResizeVolume', 'operator', true),
    spec('GetVolume', 'viewer', false),
    spec('ListVolumes', 'viewer', false),
    spec('GetVolumeXML', 'viewer', false),
    spec('LookupVolume', 'viewer', false),
    spec('UploadVolume', 'operator', true),
    spec('DownloadVolume', 'operator', false),
    spec('WatchEvents', 'viewer', false),
    spec('DefineSecret', 'admin', true),
    spec('SetSecretValue', 'admin', true),
    spec('GetSecret', 'admin', false),
    spec('ListSecrets', 'admin', false),
    spec('UndefineSecret', 'admin', true),
  ].map((m) => [m.name, m]),
);

export interface AuditRecord {
  method: string;
  principal: string;
  resource: string;
  code: string;
  durationMs: number;
  requestId: string;
}

export interface CallGuard {
  /** Who is calling (throw UnauthenticatedError to refuse). */
  authenticate(metadata: Metadata, peer: string): Promise<string> | string;
  /** May `principal` call `method` (throw PermissionDeniedError naming the role needed). */
  authorize(principal: string, method: MethodSpec): Promise<void> | void;
  /** Called once per call when it ends. */
  audit(record: AuditRecord, method: MethodSpec): void;
}

const PRINCIPAL = /^[A-Za-z0-9@._:-]{1,128}$/;

/** No authentication yet: 'anonymous', or the x-cistern-principal metadata when well-formed. */
export function openGuard(log: Logger): CallGuard {
  return {
    authenticate(metadata) {
      const claimed = metadata.get('x-cistern-principal')[0];
      return typeof claimed === 'string' && PRINCIPAL.test(claimed) ? claimed : 'anonymous';
    },
    authorize() {},
    audit(record, method) {
      if (method.mutating) log.info('audit', { ...record });
      else log.debug('call', { ...record });
    },
  };
}

export function errorCodeOf(err: unknown): string {
  return err === undefined ? 'OK' : asCisternError(err).code;
}

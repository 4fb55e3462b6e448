// Turns the security flags into what the coordinator runs with: the call guard, the
// gRPC server credentials, the NATS credentials and the secret key, plus the warnings
// to log loudly (no tokens, plaintext off loopback).
import type { ServerCredentials } from '@grpc/grpc-js';
import { InvalidArgumentError } from '../../../libs/errors/errors.js';
import { readPasswordFile } from '../../../libs/bus/password-file.js';
import { openGuard, tokenGuard, type CallGuard } from '../call-guard.js';
import type { SecurityConfig } from '../config.js';
import type { Logger } from '../../../libs/log/logger.js';
import { loadSecretKey } from '../secrets/crypto.js';
import { checkListenSecurity, serverCredentials } from './tls.js';
import { TokenTable } from './tokens.js';

export interface SecuritySetup {
  guard: CallGuard;
  credentials: ServerCredentials;
  tls: boolean;
  mutualTls: boolean;
  natsUser?: string;
  natsPass?: string;
  secretKey?: Buffer;
  /** Lines to log at warn level at start. */
  warnings: string[];
}

export function setupSecurity(listen: string, sec: SecurityConfig, log: Logger): SecuritySetup {
  const warnings: string[] = [];
  const credentials = serverCredentials({ cert: sec.tlsCert, key: sec.tlsKey, clientCa: sec.tlsClientCa });
  const tls = !!sec.tlsCert;
  const plain = checkListenSecurity(listen, tls, sec.insecure);
  if (plain) warnings.push(plain);
  let guard: CallGuard;
  if (sec.tokensFile) {
    const tokens = TokenTable.load(sec.tokensFile);
    if (tokens.size === 0) throw new InvalidArgumentError('--tokens', `${sec.tokensFile} has no tokens: nobody could call`);
    guard = tokenGuard(tokens, log, { maxCallsPerClient: sec.maxCallsPerClient, maxSessionsPerClient: sec.maxSessionsPerClient });
  } else {
    guard = openGuard(log, { maxCallsPerClient: sec.maxCallsPerClient, maxSessionsPerClient: sec.maxSessionsPerClient });
    warnings.push(
      'AUTHENTICATION IS OFF: no --tokens file, so every caller of the gRPC API is admin. Fine for a loopback-only local stack; never for a shared network (docs/security.md)',
    );
  }
  let natsPass = sec.natsPass;
  if (sec.natsPassFile) natsPass = readPasswordFile(sec.natsPassFile, '--nats-pass-file');
  if (natsPass && !sec.natsUser) throw new InvalidArgumentError('--nats-user', 'a NATS password needs --nats-user');
  const secretKey = sec.secretKeyFile ? loadSecretKey(sec.secretKeyFile) : undefined;
  if (!secretKey) warnings.push('no --secret-key-file: the Secret API answers FAILED_PRECONDITION until a key is configured');
  return { guard, credentials, tls, mutualTls: tls && !!sec.tlsClientCa, natsUser: sec.natsUser, natsPass, secretKey, warnings };
}

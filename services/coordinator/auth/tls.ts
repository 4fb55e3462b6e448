// Transport security of the gRPC port: TLS from PEM files, mutual TLS when a client CA
// is given, and the rule that a plaintext port is only ever bound to loopback unless the
// operator says --insecure.
import { ServerCredentials } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { InvalidArgumentError } from '../../../libs/errors/errors.js';

export interface TlsFiles {
  cert?: string;
  key?: string;
  /** CA bundle clients must present a certificate from (mutual TLS). */
  clientCa?: string;
}

export function serverCredentials(tls: TlsFiles): ServerCredentials {
  if (!tls.cert && !tls.key && !tls.clientCa) return ServerCredentials.createInsecure();
  if (!tls.cert || !tls.key) throw new InvalidArgumentError('--tls-cert', 'TLS needs both --tls-cert and --tls-key');
  const read = (path: string, flag: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new InvalidArgumentError(flag, `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? err}`);
    }
  };
  const cert = read(tls.cert, '--tls-cert');
  const key = read(tls.key, '--tls-key');
  if (!/-----BEGIN [A-Z ]*CERTIFICATE-----/.test(cert.toString('latin1'))) throw new InvalidArgumentError('--tls-cert', `${tls.cert} holds no PEM certificate`);
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key.toString('latin1'))) throw new InvalidArgumentError('--tls-key', `${tls.key} holds no PEM private key`);
  const ca = tls.clientCa ? read(tls.clientCa, '--tls-client-ca') : null;
  return ServerCredentials.createSsl(ca, [{ cert_chain: cert, private_key: key }], !!ca);
}

/** The host part of HOST:PORT ([v6]:port too). */
export function listenHost(listen: string): string {
  const m = /^\[([^\]]+)\]:\d+$/.exec(listen) ?? /^([^:]+):\d+$/.exec(listen);
  return m ? m[1]! : listen;
}

/** 127.0.0.0/8, ::1 and 'localhost' are loopback; 0.0.0.0, :: and every other address are not. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || /^(0{0,4}:){7}0{0,3}1$/.test(host) || host === '::ffff:127.0.0.1';
  return false;
}

/**
 * Refuses a plaintext port on a non-loopback address unless `insecure`; returns a
 * warning to log when the operator chose it anyway.
 */
export function checkListenSecurity(listen: string, tlsOn: boolean, insecure: boolean): string | undefined {
  if (tlsOn) return undefined;
  const host = listenHost(listen);
  if (isLoopback(host)) return undefined;
  if (!insecure) {
    throw new InvalidArgumentError(
      '--listen',
      `${listen} is not a loopback address and TLS is not configured: give --tls-cert and --tls-key, listen on 127.0.0.1, or pass --insecure to accept plaintext on the network`,
    );
  }
  return `gRPC listens on ${listen} WITHOUT TLS (--insecure): tokens and data cross the network in clear text`;
}

import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectionOptions, targetHost } from '../../../cli/client.js';
import { UsageError } from '../../../cli/errors.js';
import { parseSize } from '../../../cli/size.js';
import { PoolCapabilities, PoolType } from '../../../libs/proto/cistern/v1/storage.js';
import { FakeApi, run } from './fake-api.js';

describe('cli connection settings', () => {
  it('defaults to 127.0.0.1:50051, takes CISTERN_* from the environment, flags win', () => {
    expect(connectionOptions(new Map(), {})).to.deep.equal({ server: '127.0.0.1:50051' });
    const env = { CISTERN_SERVER: '127.0.0.1:6000', CISTERN_TOKEN: 'envtok', CISTERN_CA: '/ca.pem' };
    expect(connectionOptions(new Map(), env)).to.deep.equal({ server: '127.0.0.1:6000', token: 'envtok', ca: '/ca.pem' });
    expect(connectionOptions(new Map([['server', '[::1]:7000'], ['token', 'flagtok']]), env))
      .to.include({ server: '[::1]:7000', token: 'flagtok' });
  });

  // virsh -c '' opens the default URI, which LIBVIRT_DEFAULT_URI still names. An empty flag
  // (`--ca "$UNSET"`) that silently dropped CISTERN_CA would connect in plain text and send the
  // token there; one that dropped CISTERN_SERVER would reach 127.0.0.1:50051 instead.
  it('an empty flag is as if not given: the environment still applies (virsh -c \'\' keeps LIBVIRT_DEFAULT_URI)', () => {
    const env = { CISTERN_SERVER: '127.0.0.1:6000', CISTERN_TOKEN: 'envtok', CISTERN_CA: '/ca.pem', CISTERN_CERT: '/c.pem', CISTERN_KEY: '/k.pem' };
    const empty = new Map([['server', ''], ['ca', ''], ['token', ''], ['cert', ''], ['key', '']]);
    expect(connectionOptions(empty, env)).to.deep.equal({ server: '127.0.0.1:6000', token: 'envtok', ca: '/ca.pem', cert: '/c.pem', key: '/k.pem' });
    expect(connectionOptions(empty, {})).to.deep.equal({ server: '127.0.0.1:50051' });
  });

  it('takes the host out of --server (IP literals get TLS without SNI)', () => {
    expect(targetHost('127.0.0.1:50051')).to.equal('127.0.0.1');
    expect(targetHost('[::1]:50051')).to.equal('::1');
    expect(targetHost('::1')).to.equal('::1');
    expect(targetHost('coord.example.net:50051')).to.equal('coord.example.net');
    expect(targetHost('localhost')).to.equal('localhost');
  });

  it('a malformed --server is refused naming the setting and the form it takes; what grpc-js takes passes', () => {
    const server = (v: string) => connectionOptions(new Map([['server', v]]), {}).server;
    for (const ok of ['127.0.0.1:50051', '[::1]:50051', '::1', 'coord.example.net', 'coord:443', 'grpc://coord:50051', 'dns:///coord:50051', 'unix:/run/cistern.sock']) {
      expect(server(ok), ok).to.equal(ok);
    }
    expect(() => server('foo:bar')).to.throw(UsageError, "--server 'foo:bar' (or CISTERN_SERVER): the port 'bar' is not a number from 1 to 65535; give HOST:PORT");
    expect(() => connectionOptions(new Map(), { CISTERN_SERVER: 'coord:70000' })).to.throw(UsageError, "the port '70000' is not a number");
    expect(() => server(':50051')).to.throw(UsageError, 'the host is missing');
    expect(() => server('[coord]:50051')).to.throw(UsageError, "'coord' in brackets is not an IPv6 address");
    expect(() => server('user@coord:50051')).to.throw(UsageError, "the host 'user@coord' is not a host name or address");
  });

  it('mutual TLS needs both --cert and --key, and --ca', () => {
    expect(() => connectionOptions(new Map([['cert', '/c.pem']]), {})).to.throw(UsageError, '--cert and --key must be given together');
    expect(() => connectionOptions(new Map([['cert', '/c.pem'], ['key', '/k.pem']]), {})).to.throw(UsageError, 'need --ca');
  });

  it('an unreadable CA file is reported before anything is sent', async () => {
    const { runCli } = await import('../../../cli/run.js');
    let stderr = '';
    const code = await runCli(['--ca', '/nonexistent/ca.pem', 'pool-list'], {
      stdout: { write: () => true },
      stderr: { write: (t: string) => { stderr += t; } },
      env: {},
    });
    expect(code).to.equal(1);
    expect(stderr).to.match(/^error: cannot read CA certificate '\/nonexistent\/ca.pem'/);
  });

  it('a coordinator that cannot be reached: the two error lines, nothing on stdout (virsh when it cannot connect)', async () => {
    const { runCli } = await import('../../../cli/run.js');
    for (const argv of [['pool-list'], ['pool-info', 'p'], ['vol-delete', 'v', 'p']]) {
      let stdout = '';
      let stderr = '';
      const code = await runCli(['--server', '127.0.0.1:1', ...argv], {
        stdout: { write: (t: string) => { stdout += t; } },
        stderr: { write: (t: string) => { stderr += t; } },
        env: {},
      });
      expect(code).to.equal(1);
      expect(stderr, argv.join(' ')).to.equal('error: failed to connect to the coordinator at 127.0.0.1:1\nerror: connect ECONNREFUSED 127.0.0.1:1\n');
      expect(stdout, argv.join(' ')).to.equal('');
    }
  });

  it('--ca against a server that answers in plain text: says TLS was not answered, not OpenSSL\'s "wrong version number"', async function () {
    this.timeout(20_000);
    const { runCli } = await import('../../../cli/run.js');
    const dir = mkdtempSync(join(tmpdir(), 'cistern-cli-tls-'));
    // a plaintext server: whatever comes, an HTTP/1.1 answer
    const server = createServer((sock) => sock.once('data', () => sock.end('HTTP/1.1 400 Bad Request\r\n\r\n')).on('error', () => undefined));
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'ca.pem'), '-subj', '/CN=t', '-days', '1'], { stdio: 'ignore' });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
      let stderr = '';
      const code = await runCli(['--server', address, '--ca', join(dir, 'ca.pem'), 'pool-list'], {
        stdout: { write: () => true },
        stderr: { write: (t: string) => { stderr += t; } },
        env: {},
      });
      expect(code).to.equal(1);
      expect(stderr).to.equal(`error: failed to connect to the coordinator at ${address}\nerror: the server does not answer TLS (a coordinator without --tls-cert?): without --ca and CISTERN_CA, cisternctl connects in plain text\n`);
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads "+1M" as 1M, as virsh 9.0 does', () => {
    expect(parseSize('+1M')).to.equal(1048576n);
  });

  it('pool-capabilities prints libvirt\'s document, built from the type list when the server sends no XML', async () => {
    const api = new FakeApi(['a']);
    api.getPoolCapabilities = async () =>
      PoolCapabilities.create({ types: [{ type: PoolType.POOL_TYPE_DIR, supported: true, defaultVolumeFormat: 'raw', volumeFormats: ['raw', 'qcow2'] }] });
    const r = await run(api, ['pool-capabilities']);
    expect(r.code).to.equal(0);
    expect(r.stdout).to.match(/^<storagepoolCapabilities>\n  <pool type='dir' supported='yes'>/);
    // virsh 9.0 prints the document with "%s\n", then its blank line after the command
    expect(r.stdout.endsWith('</storagepoolCapabilities>\n\n\n'), JSON.stringify(r.stdout.slice(-40))).to.equal(true);
    const quiet = await run(api, ['-q', 'pool-capabilities']);
    expect(quiet.stdout.endsWith('</storagepoolCapabilities>\n\n'), JSON.stringify(quiet.stdout.slice(-40))).to.equal(true);
  });
});

describe('cli connection errors', () => {
  it('a connection reset while reconnecting is the cause alone, without grpc-js\'s preamble and timestamp', async () => {
    const { errorText } = await import('../../../cli/run.js');
    const { UnavailableError } = await import('../../../libs/errors/errors.js');
    // what grpc-js fails a call with while its reconnect after a killed coordinator backs off
    const err = new UnavailableError('No connection established. Last error: read ECONNRESET (2026-11-28T12:22:35.772Z).');
    expect(errorText(err, '127.0.0.1:5')).to.equal('error: failed to connect to the coordinator at 127.0.0.1:5\nerror: read ECONNRESET\n');
  });
});

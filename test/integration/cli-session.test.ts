// cisternctl's interactive session (virsh's shell) against a real stack: commands read from
// stdin one line at a time as they arrive, all on one connection to the coordinator; on a
// terminal a greeting and prompts, Ctrl-C interrupting the running command, not the session.
import { expect } from 'chai';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { entryPoints, startCoordinator, useStack, useTempDir } from '../support/index.js';
import { trackPid, untrackPid } from '../support/cleanup.js';
import { createVolume, startDirPool } from './reliability-helpers.js';

/** Local ports of this process's established TCP connections to 127.0.0.1:`port` (from /proc). */
function connectionsTo(pid: number, port: number): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // closed while we looked
    }
  }
  const ports: number[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '01' || !inodes.has(f[9]!)) continue;
      if (parseInt(f[2]!.split(':')[1]!, 16) === port) ports.push(parseInt(f[1]!.split(':')[1]!, 16));
    }
  }
  return ports;
}

/** A cisternctl session on pipes: send a line, wait for what it prints. */
class PipedSession {
  readonly child: ChildProcessWithoutNullStreams;
  out = '';
  err = '';
  readonly exited: Promise<number | null>;

  constructor(server: string, args: string[] = []) {
    this.child = spawn(process.execPath, [entryPoints.cli, ...args], { env: { ...process.env, CISTERN_SERVER: server }, stdio: ['pipe', 'pipe', 'pipe'] });
    trackPid(this.child.pid!);
    this.child.stdout.setEncoding('utf8').on('data', (s: string) => (this.out += s));
    this.child.stderr.setEncoding('utf8').on('data', (s: string) => (this.err += s));
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => {
      untrackPid(this.child.pid!);
      resolve(code);
    }));
  }

  /** Writes `line` and resolves with stdout up to the marker echoed after it. */
  async run(line: string, marker = `__M${Math.random().toString(36).slice(2)}__`): Promise<string> {
    const start = this.out.length;
    this.child.stdin.write(`${line}\necho ${marker}\n`);
    const deadline = Date.now() + 30_000;
    while (!this.out.slice(start).includes(marker)) {
      if (Date.now() > deadline) throw new Error(`no ${marker} after 30 s; stdout: ${this.out.slice(start)}; stderr: ${this.err}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.out.slice(start, this.out.indexOf(marker, start));
  }
}

/** Single-quoted for the shell `script -c` runs the command with. */
const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

describe('cisternctl session (real processes)', function () {
  this.timeout(120_000);
  const ctx = useStack({ hosts: ['a'] });
  const scratch = useTempDir('cistern-cli-session-');

  before(async function () {
    this.timeout(60_000);
    await startDirPool(ctx.stack, 'a', 'sess', join(scratch.path, 'sess'));
    await createVolume(ctx.stack, 'hosts/a/pools/sess', 'v1.img', String(1024 * 1024));
  });

  it('runs each stdin line as it arrives, every command on one connection, until quit', async () => {
    const port = Number(ctx.stack.address.split(':').pop());
    const s = new PipedSession(ctx.stack.address, ['-q']);
    try {
      // nothing is printed before a command: no greeting, no prompt on a pipe
      expect(await s.run('vol-list sess')).to.equal(' v1.img   ' + join(scratch.path, 'sess', 'v1.img') + '\n');
      const first = connectionsTo(s.child.pid!, port);
      expect(first, 'one connection after the first command').to.have.length(1);
      expect(await s.run('vol-key v1.img --pool sess')).to.equal(`${join(scratch.path, 'sess', 'v1.img')}\n`);
      expect(await s.run('pool-info sess; vol-path v1.img --pool sess')).to.include('Name:           sess');
      expect(connectionsTo(s.child.pid!, port), 'the same connection three commands later').to.deep.equal(first);
      // a failing command is reported and the session goes on
      expect(await s.run('vol-key nope --pool sess')).to.equal('');
      expect(s.err).to.match(/^error: /m);
      // quit ends it while stdin is still open; the exit status is 0 after quit
      s.child.stdin.write('quit\n');
      expect(await s.exited).to.equal(0);
    } finally {
      s.child.kill('SIGKILL');
    }
  });

  it('the status at end of input is the last command\'s', async () => {
    const failed = await ctx.stack.cli([], { input: 'pool-list\nvol-key nope --pool sess\n' });
    expect(failed.code, failed.stderr).to.equal(1);
    const ok = await ctx.stack.cli([], { input: 'vol-key nope --pool sess\npool-list\n' });
    expect(ok.code, ok.stderr).to.equal(0);
  });

  it('on a terminal: greets, prompts, Ctrl-C interrupts pool-event but not the session, and at the prompt ends it', async () => {
    const command = [process.execPath, entryPoints.cli].map(q).join(' ');
    const child = spawn('script', ['-qfec', command, '/dev/null'], { env: { ...process.env, CISTERN_SERVER: ctx.stack.address }, stdio: ['pipe', 'pipe', 'pipe'] });
    trackPid(child.pid!);
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => {
      untrackPid(child.pid!);
      resolve(code);
    }));
    /** Waits until `text` shows at or after `from`; resolves with where it ends. */
    const waitFor = async (text: string, from: number): Promise<number> => {
      const deadline = Date.now() + 30_000;
      while (out.indexOf(text, from) < 0) {
        if (Date.now() > deadline) throw new Error(`no '${text}' after 30 s; terminal: ${JSON.stringify(out)}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      return out.indexOf(text, from) + text.length;
    };
    try {
      await waitFor('cisternctl # ', 0);
      expect(out).to.include("Welcome to cisternctl, the Cistern storage interactive terminal.\r\n\r\nType:  'help' for help with commands\r\n       'quit' to quit\r\n");
      child.stdin.write('pool-event --loop\r');
      // the event stream is open once the server has the call; give it a moment, then Ctrl-C
      await new Promise((r) => setTimeout(r, 1000));
      child.stdin.write('\x03');
      // readline redraws the prompt with the typed line: wait for the prompt after the output
      let at = await waitFor('events received: 0', 0);
      at = await waitFor('cisternctl # ', at);
      child.stdin.write('vol-key v1.img --pool sess\r');
      at = await waitFor(`\r\n${join(scratch.path, 'sess', 'v1.img')}\r\n`, at);
      await waitFor('cisternctl # ', at);
      child.stdin.write('\x03');
      // Ctrl-C at the prompt exits with 130, as the signal would; script(1) -e passes it on
      expect(await exited).to.equal(130);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('cisternctl session across a coordinator that dies and comes back (real processes)', function () {
  this.timeout(180_000);
  const ctx = useStack({ hosts: ['a'] });

  it('the first command after the coordinator answers again reaches it, not the old connection error', async () => {
    const { address, natsUrl } = ctx.stack;
    const s = new PipedSession(address, ['-q']);
    let restarted: Awaited<ReturnType<typeof startCoordinator>> | undefined;
    try {
      expect(await s.run('host-list')).to.match(/ a +\S+ +online /);
      await ctx.stack.coordinator.kill();
      // a while down, a command every second, as a user retrying: grpc-js backs its reconnects
      // off (1 s, x1.6 each, up to 120 s) and fails calls at once with the last error meanwhile
      for (let i = 0; i < 8; i++) {
        const errBefore = s.err.length;
        expect(await s.run('host-list')).to.equal('');
        expect(s.err.slice(errBefore)).to.equal(`error: failed to connect to the coordinator at ${address}\nerror: connect ECONNREFUSED ${address}\n`);
        await new Promise((r) => setTimeout(r, 1000));
      }
      // answering ListHosts on the same address before this resolves
      restarted = await startCoordinator({ natsUrl, listen: address, dataDir: ctx.stack.coordinator.dataDir });
      const errBefore = s.err.length;
      // as virsh reconnects before the next command: this one reaches the coordinator
      expect(await s.run('host-list'), s.err.slice(errBefore)).to.match(/ a +\S+ +online /);
      expect(s.err.slice(errBefore)).to.equal('');
      s.child.stdin.end();
      expect(await s.exited).to.equal(0);
    } finally {
      s.child.kill('SIGKILL');
      await restarted?.stop();
    }
  });
});

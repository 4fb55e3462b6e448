// The shared harness itself: a real nats-server with JetStream, process lifecycle, cleanup.
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { freePort, makeTempDir, ServiceProcess, startNats, useStack, type NatsServer } from './index.js';

describe('test harness', function () {
  describe('freePort', function () {
    it('returns a loopback port that can be bound', async function () {
      const port = await freePort();
      expect(port).to.be.within(1, 65535);
      const server = createServer();
      await new Promise<void>((resolveListen, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => resolveListen());
      });
      await new Promise<void>((r) => server.close(() => r()));
    });
  });

  describe('startNats', function () {
    let nats: NatsServer | undefined;
    after(async function () {
      await nats?.stop();
    });

    it('starts a nats-server with JetStream on loopback and its store in a temp dir', async function () {
      nats = await startNats();
      expect(nats.url).to.match(/^nats:\/\/127\.0\.0\.1:\d+$/);
      expect(existsSync(nats.storeDir)).to.equal(true);
      const nc = await connect({ servers: nats.url });
      try {
        const jsm = await jetstreamManager(nc);
        await jsm.streams.add({ name: 'HARNESS', subjects: ['harness.>'] });
        const js = jsm.jetstream();
        const ack = await js.publish('harness.one', 'hello');
        expect(ack.seq).to.equal(1);
        const info = await jsm.streams.info('HARNESS');
        expect(info.state.messages).to.equal(1);
      } finally {
        await nc.close();
      }
    });

    it('keeps JetStream data across restart() on the same port', async function () {
      nats ??= await startNats();
      const oldPid = nats.process.pid;
      await nats.restart();
      expect(nats.process.pid).to.not.equal(oldPid);
      const nc = await connect({ servers: nats.url });
      try {
        const jsm = await jetstreamManager(nc);
        const info = await jsm.streams.info('HARNESS');
        expect(info.state.messages).to.equal(1);
      } finally {
        await nc.close();
      }
    });

    it('stop() ends the server process and removes its store', async function () {
      nats ??= await startNats();
      const { process: proc, storeDir } = nats;
      await nats.stop();
      expect(proc.alive).to.equal(false);
      expect(() => process.kill(proc.pid, 0)).to.throw();
      expect(existsSync(storeDir)).to.equal(false);
      nats = undefined;
    });
  });

  describe('ServiceProcess', function () {
    it('collects output in a log file and stops by SIGTERM', async function () {
      const proc = ServiceProcess.spawn({
        name: 'echo-loop',
        command: process.execPath,
        // the handler first: 'started' in the log must mean a SIGTERM now finds it (a loaded
        // machine can pause the child between the two statements)
        args: ['-e', 'process.on("SIGTERM", () => { console.log("terminated"); process.exit(0); }); console.log("started"); setInterval(() => {}, 1000);'],
      });
      try {
        for (let i = 0; i < 200 && !proc.logs().includes('started'); i++) await new Promise((r) => setTimeout(r, 25));
        expect(proc.logs()).to.include('started');
        const status = await proc.stop();
        expect(status.code).to.equal(0);
        expect(proc.logs()).to.include('terminated');
      } finally {
        await proc.dispose();
      }
      expect(existsSync(proc.logFile)).to.equal(false);
    });

    it('kill() ends a process that ignores SIGTERM', async function () {
      const proc = ServiceProcess.spawn({
        name: 'stubborn',
        command: process.execPath,
        args: ['-e', 'process.on("SIGTERM", () => {}); setInterval(() => {}, 1000);'],
      });
      try {
        const status = await proc.kill();
        expect(status.signal).to.equal('SIGKILL');
        expect(proc.alive).to.equal(false);
      } finally {
        await proc.dispose();
      }
    });
  });

  describe('makeTempDir', function () {
    it('creates a directory that remove() deletes', async function () {
      const dir = makeTempDir();
      expect(existsSync(dir.path)).to.equal(true);
      await dir.remove();
      expect(existsSync(dir.path)).to.equal(false);
    });
  });

  describe('startStack', function () {
    this.timeout(120_000);
    const ctx = useStack({ hosts: ['a', 'b'] });

    it('runs a coordinator and agents a and b, each with its own root', async function () {
      const { stack } = ctx;
      const { hosts } = await stack.api.listHosts({ pageSize: 0, pageToken: '' });
      expect(hosts.filter((h) => h.online).map((h) => h.hostId).sort()).to.deep.equal(['a', 'b']);
      expect(stack.roots['a']).to.not.equal(stack.roots['b']);
      expect(existsSync(stack.roots['a']!)).to.equal(true);
    });

    it('runs cisternctl against the stack', async function () {
      const res = await ctx.stack.cli(['host-list']);
      expect(res.code, res.stderr).to.equal(0);
      expect(res.stdout).to.match(/^\s*a\s/m);
      expect(res.stdout).to.match(/^\s*b\s/m);
    });

    it('restarts an agent after SIGKILL and sees it online again', async function () {
      const { stack } = ctx;
      const before = stack.agents.get('b')!.process.pid;
      const agent = await stack.restartAgent('b', { kill: true });
      expect(agent.process.pid).to.not.equal(before);
      expect(agent.root).to.equal(stack.roots['b']);
      await stack.waitForHosts(['a', 'b']);
    });

    it('restarts the coordinator on the same address; the client reconnects', async function () {
      const { stack } = ctx;
      const address = stack.address;
      await stack.restartCoordinator({ kill: true });
      expect(stack.coordinator.address).to.equal(address);
      await stack.waitForHosts(['a', 'b']);
      const { hosts } = await stack.api.listHosts({ pageSize: 0, pageToken: '' });
      expect(hosts.map((h) => h.hostId)).to.include.members(['a', 'b']);
    });
  });
});

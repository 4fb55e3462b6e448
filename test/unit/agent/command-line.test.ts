// The agent's and the coordinator's command lines, as an operator meets them: a password given
// on the command line is refused with the reason and what to give instead (both services, the
// same words), and --help describes every option each takes and takes every option it describes.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { entryPoints } from '../../support/paths.js';
import { parseArgs as coordinatorArgs } from '../../../services/coordinator/config.js';

const run = (service: 'agent' | 'coordinator', args: string[]) => {
  const r = spawnSync(process.execPath, [entryPoints[service], ...args], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, NATS_PASSWORD: '', NATS_PASSWORD_FILE: '' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
};

function whyRefused(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as Error).message.split('\n')[0]!;
  }
  return 'taken without a value';
}

const WHY =
  '--nats-pass: a password on the command line is readable by every local user (ps, /proc/PID/cmdline); give --nats-pass-file FILE (mode 600), or NATS_PASSWORD_FILE or NATS_PASSWORD in the environment';

/** The options a usage text describes: the first word of each line that starts with '-' (after its indent). */
function described(usage: string): string[] {
  return usage
    .split('\n')
    .map((l) => /^\s+(-[^\s,]+)(?:, (--[^\s]+))?/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .flatMap((m) => [m[1]!, ...(m[2] ? [m[2]] : [])]);
}

describe('cistern-agent and cistern-coordinator command lines', function () {
  this.timeout(60_000);

  for (const service of ['agent', 'coordinator'] as const) {
    it(`cistern-${service} refuses --nats-pass saying why and what to give instead, without echoing the password`, () => {
      for (const args of [['--host-id', 'a', '--nats-pass', 'hunter2-pw'], ['--nats-pass=hunter2-pw', '--host-id', 'a']]) {
        const r = run(service, service === 'agent' ? args : args.filter((a) => a !== '--host-id' && a !== 'a'));
        expect(r.status, r.stderr).to.equal(2);
        expect(r.stderr.split('\n')[0]).to.equal(`cistern-${service}: ${WHY}`);
        expect(r.stderr).to.not.include('hunter2-pw');
      }
    });

    it(`cistern-${service} --help describes -h/--help and every option it takes, and takes every option it describes`, () => {
      const help = run(service, ['--help']);
      expect(help.status, help.stderr).to.equal(0);
      const options = described(help.stdout);
      expect(options).to.include.members(['-h', '--help', '--nats', '--nats-user', '--nats-pass-file', '--log-level']);
      for (const option of options.filter((o) => o.startsWith('--') && o !== '--help' && o !== '--insecure')) {
        // taken: it asks for its value; not taken: "unknown option" (the coordinator's parser is
        // called in process: a spawn per option takes half a second)
        const said = service === 'agent' ? run(service, [option]).stderr.split('\n')[0]! : whyRefused(() => coordinatorArgs([option], {}));
        expect(said, option).to.not.match(/unknown option/i);
        expect(said, option).to.match(/needs a value|argument missing/);
      }
      if (service === 'coordinator') expect(coordinatorArgs(['--insecure'], {})).to.have.nested.property('security.insecure', true);
    });
  }

  it('cistern-agent takes an empty CISTERN_LOG_LEVEL as unset, as the coordinator does, not as a bad --log-level nobody gave', () => {
    const r = spawnSync(process.execPath, [entryPoints.agent, '--host-id', 'a', '--heartbeat-ms', '1'], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, CISTERN_LOG_LEVEL: '', NATS_URL: '' },
    });
    expect(r.status, r.stderr).to.equal(2);
    // the first refusal is of what was really given
    expect(r.stderr.split('\n')[0]).to.match(/^cistern-agent: --heartbeat-ms '1' must be an integer from 50 to 600000/);
  });

  it('cistern-agent names the environment variable a bad value came from, as the coordinator does, not a flag nobody gave', () => {
    const refusal = (env: Record<string, string>): string => {
      const r = spawnSync(process.execPath, [entryPoints.agent, '--host-id', 'a'], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, ...env } });
      expect(r.status, r.stderr).to.equal(2);
      return r.stderr.split('\n')[0]!;
    };
    expect(refusal({ CISTERN_LOG_LEVEL: 'loud' })).to.equal("cistern-agent: CISTERN_LOG_LEVEL: 'loud' is not one of debug, info, warn, error");
    expect(refusal({ CISTERN_RESYNC_SPREAD_MS: 'soon' })).to.equal("cistern-agent: CISTERN_RESYNC_SPREAD_MS: 'soon' must be an integer from 0 to 60000");
    expect(refusal({ CISTERN_POOL_ROOTS: 'srv/pools' })).to.equal("cistern-agent: CISTERN_POOL_ROOTS: 'srv/pools' is not an absolute path");
  });
});

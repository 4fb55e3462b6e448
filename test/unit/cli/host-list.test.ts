// host-list while the coordinator is cut off from the bus: State `unknown`, and --json keeps
// the last known `online` beside `stale` and `staleSince`.
import { expect } from 'chai';
import { Host } from '../../../libs/proto/cistern/v1/storage.js';
import { hostJson, renderHostList } from '../../../cli/commands/host-list.js';

const host = (id: string, online: boolean, staleSince?: Date): Host =>
  Host.fromPartial({ name: `hosts/${id}`, hostId: id, hostname: `${id}.example`, online, poolCount: 1, agentVersion: '0.1.0', stale: staleSince !== undefined, staleSince });

describe('cisternctl host-list', () => {
  it('shows online or offline, and unknown for what a coordinator cut off from the bus cannot tell', () => {
    const since = new Date('2026-11-27T05:00:00.000Z');
    const out = renderHostList([host('a', true), host('b', false), host('c', true, since)], false, false);
    expect(out).to.match(/^ a\s+a\.example\s+online\s+1\s+0\.1\.0$/m);
    expect(out).to.match(/^ b\s+b\.example\s+offline\s+1\s+0\.1\.0$/m);
    expect(out).to.match(/^ c\s+c\.example\s+unknown\s+1\s+0\.1\.0$/m);
    expect(hostJson(host('c', true, since))).to.deep.include({ online: true, stale: true, staleSince: '2026-11-27T05:00:00.000Z' });
    expect(hostJson(host('a', true))).to.deep.include({ online: true, stale: false, staleSince: null });
  });

  it('--details and --json say why a host is offline; an online host shows -', () => {
    const down = Host.fromPartial({ ...host('b', false), offlineReason: 'two agents heartbeat with its host id (boot ids 2 and 1); stop one of them' });
    const out = renderHostList([host('a', true), down], true, false);
    expect(out).to.match(/^ a\s+a\.example\s+online\s+1\s+0\.1\.0\s+-\s+\S*\s+-$/m);
    expect(out).to.match(/^ b\s+b\.example\s+offline\s+1\s+0\.1\.0\s+-\s+\S*\s+two agents heartbeat with its host id \(boot ids 2 and 1\); stop one of them$/m);
    expect(out.split('\n')[0]).to.match(/Pool types\s+Offline reason$/);
    expect(hostJson(down)).to.deep.include({ offlineReason: 'two agents heartbeat with its host id (boot ids 2 and 1); stop one of them' });
    expect(hostJson(host('a', true))).to.deep.include({ offlineReason: null });
  });
});

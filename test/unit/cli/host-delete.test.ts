// cisternctl host-delete against a fake server: the request it sends, what it prints, and
// how a refusal is reported (virsh's two error lines).
import { expect } from 'chai';
import { DeleteHostResponse, type DeleteHostRequest } from '../../../libs/proto/cistern/v1/storage.js';
import { FailedPreconditionError, NotFoundError } from '../../../libs/errors/errors.js';
import { UNARY_METHODS } from '../../../cli/api.js';
import { FakeApi, run } from './fake-api.js';

class HostApi extends FakeApi {
  requests: DeleteHostRequest[] = [];
  answer = DeleteHostResponse.create();
  failure: Error | undefined;
  override async deleteHost(req: DeleteHostRequest): Promise<DeleteHostResponse> {
    this.requests.push(req);
    if (this.failure) throw this.failure;
    return this.answer;
  }
}

describe('cisternctl host-delete', () => {
  it('sends DeleteHost for hosts/HOST and says so', async () => {
    const api = new HostApi(['a', 'b']);
    const r = await run(api, ['host-delete', 'b']);
    expect(r).to.deep.equal({ code: 0, stdout: 'Host b deleted\n\n', stderr: '' });
    expect(api.requests).to.deep.equal([{ name: 'hosts/b', force: false, requestId: '' }]);
    // the real client wires the method (cli/client.ts connects every name in UNARY_METHODS)
    expect(UNARY_METHODS).to.include('deleteHost');
  });

  it('--force removes the pools defined on it, one line per pool as pool-undefine prints it; -q prints nothing', async () => {
    const api = new HostApi(['a', 'b']);
    api.answer = DeleteHostResponse.create({ removedPools: ['hosts/b/pools/images', 'hosts/b/pools/scratch'] });
    const r = await run(api, ['host-delete', '--host', 'hosts/b', '--force']);
    expect(r.stdout).to.equal('Pool b/images has been undefined\nPool b/scratch has been undefined\nHost b deleted\n\n');
    expect(api.requests[0]).to.deep.include({ name: 'hosts/b', force: true });
    expect((await run(api, ['-q', 'host-delete', 'b', '--force'])).stdout).to.equal('');
  });

  it("reports the server's refusal under virsh's context line", async () => {
    const api = new HostApi(['a', 'b']);
    api.failure = new FailedPreconditionError("host 'b' is online (last seen 2026-01-02T03:04:05.000Z); stop its agent first: a running agent registers the host again at its next heartbeat");
    const r = await run(api, ['host-delete', 'b']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.equal(`error: Failed to delete host b\nerror: ${api.failure.message}\n`);
    api.failure = new NotFoundError("host 'zz' is not known: no agent with this host id has reported, and the catalog has no pools for it");
    expect((await run(api, ['host-delete', 'zz'])).stderr).to.equal(`error: Failed to delete host zz\nerror: ${api.failure.message}\n`);
  });

  it('a host id that cannot be one is refused before anything is sent; the host is required', async () => {
    const api = new HostApi();
    const bad = await run(api, ['host-delete', 'a/b']);
    expect(bad.code).to.equal(1);
    expect(bad.stderr).to.match(/^error: host: /);
    expect((await run(api, ['host-delete'])).stderr).to.equal("error: command 'host-delete' requires <host> option\n");
    expect(api.requests).to.deep.equal([]);
  });
});

// --request-ttl is how long a response answers retries (README, docs/events.md "Retries and
// request ids"). The responses live in the `cistern-requests` bucket, which outlives any one
// coordinator: a coordinator started with another TTL on an existing deployment has to apply
// it, as it applies --request-store-max-bytes, not keep the TTL of whoever made the bucket.
import { expect } from 'chai';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { registerCleanup, startNats } from '../support/index.js';
import { silentLogger } from '../../libs/log/logger.js';
import { RequestResults, REQUESTS_BUCKET } from '../../services/coordinator/request-results.js';

const NS = 1_000_000_000;

describe('request store TTL (coordinator --request-ttl)', function () {
  this.timeout(60_000);

  it('applies the TTL of the coordinator started last to an existing bucket, above and below the 2 min duplicate window', async () => {
    const nats = await startNats();
    const nc = await connect({ servers: nats.url });
    registerCleanup('request ttl test NATS connection', () => nc.close());
    const jsm = await jetstreamManager(nc);
    const config = async () => (await jsm.streams.info(`KV_${REQUESTS_BUCKET}`)).config;

    // the first coordinator of the deployment makes the bucket with the default, 24 h
    await RequestResults.open(nc, silentLogger, undefined);
    expect((await config()).max_age).to.equal(24 * 3600 * NS);

    // a later one started with --request-ttl 1h
    await RequestResults.open(nc, silentLogger, 3600);
    expect((await config()).max_age).to.equal(3600 * NS);

    // --request-ttl 30s: shorter than the bucket's 2 min duplicate window, which nats-server
    // refuses to keep above the max age
    await RequestResults.open(nc, silentLogger, 30);
    const short = await config();
    expect({ maxAge: short.max_age, window: short.duplicate_window }).to.deep.equal({ maxAge: 30 * NS, window: 30 * NS });

    // and back up to 2 h: the window may stay as it is
    await RequestResults.open(nc, silentLogger, 7200);
    expect((await config()).max_age).to.equal(7200 * NS);
  });
});

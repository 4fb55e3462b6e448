// Two GetVolume refreshes of one volume at once (two vol-info, two coordinators): each reads the
// volume beside the other, and the state they leave must be the newer read, not whichever
// read happened to finish last. A volume that grows (a guest writing) read slowly once, then
// quickly after it grew again, must not go back to the older size in the agent's state, its
// events and its answer.
import { expect } from 'chai';
import { EventKind } from '../../../libs/proto/cistern/v1/storage.js';
import { settle, slowReadAgent } from '../../support/slow-read-backend.js';

describe('GetVolume refresh: two re-reads of one volume at once (fake backend)', () => {
  it('the state left, its last event and the later answer are the newer read, not the slower one', async () => {
    const { backend, ctx, events, call, reread, capacityOf, holdNextRead } = await slowReadAgent();
    // the first re-read reads 5 and is slow; the volume grows to 7; the second reads 7 at once
    backend.size = 5n;
    const open = holdNextRead();
    const slow = call(reread);
    await settle();
    backend.size = 7n;
    const fast = call(reread);
    await settle();
    open();
    expect(capacityOf(await fast)).to.equal(7n);
    await slow;

    // the volume is 7 now: the agent's state, the last event about it and a third read say so
    expect(ctx.state.pools.get('p')!.volumes.get('v')!.definition.capacity).to.equal(7n);
    const changed = events.filter((e) => e.kind === EventKind.VOLUME_CHANGED && e.volume === 'v');
    expect(changed.at(-1)?.volumeState?.definition?.capacity).to.equal(7n);
    expect(capacityOf(await call(reread))).to.equal(7n);
  });
});

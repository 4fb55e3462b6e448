// CreateVolume in a disk pool names a refused field of the new volume's definition as in every
// other pool: `definition.capacity` (or `xml`, the field in the message), as the dir and logical
// backends' `volume.` fields are mapped. The disk backend names them without a prefix
// (`capacity`, `name`, `target.encryption.secrets`), and those came back raw: a client could
// not tell them from a field of the request.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { status } from '@grpc/grpc-js';
import { VolumeDefinition } from '../../libs/proto/cistern/v1/storage.js';
import { attachLoop, hasTool, type LoopDevice, loopDevicesAvailable, outcomeOf, registerCleanup, useStack } from '../support/index.js';

const MiB = 1024n * 1024n;
const usable = loopDevicesAvailable() && hasTool('parted') && hasTool('partx');

describe('disk pool: a refused volume field is named under definition or xml', function () {
  this.timeout(120_000);
  const ctx = useStack({ hosts: ['a'] });
  let loop: LoopDevice | undefined;
  let dropPartitions: (() => Promise<void>) | undefined;
  const pool = 'hosts/a/pools/fields';

  before(async function () {
    if (!usable) this.skip(); // needs root, loop devices, parted and partx
    loop = attachLoop(32 * 1024 * 1024, 'it-disk-fields');
    const device = loop.device;
    dropPartitions = registerCleanup(`partitions of ${device}`, () => {
      try {
        execFileSync('partx', ['-d', '--', device], { stdio: 'pipe' });
      } catch {
        // none left
      }
    });
    const api = ctx.stack.api;
    await api.definePool({
      host: 'a',
      definition: undefined,
      xml: `<pool type='disk'><name>fields</name><source><device path='${device}'/><format type='gpt'/></source><target><path>/dev</path></target></pool>`,
      requestId: '',
      validate: false,
    });
    await api.startPool({ name: pool, build: true, buildFlags: { overwrite: false, noOverwrite: true }, requestId: '' });
  });
  after(async function () {
    await dropPartitions?.();
    await loop?.detach();
  });

  const refused = async (definition: Partial<VolumeDefinition> | undefined, xml = ''): Promise<string> => {
    const r = await outcomeOf(
      ctx.stack.api.createVolume({ parent: pool, definition: definition && VolumeDefinition.fromPartial(definition), xml, preallocMetadata: false, requestId: '', validate: false }),
    );
    expect(status[r.code], r.message).to.equal('INVALID_ARGUMENT');
    return r.message;
  };

  it('name, capacity and encryption under definition., or xml with the field in the message', async () => {
    const base = loop!.device.slice('/dev/'.length);
    expect(await refused({ name: `${base}p9`, capacity: MiB })).to.match(new RegExp(`^definition\\.name: invalid partition name '${base}p9', expected '${base}p1'`));
    expect(await refused({ name: `${base}p1`, capacity: 0n })).to.match(/^definition\.capacity: a partition needs a capacity above 0 bytes/);
    const noSecret = { name: `${base}p1`, capacity: MiB, target: { format: 'none', encryption: { format: 'luks', secrets: [] } } as never };
    expect(await refused(noSecret)).to.match(/^definition\.target\.encryption\.secrets: a single <secret type='passphrase'> is expected, got 0/);
    const xml = `<volume><name>${base}p1</name><capacity unit='MiB'>1</capacity><target><format type='none'/><encryption format='luks'/></target></volume>`;
    expect(await refused(undefined, xml)).to.match(/^xml: target\.encryption\.secrets: a single <secret type='passphrase'> is expected, got 0/);
  });
});

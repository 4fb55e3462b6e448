// Table cells escaped as virsh 9.0's vshTableSafeEncode escapes them (tools/vsh-table.c): not
// only ASCII control characters, but a backslash followed by 'x' (so that a name holding the
// text '\x09' cannot pass for an escaped tab) and every character glibc's iswprint says is not
// printable (U+2028, an unassigned code point). The expected texts are what virsh 9.0 printed on
// Debian 12 (x86_64, LANG=C.UTF-8) for a dir pool holding these files:
//   mkdir /tmp/p6 && cd /tmp/p6 && touch $'a\u2028b' 'back\slash' 'back\xslash' $'un\u0378' $'\u202eevil'
//   virsh -c qemu:///session pool-create-as p6 dir --target /tmp/p6
//   virsh -c qemu:///session vol-list p6 [--details]
// virsh writes each byte of a non-printable character as '\xff': it formats the byte with
// "\\x%02x" as a signed char, so 0xe2 is ffffffe2, cut to four characters by the buffer's size.
import { expect } from 'chai';
import { renderTable } from '../../../cli/format/table.js';
import { FakeApi, pool, run, volume } from './fake-api.js';

const NAMES = ['a\u2028b', 'back\\slash', 'back\\xslash', 'un\u0378', '\u202eevil'];

function fleet(): FakeApi {
  const api = new FakeApi(['a']);
  api.pools = [pool('a', 'p6')];
  api.volumes = NAMES.map((n) => volume('a', 'p6', n, 0n, 0n, `/tmp/h118-lv/pools/p6/${n}`));
  return api;
}

describe('cli table cells escaped as vshTableSafeEncode', () => {
  it('vol-list: a backslash before x is \\x5c, a character that is not printable is \\xff per byte', async () => {
    const r = await run(fleet(), ['vol-list', 'p6']);
    expect(r.stderr).to.equal('');
    expect(r.stdout).to.equal(
      ' Name             Path\n' +
      '--------------------------------------------------------\n' +
      ' a\\xff\\xff\\xffb   /tmp/h118-lv/pools/p6/a\\xff\\xff\\xffb\n' +
      ' back\\slash       /tmp/h118-lv/pools/p6/back\\slash\n' +
      ' back\\x5cxslash   /tmp/h118-lv/pools/p6/back\\x5cxslash\n' +
      ' un\\xff\\xff       /tmp/h118-lv/pools/p6/un\\xff\\xff\n' +
      ' \u202eevil             /tmp/h118-lv/pools/p6/\u202eevil\n' +
      '\n');
  });

  it('vol-list --details pads the escaped cells by their escaped width', async () => {
    const r = await run(fleet(), ['vol-list', 'p6', '--details']);
    expect(r.stdout).to.equal(
      ' Name             Path                                   Type   Capacity   Allocation\n' +
      '---------------------------------------------------------------------------------------\n' +
      ' a\\xff\\xff\\xffb   /tmp/h118-lv/pools/p6/a\\xff\\xff\\xffb   file   0.00 B     0.00 B\n' +
      ' back\\slash       /tmp/h118-lv/pools/p6/back\\slash       file   0.00 B     0.00 B\n' +
      ' back\\x5cxslash   /tmp/h118-lv/pools/p6/back\\x5cxslash   file   0.00 B     0.00 B\n' +
      ' un\\xff\\xff       /tmp/h118-lv/pools/p6/un\\xff\\xff       file   0.00 B     0.00 B\n' +
      ' \u202eevil             /tmp/h118-lv/pools/p6/\u202eevil             file   0.00 B     0.00 B\n' +
      '\n');
  });

  it('every table escapes so (pool-list, host-list cells go through renderTable)', () => {
    expect(renderTable(['Name'], [['a\\x09b'], ['tab\\'], ['x\\\\xy'], ['\u2029'], ['\ue000']])).to.equal(
      ' Name\n' +
      '---------------\n' +
      ' a\\x5cx09b\n' +
      ' tab\\\n' +
      ' x\\\\x5cxy\n' +
      ' \\xff\\xff\\xff\n' +
      ' \ue000\n');
  });
});

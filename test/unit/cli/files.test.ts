// errnoText: a local file's failure in the words virsh shows, not Node's.
import { expect } from 'chai';
import { errnoText } from '../../../cli/files.js';

describe('cisternctl file errors (errnoText)', () => {
  it('gives the C library\'s words for the usual errors', () => {
    expect(errnoText({ code: 'EISDIR', message: 'EISDIR: illegal operation on a directory, read' })).to.equal('Is a directory');
    expect(errnoText({ code: 'ENOENT', message: "ENOENT: no such file or directory, open '/x'" })).to.equal('No such file or directory');
    expect(errnoText({ code: 'ENOSPC', message: 'ENOSPC: no space left on device, write' })).to.equal('No space left on device');
  });

  it('keeps libuv\'s words without the code and the call for any other errno', () => {
    expect(errnoText({ code: 'EXDEV', message: "EXDEV: cross-device link not permitted, rename '/a' -> '/b'" }))
      .to.equal('cross-device link not permitted');
    expect(errnoText(new Error('something else'))).to.equal('something else');
  });
});

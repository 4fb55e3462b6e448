// The hidden read of secret-set-value --interactive (virsh's virGetPassword), against a fake
// terminal: what reaches it in one read or in several is the line typed.
import { EventEmitter } from 'node:events';
import { expect } from 'chai';
import { hiddenQuestionOutput, readHiddenLine, type RawInput } from '../../../cli/hidden-input.js';

class FakeTerminal extends EventEmitter {
  isRaw = false;
  modes: boolean[] = [];
  setRawMode(raw: boolean): this {
    this.isRaw = raw;
    this.modes.push(raw);
    return this;
  }
  resume(): this {
    return this;
  }
  pause(): this {
    return this;
  }
  type(...chunks: Buffer[]): void {
    for (const c of chunks) this.emit('data', c);
  }
}

function read(term: FakeTerminal): { answer: Promise<string | undefined>; shown: string[] } {
  const shown: string[] = [];
  return { answer: readHiddenLine(term as unknown as RawInput, { write: (t: string) => shown.push(t) }, 'Enter new value for secret:'), shown };
}

describe('cisternctl hidden line (secret-set-value --interactive)', () => {
  it('a character whose UTF-8 bytes arrive in two reads is read as that character', async () => {
    const term = new FakeTerminal();
    const { answer } = read(term);
    const e = Buffer.from('é€', 'utf8');
    // a paste split by the terminal or ssh at any byte
    term.type(Buffer.from('q'), e.subarray(0, 1), e.subarray(1, 3), e.subarray(3), Buffer.from('\r'));
    expect(Buffer.from((await answer)!, 'utf8').toString('hex')).to.equal(Buffer.from('qé€', 'utf8').toString('hex'));
  });

  it('shows nothing typed, erases with backspace, and gives the terminal back as it was', async () => {
    const term = new FakeTerminal();
    const { answer, shown } = read(term);
    term.type(Buffer.from('abc\x7fd€\r'));
    expect(await answer).to.equal('abd€');
    expect(shown.join('')).to.equal('Enter new value for secret:\n');
    expect(term.modes).to.deep.equal([true, false]);
    expect(term.listenerCount('data')).to.equal(0);
  });

  it('Ctrl-C gives no line', async () => {
    const term = new FakeTerminal();
    const { answer } = read(term);
    term.type(Buffer.from('ab\x03'));
    expect(await answer).to.equal(undefined);
  });
});

describe('cisternctl hidden line: where the question goes', () => {
  const stream = (isTTY: boolean) => ({ isTTY, write: () => true });

  it('to stdout on a terminal, to stderr when stdout is redirected (getpass asks on the terminal)', () => {
    const stdout = stream(true);
    const stderr = stream(true);
    expect(hiddenQuestionOutput(stdout, stderr)).to.equal(stdout);
    const redirected = stream(false);
    // `secret-set-value --interactive > out.txt`: the question must not go into out.txt
    expect(hiddenQuestionOutput(redirected, stderr)).to.equal(stderr);
  });
});

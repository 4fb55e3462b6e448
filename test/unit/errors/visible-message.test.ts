// Error messages echo what a request held (an XML tag name, an attribute value, a size): a
// control character there (ESC [2J clears the screen, C1's U+009B is a one-character CSI) or a
// direction override (U+202E) would reach the operator's terminal or log viewer as it is. virsh
// 9.0 echoes a bad pool XML raw (`virsh pool-define` shows the line holding ESC); Cistern's
// messages show such characters escaped (\x1b, \x9b, \u202e), as printable() shows names.
import { expect } from 'chai';
import { InvalidArgumentError, NotFoundError } from '../../../libs/errors/errors.js';
import { parsePoolXml } from '../../../libs/xml/pool.js';

/** C0 (but tab and newline), DEL, C1, lone surrogates, and invisible format characters. */
const HIDDEN = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\u200e\u200f\u202a-\u202e\u2028\u2029\u2066-\u2069\ufeff]|[\ud800-\udfff]/u;

function messageOf(xml: string): string {
  try {
    parsePoolXml(xml);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error(`accepted: ${xml}`);
}

describe('error messages show control and format characters escaped', () => {
  it('an XML error echoing a tag name, an attribute or a value escapes them, and keeps the rest', () => {
    const cases: [string, string][] = [
      ['<pool type="dir"><name>p</name><target><path>/tmp</path></target></poo\u009b2Jl>', "Tag 'poo\\x9b2Jl' is an invalid name"],
      ['<pool type="d&#x9b;2Jir"><name>p</name><target><path>/tmp</path></target></pool>', "unsupported pool type 'd\\x9b2Jir'; supported: dir,"],
      ['<pool type="dir"><name>p</name><target><path>/tmp</path><permissions><mode>07\u009b55</mode></permissions></target></pool>', "malformed octal mode '07\\x9b55'; allowed: 0 to 0777"],
      ['<pool type="dir"><name>p</name><target><path>/tmp</path><permissions><mode>07\u202e55</mode></permissions></target></pool>', "malformed octal mode '07\\u202e55'"],
      ['<pool type="dir"><name>p</name><uuid>1&#x85;</uuid><target><path>/tmp</path></target></pool>', "malformed uuid '1\\x85'"],
      ['<pool type="logical"><name>p</name><source><format type="lvm2&#x9b;"/></source></pool>', "unknown pool format type 'lvm2\\x9b'"],
    ];
    for (const [xml, shown] of cases) {
      const m = messageOf(xml);
      expect(m, xml).to.not.match(HIDDEN);
      expect(m, xml).to.include(shown);
    }
  });

  it('every typed error escapes its message, once, and keeps tabs and line breaks', () => {
    const e = new InvalidArgumentError('pool/name', "bad '\x1b[2J\u202e\r' here\n\tnext line");
    expect(e.message).to.equal("pool/name: bad '\\x1b[2J\\u202e\\x0d' here\n\tnext line");
    // what comes back over the bus or gRPC is made again from the message: no double escape
    expect(new InvalidArgumentError('', e.message).message).to.equal(e.message);
    expect(new NotFoundError("storage pool 'a\x07' not found").message).to.equal("storage pool 'a\\x07' not found");
    // joiners that emoji and some scripts need are not hidden characters
    expect(new NotFoundError('pool \u{1F468}\u200D\u{1F469} not found').message).to.equal('pool \u{1F468}\u200D\u{1F469} not found');
  });
});

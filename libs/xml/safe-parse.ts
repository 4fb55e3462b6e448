// The hardened XML reader behind every libvirt document Cistern accepts.
//
// fast-xml-parser does the tokenising; this file adds what a root-run agent needs on top:
// no DOCTYPE, no entities (only the five predefined ones and character references),
// a size limit, a nesting limit, exactly one root, namespace prefixes that resolve, and
// errors that are always InvalidArgumentError and say the line where it is known.
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { InvalidArgumentError } from '../errors/errors.js';

import { MAX_XML_ATTRIBUTES, MAX_XML_BYTES, MAX_XML_DEPTH, MAX_XML_ELEMENTS } from './limits.js';

export { MAX_XML_ATTRIBUTES, MAX_XML_BYTES, MAX_XML_DEPTH, MAX_XML_ELEMENTS };

/** One element of a parsed document. Names are split into prefix/local and resolved to a namespace URI. */
export interface XmlElement {
  /** Name as written, e.g. 'fs:option'. */
  readonly qname: string;
  /** Local part of the name, e.g. 'option'. */
  readonly local: string;
  /** Namespace URI; '' when the element is in no namespace. */
  readonly ns: string;
  /** Attributes by name as written (namespace declarations excluded), values decoded. */
  readonly attrs: ReadonlyMap<string, string>;
  readonly children: readonly XmlElement[];
  /** XPath string-value: all descendant text in document order. */
  readonly text: string;
  /** 1-based line of the start tag, when known. */
  readonly line: number | undefined;
  /** Slash-separated element path from the root, for messages, e.g. 'pool/source/device'. */
  readonly path: string;
  /** Namespace declarations made on this element (prefix -> URI; '' = default namespace). */
  readonly nsDecls: ReadonlyMap<string, string>;
}

const XML_NS = 'http://www.w3.org/XML/1998/namespace';

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  allowBooleanAttributes: false,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  processEntities: false,
  htmlEntities: false,
  cdataPropName: '#cdata',
  commentPropName: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  removeNSPrefix: false,
  captureMetaData: true,
  maxNestedTags: MAX_XML_DEPTH + 8,
});
const META = XMLParser.getMetaDataSymbol() as unknown as symbol;

type FxpNode = Record<string | symbol, unknown>;

/** Maps string offsets to 1-based line numbers. */
class LineIndex {
  private starts: number[] | undefined;
  constructor(private readonly text: string) {}
  lineAt(offset: number): number {
    if (!this.starts) {
      const s = [0];
      for (let i = this.text.indexOf('\n'); i !== -1; i = this.text.indexOf('\n', i + 1)) s.push(i + 1);
      this.starts = s;
    }
    const s = this.starts;
    let lo = 0;
    let hi = s.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (s[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  }
}

/** Short, printable excerpt of a user value for error messages. */
export function shown(value: string, max = 60): string {
  const clean = value.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return clean.length > max ? `${clean.slice(0, max)}...` : clean;
}

/** ' (line N)' or '' */
export function atLine(line: number | undefined): string {
  return line === undefined ? '' : ` (line ${line})`;
}

function fail(what: string, message: string, line?: number): never {
  throw new InvalidArgumentError(what, `${message}${atLine(line)}`, line === undefined ? {} : { line: String(line) });
}

// XML 1.0 Char production; anything else (NUL, most C0 controls, lone surrogates, U+FFFE/U+FFFF) is refused.
const BAD_CHAR = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

function isXmlChar(cp: number): boolean {
  return (
    cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff)
  );
}

const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', apos: "'", quot: '"' };
const REF = /&([^;&<>\s]{0,40});?/g;

/** Decodes the predefined entities and character references; refuses every other entity. */
function decodeRefs(raw: string, what: string, line: number | undefined): string {
  if (!raw.includes('&')) return raw;
  return raw.replace(REF, (whole: string, body: string) => {
    if (!whole.endsWith(';')) fail(what, `'&' must be written as '&amp;' (found '${shown(whole)}')`, line);
    if (body.startsWith('#')) {
      const num = body[1] === 'x' ? /^#x([0-9a-fA-F]{1,6})$/.exec(body)?.[1] : /^#([0-9]{1,7})$/.exec(body)?.[1];
      const cp = num === undefined ? NaN : parseInt(num, body[1] === 'x' ? 16 : 10);
      if (!Number.isFinite(cp) || !isXmlChar(cp)) fail(what, `invalid character reference '${shown(whole)}'`, line);
      return String.fromCodePoint(cp);
    }
    const v = PREDEFINED[body];
    if (v === undefined) {
      fail(what, `entity reference '${shown(whole)}' is not allowed; only &lt; &gt; &amp; &apos; &quot; and character references are accepted (no DTD, no entities)`, line);
    }
    return v;
  });
}

/** Refuses DOCTYPE and every other markup declaration ('<!' that is not a comment or CDATA section). */
/**
 * The document is the API's string, UTF-8 on the wire: an XML declaration naming another
 * encoding (`<?xml version="1.0" encoding="UTF-7"?>`) does not describe it. Refused, because
 * a reader that honours the declaration (libxml2: xmllint for validate) would decode other
 * text than the text checked here, e.g. a UTF-7 DOCTYPE hidden in what reads as a comment.
 * Every `<?xml` is looked at, not only a leading one, so none reaches a reader unseen.
 */
function refuseOtherEncodings(xml: string, lines: LineIndex): void {
  const declaration = /<\?xml[\s?]/gi;
  for (let m = declaration.exec(xml); m; m = declaration.exec(xml)) {
    const end = xml.indexOf('?>', m.index);
    const body = xml.slice(m.index, end === -1 ? xml.length : end);
    const encoding = /\bencoding\s*=\s*(?:"([^"]*)"|'([^']*)'|(\S*))/i.exec(body);
    if (!encoding) continue;
    const name = encoding[1] ?? encoding[2] ?? encoding[3] ?? '';
    if (!/^utf-?8$/i.test(name)) {
      fail('xml', `the XML declaration names encoding '${shown(name, 40)}'; documents are UTF-8 (the API's strings are): declare UTF-8 or no encoding`, lines.lineAt(m.index));
    }
  }
}

function refuseDeclarations(xml: string, lines: LineIndex): void {
  // first bluntly, anywhere: the scan below skips comments, and a '<!--' inside a processing
  // instruction would make it skip a DOCTYPE that the parser then reads. A raw '<' can only
  // stand in comments, CDATA or processing instructions, so this refuses no real document
  const declaration = /<!(DOCTYPE|ENTITY)/i.exec(xml);
  if (declaration) {
    const line = lines.lineAt(declaration.index);
    if (declaration[1]!.toUpperCase() === 'DOCTYPE') fail('xml', 'a DOCTYPE is not allowed (no DTD, no entities)', line);
    fail('xml', 'entity declarations are not allowed (no DTD, no entities)', line);
  }
  let i = xml.indexOf('<!');
  while (i !== -1) {
    if (xml.startsWith('<!--', i)) {
      const end = xml.indexOf('-->', i + 4);
      if (end === -1) return; // unterminated: the validator reports it
      i = xml.indexOf('<!', end + 3);
    } else if (xml.startsWith('<![CDATA[', i)) {
      const end = xml.indexOf(']]>', i + 9);
      if (end === -1) return;
      i = xml.indexOf('<!', end + 3);
    } else {
      // (DOCTYPE and ENTITY were refused above)
      const what = /^<!([A-Za-z]*)/.exec(xml.slice(i, i + 20))?.[1] ?? '';
      fail('xml', `markup declaration '<!${shown(what, 20)}' is not allowed; only elements, comments and CDATA are accepted`, lines.lineAt(i));
    }
  }
}

/**
 * Refuses a document with more elements or attributes than allowed, before the parser builds
 * anything. Counts start tags and the '=' of their attributes, skipping comments, CDATA and
 * processing instructions and quoted values; exact for a well-formed document (a malformed
 * one is the parser's to refuse), and it stops at the first count over its limit.
 */
function refuseTooManyNodes(xml: string, what: string, lines: LineIndex): void {
  let elements = 0;
  let attributes = 0;
  const n = xml.length;
  let i = xml.indexOf('<');
  while (i !== -1) {
    const next = xml.charCodeAt(i + 1);
    if (next === 0x21 /* ! */) {
      const end = xml.startsWith('<!--', i) ? xml.indexOf('-->', i + 4) : xml.startsWith('<![CDATA[', i) ? xml.indexOf(']]>', i + 9) : xml.indexOf('>', i + 2);
      if (end === -1) return;
      i = xml.indexOf('<', end + 1);
      continue;
    }
    if (next === 0x3f /* ? */) {
      const end = xml.indexOf('?>', i + 2);
      if (end === -1) return;
      i = xml.indexOf('<', end + 2);
      continue;
    }
    if (next === 0x2f /* / */) {
      i = xml.indexOf('<', i + 2);
      continue;
    }
    if (++elements > MAX_XML_ELEMENTS) {
      fail(what, `document has more than ${MAX_XML_ELEMENTS} elements; at most ${MAX_XML_ELEMENTS} are allowed (libvirt's storage documents have a few dozen)`, lines.lineAt(i));
    }
    let j = i + 1;
    let quote = 0;
    for (; j < n; j++) {
      const c = xml.charCodeAt(j);
      if (quote !== 0) {
        if (c === quote) quote = 0;
      } else if (c === 0x22 || c === 0x27) quote = c;
      else if (c === 0x3e /* > */) break;
      else if (c === 0x3d /* = */ && ++attributes > MAX_XML_ATTRIBUTES) {
        fail(what, `document has more than ${MAX_XML_ATTRIBUTES} attributes; at most ${MAX_XML_ATTRIBUTES} are allowed (libvirt's storage documents have a few dozen)`, lines.lineAt(j));
      }
    }
    i = j >= n ? -1 : xml.indexOf('<', j + 1);
  }
}

/**
 * Refuses what fast-xml-parser's validator lets through and libxml2 (libvirt's reader) does
 * not, so that no document libvirt refuses is taken: '--' inside a comment (or one ending in
 * '-'), ']]>' in character data, an XML declaration anywhere but at the start, another
 * processing instruction named xml in any case, one without a name, an XML version other
 * than 1.x. Walks the markup as refuseTooManyNodes does (quoted values skipped); a document
 * that is malformed in another way is left to the validator.
 */
function refuseMalformedMarkup(xml: string, what: string, lines: LineIndex): void {
  const n = xml.length;
  let textFrom = 0;
  // the next ']]>' at or after textFrom, only ever moved forward: one pass over the document
  let close = xml.indexOf(']]>');
  const checkText = (end: number): void => {
    if (close !== -1 && close < textFrom) close = xml.indexOf(']]>', textFrom);
    if (close !== -1 && close < end) fail(what, "']]>' is not allowed in text; write ']]&gt;' (or put the text in CDATA)", lines.lineAt(close));
  };
  let i = xml.indexOf('<');
  while (i !== -1) {
    checkText(i);
    let next: number;
    if (xml.startsWith('<!--', i)) {
      const end = xml.indexOf('-->', i + 4);
      if (end === -1) return;
      const body = xml.slice(i + 4, end);
      const dashes = body.indexOf('--');
      if (dashes !== -1 || body.endsWith('-')) {
        fail(what, "'--' is not allowed inside a comment (nor a '-' just before its closing '-->')", lines.lineAt(dashes !== -1 ? i + 4 + dashes : end));
      }
      next = end + 3;
    } else if (xml.startsWith('<![CDATA[', i)) {
      const end = xml.indexOf(']]>', i + 9);
      if (end === -1) return;
      next = end + 3;
    } else if (xml.startsWith('<?', i)) {
      const end = xml.indexOf('?>', i + 2);
      if (end === -1) return;
      const target = /^[^\s?]*/.exec(xml.slice(i + 2, end))![0];
      if (target === '') fail(what, 'processing instruction without a name (<? must be followed by one)', lines.lineAt(i));
      if (target.toLowerCase() === 'xml') {
        if (target !== 'xml') fail(what, `processing instruction name '${shown(target, 20)}' is reserved`, lines.lineAt(i));
        if (i !== 0) fail(what, 'an XML declaration is allowed only at the start of the document', lines.lineAt(i));
        const version = /\bversion\s*=\s*(?:"([^"]*)"|'([^']*)')/.exec(xml.slice(i, end));
        const v = version ? (version[1] ?? version[2] ?? '') : undefined;
        if (v !== undefined && !/^1\.[0-9]+$/.test(v)) fail(what, `XML version '${shown(v, 20)}' is not supported; allowed: 1.0`, lines.lineAt(i));
      }
      next = end + 2;
    } else {
      // a tag: to its '>' outside quoted values (an attribute value may hold ']]>' or '>')
      let j = i + 1;
      let quote = 0;
      for (; j < n; j++) {
        const c = xml.charCodeAt(j);
        if (quote !== 0) {
          if (c === quote) quote = 0;
        } else if (c === 0x22 || c === 0x27) quote = c;
        else if (c === 0x3e /* > */) break;
      }
      if (j >= n) return;
      next = j + 1;
    }
    textFrom = next;
    i = xml.indexOf('<', next);
  }
  checkText(n);
}

interface Scope {
  readonly parent: Scope | undefined;
  readonly decls: ReadonlyMap<string, string>;
}

function resolvePrefix(scope: Scope | undefined, prefix: string): string | undefined {
  if (prefix === 'xml') return XML_NS;
  for (let s = scope; s; s = s.parent) {
    const uri = s.decls.get(prefix);
    if (uri !== undefined) return uri;
  }
  return prefix === '' ? '' : undefined;
}

function splitQName(qname: string, what: string, line: number | undefined): [string, string] {
  const colon = qname.indexOf(':');
  if (colon === -1) return ['', qname];
  if (colon === 0 || colon === qname.length - 1 || qname.indexOf(':', colon + 1) !== -1) {
    fail(what, `'${shown(qname)}' is not a valid qualified name`, line);
  }
  return [qname.slice(0, colon), qname.slice(colon + 1)];
}

function tagOf(node: FxpNode): string | undefined {
  for (const k of Object.keys(node)) if (k !== ':@') return k;
  return undefined;
}

/**
 * Parses one XML document with the hardening rules. `what` names the document kind in
 * messages ('pool', 'volume', 'source' ...).
 */
export function parseXmlDocument(xml: string, what = 'xml'): XmlElement {
  if (typeof xml !== 'string') fail(what, 'document must be a string');
  if (xml.length > MAX_XML_BYTES || (xml.length * 3 > MAX_XML_BYTES && Buffer.byteLength(xml, 'utf8') > MAX_XML_BYTES)) {
    fail(what, `document is larger than ${MAX_XML_BYTES} bytes (1 MiB)`);
  }
  if (xml.charCodeAt(0) === 0xfeff) xml = xml.slice(1);
  const lines = new LineIndex(xml);
  const bad = BAD_CHAR.exec(xml);
  if (bad) {
    const cp = bad[0].codePointAt(0) ?? 0;
    fail(what, `character U+${cp.toString(16).toUpperCase().padStart(4, '0')} is not allowed in XML`, lines.lineAt(bad.index));
  }
  if (xml.trim() === '') fail(what, 'document is empty');
  refuseOtherEncodings(xml, lines);
  refuseDeclarations(xml, lines);
  refuseTooManyNodes(xml, what, lines);
  refuseMalformedMarkup(xml, what, lines);

  let valid: true | { err: { code: string; msg: string; line: number; col?: number } };
  try {
    valid = XMLValidator.validate(xml, { allowBooleanAttributes: false }) as typeof valid;
  } catch (e) {
    fail(what, `malformed XML: ${shown(String((e as Error)?.message ?? e), 200)}`);
  }
  if (valid !== true) {
    const col = valid.err.col === undefined ? '' : `, column ${valid.err.col}`;
    fail(what, `malformed XML: ${shown(valid.err.msg, 200)} (line ${valid.err.line}${col})`);
  }

  let tree: FxpNode[];
  try {
    tree = parser.parse(xml) as FxpNode[];
  } catch (e) {
    const msg = String((e as Error)?.message ?? e);
    if (/nested tags/i.test(msg)) fail(what, `elements are nested deeper than ${MAX_XML_DEPTH} levels`);
    fail(what, `malformed XML: ${shown(msg, 200)}`);
  }

  let root: FxpNode | undefined;
  for (const node of tree) {
    const tag = tagOf(node);
    if (tag === undefined || tag === '#text') {
      const t = node['#text'];
      if (typeof t === 'string' && t.trim() !== '') fail(what, `text '${shown(t.trim())}' outside the root element`);
      continue;
    }
    if (tag === '#cdata') fail(what, 'CDATA outside the root element');
    if (root) {
      const meta = node[META] as { startIndex?: number } | undefined;
      fail(what, `more than one root element ('${shown(tagOf(root) ?? '')}' and '${shown(tag)}'); exactly one is allowed`, meta?.startIndex === undefined ? undefined : lines.lineAt(meta.startIndex));
    }
    root = node;
  }
  if (!root) fail(what, 'document has no root element');
  return convert(root, undefined, '', 1, lines, what);
}

function convert(node: FxpNode, scope: Scope | undefined, parentPath: string, depth: number, lines: LineIndex, what: string): XmlElement {
  const qname = tagOf(node)!;
  const meta = node[META] as { startIndex?: number } | undefined;
  const line = meta?.startIndex === undefined ? undefined : lines.lineAt(meta.startIndex);
  const path = parentPath ? `${parentPath}/${qname}` : qname;
  if (depth > MAX_XML_DEPTH) fail(path, `elements are nested deeper than ${MAX_XML_DEPTH} levels`, line);

  const rawAttrs = (node[':@'] ?? {}) as Record<string, unknown>;
  const decls = new Map<string, string>();
  const attrs = new Map<string, string>();
  for (const name of Object.keys(rawAttrs)) {
    const raw = rawAttrs[name];
    if (typeof raw !== 'string') fail(`${path}/@${shown(name)}`, 'attribute has no value', line);
    if (raw.includes('<')) fail(`${path}/@${shown(name)}`, "'<' is not allowed in an attribute value; write '&lt;'", line);
    const value = decodeRefs(raw.replace(/[\t\n\r]/g, ' '), `${path}/@${shown(name)}`, line);
    if (name === 'xmlns') decls.set('', value);
    else if (name.startsWith('xmlns:')) {
      const p = name.slice(6);
      if (!p || p.includes(':')) fail(`${path}/@${shown(name)}`, 'invalid namespace declaration', line);
      if (value === '') fail(`${path}/@${shown(name)}`, `namespace prefix '${shown(p)}' cannot be bound to an empty URI`, line);
      decls.set(p, value);
    } else attrs.set(name, value);
  }
  const here: Scope = decls.size ? { parent: scope, decls } : (scope ?? { parent: undefined, decls });
  const [prefix, local] = splitQName(qname, path, line);
  const ns = resolvePrefix(here, prefix);
  if (ns === undefined) fail(path, `namespace prefix '${shown(prefix)}' is not declared`, line);
  for (const name of attrs.keys()) {
    const [ap] = splitQName(name, `${path}/@${shown(name)}`, line);
    if (ap && resolvePrefix(here, ap) === undefined) fail(`${path}/@${shown(name)}`, `namespace prefix '${shown(ap)}' is not declared`, line);
  }

  const children: XmlElement[] = [];
  let text = '';
  const content = node[qname];
  if (Array.isArray(content)) {
    for (const c of content as FxpNode[]) {
      const tag = tagOf(c);
      if (tag === '#text') {
        text += decodeRefs(String(c['#text'] ?? ''), path, line);
      } else if (tag === '#cdata') {
        const parts = c['#cdata'];
        if (Array.isArray(parts)) for (const p of parts as FxpNode[]) text += String(p['#text'] ?? '');
      } else if (tag !== undefined) {
        const child = convert(c, here, path, depth + 1, lines, what);
        children.push(child);
        text += child.text;
      }
    }
  }
  return { qname, local, ns, attrs, children, text, line, path, nsDecls: decls };
}

// ---------------------------------------------------------------- helpers for readers

/**
 * Why `root` is not the document's expected root element (`<pool>`, in no namespace, as
 * libvirt's XPath reads its documents), or undefined when it is.
 */
export function rootProblem(root: XmlElement, local: string): string | undefined {
  if (root.local === local && root.ns === '') return undefined;
  if (root.local === local) {
    const decl = root.qname.includes(':') ? `xmlns:${root.qname.slice(0, root.qname.indexOf(':'))}` : 'xmlns';
    return `root element <${shown(root.qname)}> is in namespace '${shown(root.ns, 100)}'; libvirt's <${local}> is in no namespace (leave out ${decl}='${shown(root.ns, 100)}')`;
  }
  return `unexpected root element <${shown(root.qname)}>, expecting <${local}>`;
}

/** First child element in no namespace with this local name. */
export function child(el: XmlElement, local: string): XmlElement | undefined {
  for (const c of el.children) if (c.local === local && c.ns === '') return c;
  return undefined;
}

/** All child elements in no namespace with this local name. */
export function childrenNamed(el: XmlElement, local: string): XmlElement[] {
  return el.children.filter((c) => c.local === local && c.ns === '');
}

/** Child elements in a given namespace with this local name. */
export function childrenNs(el: XmlElement, ns: string, local: string): XmlElement[] {
  return el.children.filter((c) => c.local === local && c.ns === ns);
}

/** An attribute by its unprefixed name; undefined when absent. */
export function attr(el: XmlElement, name: string): string | undefined {
  return el.attrs.get(name);
}

// The XML of pool-dumpxml/vol-dumpxml as the tree virsh's --xpath works on: libxml2's, parsed
// with xmlKeepBlanksDefault(0) (virshDumpXML). Blank text between elements is dropped by
// libxml2's heuristic (areBlanks): kept when it is an element's only content, when the element
// already has text, or under xml:space='preserve'. Namespace declarations are not attributes.
// The input is the XML our server writes: well-formed, no DTD (a DOCTYPE is refused).

export type XParent = XDocument | XElement;

interface XBase {
  /** document order: every node and attribute numbered in a pre-order walk */
  order: number;
}

export interface XDocument extends XBase {
  type: 'document';
  parent: null;
  children: XChild[];
}

export interface XElement extends XBase {
  type: 'element';
  parent: XParent;
  /** qualified name as written (prefix:local) */
  name: string;
  local: string;
  /** namespace URI ('' when none) */
  uri: string;
  /** namespace declarations on this element, as written: [prefix ('' = default), uri] */
  nsDecls: Array<[string, string]>;
  attrs: XAttr[];
  children: XChild[];
}

export interface XAttr extends XBase {
  type: 'attribute';
  parent: XElement;
  name: string;
  local: string;
  uri: string;
  value: string;
}

export interface XText extends XBase {
  /** 'cdata' for <![CDATA[...]]> */
  type: 'text' | 'cdata';
  parent: XParent;
  value: string;
}

export interface XComment extends XBase {
  type: 'comment';
  parent: XParent;
  value: string;
}

export interface XPi extends XBase {
  type: 'pi';
  parent: XParent;
  target: string;
  value: string;
}

export type XChild = XElement | XText | XComment | XPi;
export type XNode = XDocument | XChild | XAttr;

export class XmlSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'XmlSyntaxError';
  }
}

const XML_NS = 'http://www.w3.org/XML/1998/namespace';
const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', apos: "'", quot: '"' };
const NAME = /[^\s/>=<"']+/y;

function isBlank(s: string): boolean {
  return /^[ \t\n\r]*$/.test(s);
}

function decode(text: string, at: number): string {
  return text.replace(/&([^;&\s]*);?/g, (whole, ref: string) => {
    if (!whole.endsWith(';')) throw new XmlSyntaxError(`unterminated reference '${whole}' near offset ${at}`);
    if (ref.startsWith('#x')) return String.fromCodePoint(parseInt(ref.slice(2), 16));
    if (ref.startsWith('#')) return String.fromCodePoint(parseInt(ref.slice(1), 10));
    const v = PREDEFINED[ref];
    if (v === undefined) throw new XmlSyntaxError(`unknown entity '&${ref};'`);
    return v;
  });
}

/** Parses `xml` into libxml2's tree (blanks as xmlKeepBlanksDefault(0) leaves them). */
export function parseXmlTree(input: string): XDocument {
  const xml = input.replace(/\r\n?/g, '\n');
  const doc: XDocument = { type: 'document', parent: null, children: [], order: 0 };
  // per open element: its in-scope namespaces and whether xml:space='preserve' applies
  const stack: Array<{ node: XParent; ns: Map<string, string>; preserve: boolean }> = [
    { node: doc, ns: new Map([['xml', XML_NS]]), preserve: false },
  ];
  let i = 0;
  const top = () => stack[stack.length - 1]!;
  const expect = (s: string, what: string): number => {
    const j = xml.indexOf(s, i);
    if (j < 0) throw new XmlSyntaxError(`${what} not closed`);
    return j;
  };
  while (i < xml.length) {
    const cur = top();
    if (xml[i] !== '<') {
      let j = xml.indexOf('<', i);
      if (j < 0) j = xml.length;
      const raw = xml.slice(i, j);
      if (cur.node.type === 'document') {
        if (!isBlank(raw)) throw new XmlSyntaxError('text outside the root element');
      } else if (!keepsBlanks(cur.node, raw, xml.startsWith('</', j), cur.preserve)) {
        // dropped, as libxml2 drops ignorable blanks
      } else {
        const value = decode(raw, i);
        const last = cur.node.children[cur.node.children.length - 1];
        if (last?.type === 'text') last.value += value;
        else cur.node.children.push({ type: 'text', parent: cur.node, value, order: 0 });
      }
      i = j;
      continue;
    }
    if (xml.startsWith('<!--', i)) {
      const j = expect('-->', 'comment');
      cur.node.children.push({ type: 'comment', parent: cur.node, value: xml.slice(i + 4, j), order: 0 });
      i = j + 3;
    } else if (xml.startsWith('<![CDATA[', i)) {
      if (cur.node.type === 'document') throw new XmlSyntaxError('CDATA outside the root element');
      const j = expect(']]>', 'CDATA section');
      cur.node.children.push({ type: 'cdata', parent: cur.node, value: xml.slice(i + 9, j), order: 0 });
      i = j + 3;
    } else if (xml.startsWith('<?', i)) {
      const j = expect('?>', 'processing instruction');
      const body = xml.slice(i + 2, j);
      const m = /^(\S+)\s*([\s\S]*)$/.exec(body);
      const target = m?.[1] ?? '';
      if (target.toLowerCase() !== 'xml') cur.node.children.push({ type: 'pi', parent: cur.node, target, value: m?.[2] ?? '', order: 0 });
      i = j + 2;
    } else if (xml.startsWith('<!', i)) {
      throw new XmlSyntaxError('a DOCTYPE or other declaration is not supported');
    } else if (xml.startsWith('</', i)) {
      const j = expect('>', 'end tag');
      const name = xml.slice(i + 2, j).trim();
      if (cur.node.type !== 'element' || cur.node.name !== name) throw new XmlSyntaxError(`unexpected end tag </${name}>`);
      stack.pop();
      i = j + 1;
    } else {
      i = startTag(xml, i + 1, stack);
    }
  }
  if (stack.length > 1) throw new XmlSyntaxError(`element <${(top().node as XElement).name}> not closed`);
  if (!doc.children.some((c) => c.type === 'element')) throw new XmlSyntaxError('no root element');
  number(doc, 0);
  return doc;
}

/** libxml2's areBlanks(), inverted: whether text `raw` stays in element `el`. */
function keepsBlanks(el: XElement, raw: string, beforeEndTag: boolean, preserve: boolean): boolean {
  if (preserve || !isBlank(raw)) return true;
  if (el.children.length === 0 && beforeEndTag) return true; // the element's only content
  const last = el.children[el.children.length - 1];
  if (last?.type === 'text') return true;
  if (el.children[0]?.type === 'text') return true;
  return false;
}

function startTag(xml: string, start: number, stack: Array<{ node: XParent; ns: Map<string, string>; preserve: boolean }>): number {
  NAME.lastIndex = start;
  const m = NAME.exec(xml);
  if (!m) throw new XmlSyntaxError(`bad start tag at offset ${start - 1}`);
  const name = m[0];
  let i = NAME.lastIndex;
  const raw: Array<[string, string]> = [];
  for (;;) {
    while (/\s/.test(xml[i] ?? '')) i++;
    if (i >= xml.length) throw new XmlSyntaxError(`start tag <${name}> not closed`);
    if (xml[i] === '>' || xml.startsWith('/>', i)) break;
    NAME.lastIndex = i;
    const a = NAME.exec(xml);
    if (!a) throw new XmlSyntaxError(`bad attribute in <${name}>`);
    i = NAME.lastIndex;
    while (/\s/.test(xml[i] ?? '')) i++;
    if (xml[i] !== '=') throw new XmlSyntaxError(`attribute ${a[0]} of <${name}> has no value`);
    i++;
    while (/\s/.test(xml[i] ?? '')) i++;
    const q = xml[i];
    if (q !== '"' && q !== "'") throw new XmlSyntaxError(`attribute ${a[0]} of <${name}> is not quoted`);
    const end = xml.indexOf(q, i + 1);
    if (end < 0) throw new XmlSyntaxError(`attribute ${a[0]} of <${name}> not closed`);
    // attribute-value normalization: literal tabs and newlines become spaces, references stay
    raw.push([a[0], decode(xml.slice(i + 1, end).replace(/[\t\n]/g, ' '), i)]);
    i = end + 1;
  }
  const selfClosing = xml[i] === '/';
  const parentFrame = stack[stack.length - 1]!;
  const ns = new Map(parentFrame.ns);
  const nsDecls: Array<[string, string]> = [];
  for (const [n, v] of raw) {
    if (n === 'xmlns' || n.startsWith('xmlns:')) {
      const prefix = n === 'xmlns' ? '' : n.slice(6);
      nsDecls.push([prefix, v]);
      ns.set(prefix, v);
    }
  }
  const resolve = (qname: string, isAttr: boolean): [string, string] => {
    const colon = qname.indexOf(':');
    if (colon < 0) return [qname, isAttr ? '' : ns.get('') ?? ''];
    const prefix = qname.slice(0, colon);
    const uri = ns.get(prefix);
    if (uri === undefined) throw new XmlSyntaxError(`undefined namespace prefix '${prefix}' in <${name}>`);
    return [qname.slice(colon + 1), uri];
  };
  const parent = parentFrame.node;
  const [local, uri] = resolve(name, false);
  const el: XElement = { type: 'element', parent, name, local, uri, nsDecls, attrs: [], children: [], order: 0 };
  let preserve = parentFrame.preserve;
  for (const [n, v] of raw) {
    if (n === 'xmlns' || n.startsWith('xmlns:')) continue;
    const [aLocal, aUri] = resolve(n, true);
    el.attrs.push({ type: 'attribute', parent: el, name: n, local: aLocal, uri: aUri, value: v, order: 0 });
    if (n === 'xml:space') preserve = v === 'preserve';
  }
  if (parent.type === 'document' && parent.children.some((c) => c.type === 'element')) {
    throw new XmlSyntaxError('more than one root element');
  }
  parent.children.push(el);
  if (!selfClosing) stack.push({ node: el, ns, preserve });
  return i + (selfClosing ? 2 : 1);
}

function number(node: XDocument | XChild, next: number): number {
  node.order = next++;
  if (node.type === 'element') for (const a of node.attrs) a.order = next++;
  if (node.type === 'element' || node.type === 'document') for (const c of node.children) next = number(c, next);
  return next;
}

/** XPath's string-value of a node. */
export function stringValue(node: XNode): string {
  if (node.type === 'element' || node.type === 'document') {
    let s = '';
    const walk = (n: XParent): void => {
      for (const c of n.children) {
        if (c.type === 'text' || c.type === 'cdata') s += c.value;
        else if (c.type === 'element') walk(c);
      }
    };
    walk(node);
    return s;
  }
  return node.value;
}

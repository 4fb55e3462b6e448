// virshDumpXML (virsh 9.0): pool-dumpxml/vol-dumpxml print the XML as it is, or, with --xpath,
// each node the expression selects as libxml2 serializes it (xmlNodeDump, formatted: two-space
// indents, attributes in double quotes), one per line; --wrap puts them under one <nodes>
// element instead.
import { UsageError } from '../errors.js';
import { parseXmlTree, type XAttr, type XChild, type XElement, type XNode } from '../xml-tree.js';
import { compileXPath, evaluateXPath, XPathError } from '../xpath.js';

function escapeText(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r/g, '&#13;');
}

/**
 * libxml2's xmlBufAttrSerializeTxtContent. `charRefs`: the document has no declared encoding
 * (the case of every node dumped on its own), so non-ASCII characters become &#xHEX; references.
 */
function escapeAttr(s: string, charRefs: boolean): string {
  let out = '';
  for (const c of s) {
    const cp = c.codePointAt(0)!;
    if (c === '\n') out += '&#10;';
    else if (c === '\r') out += '&#13;';
    else if (c === '\t') out += '&#9;';
    else if (c === '"') out += '&quot;';
    else if (c === '<') out += '&lt;';
    else if (c === '>') out += '&gt;';
    else if (c === '&') out += '&amp;';
    else if (cp >= 0x80 && charRefs) out += `&#x${cp.toString(16).toUpperCase()};`;
    else out += c;
  }
  return out;
}

function quoted(s: string): string {
  if (!s.includes('"')) return `"${s}"`;
  return s.includes("'") ? `"${s.replace(/"/g, '&quot;')}"` : `'${s}'`;
}

function dumpAttr(a: XAttr, charRefs: boolean): string {
  return ` ${a.name}="${escapeAttr(a.value, charRefs)}"`;
}

/** xmlNodeDumpOutput for one node at `level`; `format` false inside mixed content. */
function dump(node: XChild | XAttr, level: number, format: boolean, charRefs: boolean): string {
  switch (node.type) {
    case 'attribute': return dumpAttr(node, charRefs);
    case 'text': return escapeText(node.value);
    case 'cdata': return `<![CDATA[${node.value.replace(/]]>/g, ']]]]><![CDATA[>')}]]>`;
    case 'comment': return `<!--${node.value}-->`;
    case 'pi': return `<?${node.target}${node.value ? ` ${node.value}` : ''}?>`;
    case 'element': return dumpElement(node, level, format, charRefs);
  }
}

function dumpElement(el: XElement, level: number, format: boolean, charRefs: boolean): string {
  let out = `<${el.name}`;
  for (const [prefix, uri] of el.nsDecls) out += ` xmlns${prefix ? `:${prefix}` : ''}=${quoted(uri)}`;
  for (const a of el.attrs) out += dumpAttr(a, charRefs);
  if (el.children.length === 0) return `${out}/>`;
  // libxml2 stops indenting inside an element that has text among its children
  const indent = format && !el.children.some((c) => c.type === 'text' || c.type === 'cdata');
  out += indent ? '>\n' : '>';
  for (const c of el.children) {
    if (indent && c.type !== 'text' && c.type !== 'cdata') out += '  '.repeat(level + 1);
    out += dump(c, level + 1, indent, charRefs);
    if (indent) out += '\n';
  }
  if (indent) out += '  '.repeat(level);
  return `${out}</${el.name}>`;
}

/** virXMLNodeToString: a node selected by --xpath, serialized alone. */
export function nodeToString(node: XNode): string {
  if (node.type !== 'document') return dump(node, 0, true, true);
  // xmlDocContentDumpOutput: the declaration, then each top-level node on its own line
  return `<?xml version="1.0" encoding="UTF-8"?>\n${node.children.map((c) => `${dump(c, 0, true, false)}\n`).join('')}`;
}

/** --wrap: copies of the nodes under one <nodes> element, added as xmlAddChild adds them. */
export function wrapNodes(nodes: XNode[]): string {
  const root: XElement = {
    type: 'element', parent: { type: 'document', parent: null, children: [], order: 0 },
    name: 'nodes', local: 'nodes', uri: '', nsDecls: [], attrs: [], children: [], order: 0,
  };
  for (const n of nodes) {
    if (n.type === 'document') throw new UsageError("--wrap of the document node ('/') is not supported; leave out --wrap");
    if (n.type === 'attribute') {
      // an attribute of the same name is replaced, the new one goes last
      root.attrs = root.attrs.filter((a) => a.local !== n.local);
      // copied without a parent, the attribute loses its namespace (xmlCopyPropInternal)
      root.attrs.push({ ...n, parent: root, name: n.local, uri: '' });
      continue;
    }
    const last = root.children[root.children.length - 1];
    if (n.type === 'text' && last?.type === 'text') last.value += n.value; // adjacent text merges
    else if (n.type === 'element') root.children.push({ ...n, parent: root, nsDecls: [...n.nsDecls, ...outOfScopeNamespaces(n)] });
    else root.children.push({ ...n, parent: root });
  }
  return dumpElement(root, 0, true, true);
}

function prefixOf(name: string): string {
  const colon = name.indexOf(':');
  return colon < 0 ? '' : name.slice(0, colon);
}

/**
 * xmlDocCopyNode into a new document: a namespace the copied element or its descendants use,
 * declared outside it, is declared on the copy (in the order of first use).
 */
function outOfScopeNamespaces(top: XElement): Array<[string, string]> {
  const extra: Array<[string, string]> = [];
  const onTop = new Set(top.nsDecls.map(([prefix]) => prefix));
  const walk = (el: XElement, outer: Set<string>): void => {
    const scope = new Set(outer);
    for (const [prefix] of el.nsDecls) scope.add(prefix);
    const use = (prefix: string, uri: string): void => {
      if (uri === '' || prefix === 'xml' || scope.has(prefix) || onTop.has(prefix)) return;
      extra.push([prefix, uri]);
      onTop.add(prefix);
    };
    use(prefixOf(el.name), el.uri);
    for (const a of el.attrs) if (prefixOf(a.name) !== '') use(prefixOf(a.name), a.uri);
    for (const c of el.children) if (c.type === 'element') walk(c, scope);
  };
  walk(top, new Set());
  return extra;
}

/** What pool-dumpxml/vol-dumpxml print for `xml` (without virsh's trailing blank line). */
export function dumpXml(xml: string, xpath: string | undefined, wrap: boolean): string {
  if (xpath === undefined) return xml.endsWith('\n') ? xml : `${xml}\n`;
  let result;
  try {
    result = evaluateXPath(compileXPath(xpath), parseXmlTree(xml));
  } catch (err) {
    if (!(err instanceof XPathError)) throw err;
    throw new UsageError(err.unsupported
      ? `XPath expression '${xpath}' is not supported: ${err.message}`
      : `Invalid XPath expression '${xpath}': ${err.message}`);
  }
  if (!Array.isArray(result)) {
    // virsh's words (virXPathNodeSet), then what is wrong
    throw new UsageError(`internal error: Incorrect xpath '${xpath}'`,
      `the expression gives a ${typeof result}, not a node-set: --xpath selects nodes (e.g. '/pool/name', '//target/path/text()')`);
  }
  if (wrap) return `${wrapNodes(result)}\n`;
  return result.map((n) => `${nodeToString(n)}\n`).join('');
}

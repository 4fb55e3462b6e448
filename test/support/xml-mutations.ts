// Deterministic mutations of a libvirt XML document, for differential tests against libvirt's
// own parser: every leaf element's text and every attribute's value replaced by edge values,
// each dropped, each leaf duplicated, and an unknown element added.

export interface XmlMutation {
  /** What was changed and where (character offset in the original), for failure messages. */
  what: string;
  xml: string;
}

/** Texts that probe numbers, octal modes, ids, paths, names, units and whitespace. */
export const EDGE_TEXTS: readonly string[] = [
  '', ' ', '0', '-1', '4294967295', '4294967296', '18446744073709551616', '0777', '0999', '755',
  'abc', 'rel/path', '/a//b/', '/', '/x/../y', 'x'.repeat(300), 'a b', '&amp;', '\t/x\n', '1e3', '0x10', '1.5',
];

/** Attribute values that probe enums, booleans, units, ports and addresses. */
export const EDGE_ATTRIBUTES: readonly string[] = [
  '', 'bogus', '0', '-1', '65536', 'yes', 'no', 'on', 'off', 'KiB', 'k', 'B', 'E', 'Z', 'abc/def', '1.2.3.4',
];

function shown(value: string): string {
  return JSON.stringify(value.length > 20 ? `${value.slice(0, 8)}...(${value.length})` : value);
}

function splice(xml: string, at: number, length: number, insert: string): string {
  return xml.slice(0, at) + insert + xml.slice(at + length);
}

export function xmlMutations(xml: string, rootElement: string): XmlMutation[] {
  const out: XmlMutation[] = [];
  const leaf = /<([A-Za-z_][\w:.-]*)(\s[^>]*)?>([^<]*)<\/\1>/g;
  for (let m = leaf.exec(xml); m; m = leaf.exec(xml)) {
    const [whole, tag, attrs = ''] = m;
    const at = m.index;
    const open = `<${tag}${attrs}>`;
    for (const text of EDGE_TEXTS) {
      out.push({ what: `<${tag}>@${at} = ${shown(text)}`, xml: splice(xml, at, whole.length, `${open}${text}</${tag}>`) });
    }
    out.push({ what: `<${tag}>@${at} dropped`, xml: splice(xml, at, whole.length, '') });
    out.push({ what: `<${tag}>@${at} twice`, xml: splice(xml, at, whole.length, `${whole}${open}zz</${tag}>`) });
  }
  const attribute = /\s([A-Za-z_][\w:.-]*)=(['"])([^'"]*)\2/g;
  const rootTagEnd = xml.indexOf('>', xml.indexOf(`<${rootElement}`));
  for (let m = attribute.exec(xml); m; m = attribute.exec(xml)) {
    const [whole, name] = m;
    const at = m.index;
    // the root's type picks the parser; the fixtures' out-of-scope types are tested elsewhere
    if (name === 'type' && at < rootTagEnd) continue;
    for (const value of EDGE_ATTRIBUTES) {
      out.push({ what: `@${name}@${at} = ${shown(value)}`, xml: splice(xml, at, whole.length, ` ${name}='${value}'`) });
    }
    out.push({ what: `@${name}@${at} dropped`, xml: splice(xml, at, whole.length, '') });
  }
  const empty = /<([A-Za-z_][\w:.-]*)(\s[^>]*)?\/>/g;
  for (let m = empty.exec(xml); m; m = empty.exec(xml)) {
    out.push({ what: `<${m[1]}/>@${m.index} dropped`, xml: splice(xml, m.index, m[0].length, '') });
  }
  const container = /<([A-Za-z_][\w:.-]*)(\s[^>]*)?>\s*</g;
  for (let m = container.exec(xml); m; m = container.exec(xml)) {
    const tag = m[1]!;
    if (tag === rootElement) continue;
    const close = xml.indexOf(`</${tag}>`, m.index);
    if (close < 0) continue;
    out.push({ what: `<${tag}>…</${tag}>@${m.index} dropped`, xml: splice(xml, m.index, close + tag.length + 3 - m.index, '') });
  }
  out.push({ what: 'unknown element added', xml: xml.replace(`</${rootElement}>`, `<bogus>1</bogus></${rootElement}>`) });
  return out;
}

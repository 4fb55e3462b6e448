// XPath 1.0 over cli/xml-tree.ts, for pool-dumpxml/vol-dumpxml --xpath (virsh evaluates it
// with libxml2). Every axis but namespace::, every node test, predicates, operators, and the
// core function library except id() and lang(). Like virsh, no namespace prefix is registered
// (only xml:), and there are no variables. What is left out is an XPathError naming it, never
// an answer that differs from libxml2's.
import { stringValue, type XAttr, type XChild, type XDocument, type XElement, type XNode } from './xml-tree.js';

export class XPathError extends Error {
  /** `unsupported`: valid XPath 1.0 that this evaluator leaves out; otherwise an invalid expression */
  constructor(message: string, readonly unsupported = false) {
    super(message);
    this.name = 'XPathError';
  }
}

type Value = XNode[] | string | number | boolean;

type Axis =
  | 'child' | 'descendant' | 'descendant-or-self' | 'parent' | 'ancestor' | 'ancestor-or-self'
  | 'following-sibling' | 'preceding-sibling' | 'following' | 'preceding' | 'attribute' | 'self';
const AXES = new Set<string>([
  'child', 'descendant', 'descendant-or-self', 'parent', 'ancestor', 'ancestor-or-self',
  'following-sibling', 'preceding-sibling', 'following', 'preceding', 'attribute', 'self', 'namespace',
]);
const NODE_TYPES = new Set(['node', 'text', 'comment', 'processing-instruction']);
const XML_NS = 'http://www.w3.org/XML/1998/namespace';

type NodeTest =
  | { k: 'name'; local: string; uri: string }
  | { k: 'any' }
  | { k: 'type'; type: 'node' | 'text' | 'comment' | 'processing-instruction'; target?: string };

interface Step {
  axis: Axis;
  test: NodeTest;
  preds: Ast[];
}

type Ast =
  | { t: 'or' | 'and'; a: Ast; b: Ast }
  | { t: 'cmp'; op: '=' | '!=' | '<' | '<=' | '>' | '>='; a: Ast; b: Ast }
  | { t: 'arith'; op: '+' | '-' | '*' | 'div' | 'mod'; a: Ast; b: Ast }
  | { t: 'neg'; a: Ast }
  | { t: 'union'; a: Ast; b: Ast }
  | { t: 'path'; absolute: boolean; start?: Ast; steps: Step[] }
  | { t: 'filter'; primary: Ast; preds: Ast[] }
  | { t: 'literal'; v: string }
  | { t: 'number'; v: number }
  | { t: 'call'; name: string; args: Ast[] };

// ---- tokens ----

interface Token {
  kind: 'op' | 'name' | 'literal' | 'number';
  value: string;
  pos: number;
}

const OPERATORS = new Set(['and', 'or', 'mod', 'div', '/', '//', '|', '+', '-', '=', '!=', '<', '<=', '>', '>=', '*']);
const NCNAME = /[A-Za-z_\u00C0-\uFFFF][\w.\-\u00B7\u00C0-\uFFFF]*/y;

function tokenize(src: string): Token[] {
  const toks: Token[] = [];
  // XPath 1.0 §3.7: after these, '*' is a name test and a name is not an operator
  const operandNext = (): boolean => {
    const p = toks[toks.length - 1];
    return !p || (p.kind === 'op' && (['@', '::', '(', '[', ','].includes(p.value) || OPERATORS.has(p.value)));
  };
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const pos = i;
    const two = src.slice(i, i + 2);
    if (['//', '::', '..', '!=', '<=', '>='].includes(two)) {
      toks.push({ kind: 'op', value: two, pos });
      i += 2;
    } else if (c === '.' && /[0-9]/.test(src[i + 1] ?? '') || /[0-9]/.test(c)) {
      const m = /\d*\.?\d*/y;
      m.lastIndex = i;
      const text = m.exec(src)![0];
      toks.push({ kind: 'number', value: text, pos });
      i += text.length;
    } else if (c === '"' || c === "'") {
      const end = src.indexOf(c, i + 1);
      if (end < 0) throw new XPathError(`unfinished literal at offset ${pos}`);
      toks.push({ kind: 'literal', value: src.slice(i + 1, end), pos });
      i = end + 1;
    } else if (c === '$') {
      throw new XPathError(`variables are not supported (offset ${pos})`, true);
    } else if (c === '*') {
      toks.push({ kind: operandNext() ? 'name' : 'op', value: '*', pos });
      i++;
    } else if ('()[]@,/|+-=<>.'.includes(c)) {
      toks.push({ kind: 'op', value: c, pos });
      i++;
    } else {
      NCNAME.lastIndex = i;
      const m = NCNAME.exec(src);
      if (!m) throw new XPathError(`unexpected character '${c}' at offset ${pos}`);
      let name = m[0];
      i = NCNAME.lastIndex;
      if (!operandNext() && ['and', 'or', 'mod', 'div'].includes(name)) {
        toks.push({ kind: 'op', value: name, pos });
        continue;
      }
      // a QName or prefix:*, but not an axis name's '::'
      if (src[i] === ':' && src[i + 1] !== ':') {
        if (src[i + 1] === '*') {
          name += ':*';
          i += 2;
        } else {
          NCNAME.lastIndex = i + 1;
          const local = NCNAME.exec(src);
          if (!local) throw new XPathError(`bad name at offset ${pos}`);
          name += `:${local[0]}`;
          i = NCNAME.lastIndex;
        }
      }
      toks.push({ kind: 'name', value: name, pos });
    }
  }
  return toks;
}

// ---- parser (the grammar of XPath 1.0 §3) ----

class Parser {
  private i = 0;
  constructor(private readonly src: string, private readonly toks: Token[]) {}

  private peek(k = 0): Token | undefined {
    return this.toks[this.i + k];
  }

  private isOp(value: string, k = 0): boolean {
    const t = this.peek(k);
    return t?.kind === 'op' && t.value === value;
  }

  private fail(what: string): never {
    const t = this.peek();
    throw new XPathError(t ? `${what} at offset ${t.pos} ('${this.src.slice(t.pos)}')` : `${what} at the end of the expression`);
  }

  private take(value: string): void {
    if (!this.isOp(value)) this.fail(`expected '${value}'`);
    this.i++;
  }

  parse(): Ast {
    if (this.toks.length === 0) throw new XPathError('empty expression');
    const e = this.or();
    if (this.i < this.toks.length) this.fail('unexpected token');
    return e;
  }

  private binary<T extends string>(next: () => Ast, ops: readonly T[], make: (op: T, a: Ast, b: Ast) => Ast): Ast {
    let a = next();
    for (;;) {
      const t = this.peek();
      const op = t?.kind === 'op' ? ops.find((o) => o === t.value) : undefined;
      if (op === undefined) return a;
      this.i++;
      a = make(op, a, next());
    }
  }

  private or(): Ast {
    return this.binary(() => this.and(), ['or'] as const, (_op, a, b) => ({ t: 'or', a, b }));
  }

  private and(): Ast {
    return this.binary(() => this.equality(), ['and'] as const, (_op, a, b) => ({ t: 'and', a, b }));
  }

  private equality(): Ast {
    return this.binary(() => this.relational(), ['=', '!='] as const, (op, a, b) => ({ t: 'cmp', op, a, b }));
  }

  private relational(): Ast {
    return this.binary(() => this.additive(), ['<', '<=', '>', '>='] as const, (op, a, b) => ({ t: 'cmp', op, a, b }));
  }

  private additive(): Ast {
    return this.binary(() => this.multiplicative(), ['+', '-'] as const, (op, a, b) => ({ t: 'arith', op, a, b }));
  }

  private multiplicative(): Ast {
    return this.binary(() => this.unary(), ['*', 'div', 'mod'] as const, (op, a, b) => ({ t: 'arith', op, a, b }));
  }

  private unary(): Ast {
    if (this.isOp('-')) {
      this.i++;
      return { t: 'neg', a: this.unary() };
    }
    return this.binary(() => this.pathExpr(), ['|'] as const, (_op, a, b) => ({ t: 'union', a, b }));
  }

  private pathExpr(): Ast {
    const t = this.peek();
    if (!t) this.fail('expected an expression');
    const isPrimary = t.kind === 'literal' || t.kind === 'number' || (t.kind === 'op' && t.value === '(') ||
      (t.kind === 'name' && this.isOp('(', 1) && !NODE_TYPES.has(t.value));
    if (!isPrimary) return this.locationPath();
    const primary = this.primary();
    const preds = this.predicates();
    const filter: Ast = preds.length > 0 ? { t: 'filter', primary, preds } : primary;
    if (!this.isOp('/') && !this.isOp('//')) return filter;
    return { t: 'path', absolute: false, start: filter, steps: this.relativePath(true) };
  }

  private primary(): Ast {
    const t = this.peek()!;
    this.i++;
    if (t.kind === 'literal') return { t: 'literal', v: t.value };
    if (t.kind === 'number') return { t: 'number', v: Number(t.value) };
    if (t.kind === 'op') {
      const e = this.or();
      this.take(')');
      return e;
    }
    this.take('(');
    const args: Ast[] = [];
    if (!this.isOp(')')) {
      args.push(this.or());
      while (this.isOp(',')) {
        this.i++;
        args.push(this.or());
      }
    }
    this.take(')');
    checkCall(t.value, args.length);
    return { t: 'call', name: t.value, args };
  }

  private predicates(): Ast[] {
    const preds: Ast[] = [];
    while (this.isOp('[')) {
      this.i++;
      preds.push(this.or());
      this.take(']');
    }
    return preds;
  }

  private locationPath(): Ast {
    if (this.isOp('/')) {
      this.i++;
      // '/' alone, or followed by a step
      if (!this.startsStep()) return { t: 'path', absolute: true, steps: [] };
      return { t: 'path', absolute: true, steps: this.relativePath(false) };
    }
    if (this.isOp('//')) return { t: 'path', absolute: true, steps: this.relativePath(true) };
    return { t: 'path', absolute: false, steps: this.relativePath(false) };
  }

  private startsStep(): boolean {
    const t = this.peek();
    return !!t && (t.kind === 'name' || (t.kind === 'op' && ['.', '..', '@'].includes(t.value)));
  }

  /** Steps separated by '/' or '//'; `leadingSlash`: a '/' or '//' comes first. */
  private relativePath(leadingSlash: boolean): Step[] {
    const steps: Step[] = [];
    let needSlash = leadingSlash;
    for (;;) {
      if (needSlash) {
        if (this.isOp('//')) steps.push({ axis: 'descendant-or-self', test: { k: 'type', type: 'node' }, preds: [] });
        else if (!this.isOp('/')) return steps;
        this.i++;
      }
      steps.push(this.step());
      needSlash = true;
    }
  }

  private step(): Step {
    if (this.isOp('.')) {
      this.i++;
      return { axis: 'self', test: { k: 'type', type: 'node' }, preds: [] };
    }
    if (this.isOp('..')) {
      this.i++;
      return { axis: 'parent', test: { k: 'type', type: 'node' }, preds: [] };
    }
    let axis: Axis = 'child';
    if (this.isOp('@')) {
      this.i++;
      axis = 'attribute';
    } else if (this.peek()?.kind === 'name' && this.isOp('::', 1)) {
      const name = this.peek()!.value;
      if (!AXES.has(name)) this.fail(`unknown axis '${name}'`);
      if (name === 'namespace') throw new XPathError('the namespace axis is not supported', true);
      axis = name as Axis;
      this.i += 2;
    }
    const t = this.peek();
    if (t?.kind !== 'name') this.fail('expected a node test');
    this.i++;
    let test: NodeTest;
    if (NODE_TYPES.has(t.value) && this.isOp('(')) {
      this.i++;
      let target: string | undefined;
      if (t.value === 'processing-instruction' && this.peek()?.kind === 'literal') target = this.toks[this.i++]!.value;
      this.take(')');
      test = { k: 'type', type: t.value as 'node', ...(target !== undefined ? { target } : {}) };
    } else if (this.isOp('(')) {
      this.fail(`a function call cannot be a step ('${t.value}(')`);
    } else if (t.value === '*') {
      test = { k: 'any' };
    } else {
      test = nameTest(t.value);
    }
    return { axis, test, preds: this.predicates() };
  }
}

function nameTest(qname: string): NodeTest {
  const colon = qname.indexOf(':');
  if (colon < 0) return { k: 'name', local: qname, uri: '' };
  const prefix = qname.slice(0, colon);
  // virsh registers no namespace prefix for --xpath: libxml2 knows only xml:
  if (prefix !== 'xml') throw new XPathError(`Undefined namespace prefix '${prefix}' in '${qname}'`);
  const local = qname.slice(colon + 1);
  if (local === '*') throw new XPathError(`'${qname}' is not supported`, true);
  return { k: 'name', local, uri: XML_NS };
}

// name -> [min, max] arguments
const FUNCTIONS: Record<string, [number, number]> = {
  last: [0, 0], position: [0, 0], count: [1, 1], 'local-name': [0, 1], 'namespace-uri': [0, 1], name: [0, 1],
  string: [0, 1], concat: [2, Infinity], 'starts-with': [2, 2], contains: [2, 2], 'substring-before': [2, 2],
  'substring-after': [2, 2], substring: [2, 3], 'string-length': [0, 1], 'normalize-space': [0, 1],
  translate: [3, 3], boolean: [1, 1], not: [1, 1], true: [0, 0], false: [0, 0], number: [0, 1], sum: [1, 1],
  floor: [1, 1], ceiling: [1, 1], round: [1, 1],
};

function checkCall(name: string, n: number): void {
  if (name === 'id' || name === 'lang') throw new XPathError(`the function ${name}() is not supported`, true);
  const arity = FUNCTIONS[name];
  if (!arity) throw new XPathError(`unknown function ${name}()`);
  if (n < arity[0] || n > arity[1]) throw new XPathError(`wrong number of arguments for ${name}(): ${n}`);
}

// ---- evaluation ----

interface Context {
  node: XNode;
  pos: number;
  size: number;
  root: XDocument;
}

function isNodeSet(v: Value): v is XNode[] {
  return Array.isArray(v);
}

function docOrder(nodes: XNode[]): XNode[] {
  return [...new Set(nodes)].sort((a, b) => a.order - b.order);
}

function children(n: XNode): XChild[] {
  return n.type === 'element' || n.type === 'document' ? n.children : [];
}

function descendants(n: XNode, out: XNode[]): XNode[] {
  for (const c of children(n)) {
    out.push(c);
    descendants(c, out);
  }
  return out;
}

function ancestors(n: XNode): XNode[] {
  const out: XNode[] = [];
  for (let p = n.parent; p; p = p.parent) out.push(p);
  return out;
}

function axisNodes(n: XNode, axis: Axis, root: XDocument): XNode[] {
  switch (axis) {
    case 'child': return children(n);
    case 'descendant': return descendants(n, []);
    case 'descendant-or-self': return descendants(n, [n]);
    case 'parent': return n.parent ? [n.parent] : [];
    case 'ancestor': return ancestors(n);
    case 'ancestor-or-self': return [n, ...ancestors(n)];
    case 'self': return [n];
    case 'attribute': return n.type === 'element' ? n.attrs : [];
    case 'following-sibling':
    case 'preceding-sibling': {
      if (n.type === 'attribute' || n.type === 'document') return [];
      const sibs = n.parent.children;
      const at = sibs.indexOf(n);
      return axis === 'following-sibling' ? sibs.slice(at + 1) : sibs.slice(0, at).reverse();
    }
    case 'following':
    case 'preceding': {
      const all = descendants(root, []);
      if (axis === 'following') {
        const inside = new Set(n.type === 'attribute' ? [] : descendants(n, []));
        return all.filter((m) => m.order > n.order && !inside.has(m));
      }
      const up = new Set(ancestors(n));
      return all.filter((m) => m.order < n.order && !up.has(m)).reverse();
    }
  }
}

function matches(n: XNode, test: NodeTest, axis: Axis): boolean {
  const principal = axis === 'attribute' ? 'attribute' : 'element';
  switch (test.k) {
    case 'any': return n.type === principal;
    case 'name': return n.type === principal && (n as XElement | XAttr).local === test.local && (n as XElement | XAttr).uri === test.uri;
    case 'type':
      if (test.type === 'node') return true;
      if (test.type === 'text') return n.type === 'text' || n.type === 'cdata';
      if (test.type === 'comment') return n.type === 'comment';
      return n.type === 'pi' && (test.target === undefined || n.target === test.target);
  }
}

/**
 * Nodes an evaluation may visit. Predicates are evaluated per node, so nested ones over
 * `//node()` cost (nodes)^depth: past this budget the expression fails (about a second of
 * work) instead of holding the terminal, where Ctrl-C cannot reach a busy event loop.
 */
export const XPATH_WORK_BUDGET = 20_000_000;
let workLeft = XPATH_WORK_BUDGET;

function spend(n: number): void {
  workLeft -= n;
  if (workLeft < 0) throw new XPathError(`the expression needs too much work (over ${XPATH_WORK_BUDGET} node visits); simplify it`);
}

function filterByPredicates(nodes: XNode[], preds: Ast[], root: XDocument): XNode[] {
  let cur = nodes;
  for (const pred of preds) {
    const size = cur.length;
    spend(size);
    cur = cur.filter((node, i) => {
      const v = evaluate(pred, { node, pos: i + 1, size, root });
      return typeof v === 'number' ? v === i + 1 : toBool(v);
    });
  }
  return cur;
}

function numToStr(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return 'Infinity';
  if (n === -Infinity) return '-Infinity';
  // libxml2's xmlXPathFormatNumber: integers of an int as %d, others between 1e-5 and 1e9 as %f
  // with 15 significant digits, the rest as %e; trailing zeros of the fraction dropped
  if (Number.isInteger(n) && Math.abs(n) < 2 ** 31) return String(n === 0 ? 0 : n);
  const abs = Math.abs(n);
  const trim = (s: string): string => s.replace(/\.?0+$/, '');
  if (abs > 1e-5 && abs < 1e9) {
    const intPlace = Math.trunc(Math.log10(abs));
    return trim(n.toFixed(intPlace > 0 ? 15 - intPlace - 1 : 15 - intPlace));
  }
  const [mantissa, exp] = n.toExponential(14).split('e') as [string, string];
  const e = Number(exp);
  return `${trim(mantissa)}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
}

function toStr(v: Value): string {
  if (isNodeSet(v)) return v.length > 0 ? stringValue(docOrder(v)[0]!) : '';
  if (typeof v === 'number') return numToStr(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return v;
}

function strToNum(s: string): number {
  return /^[ \t\r\n]*-?(\d+(\.\d*)?|\.\d+)[ \t\r\n]*$/.test(s) ? Number(s.trim()) : NaN;
}

function toNum(v: Value): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  return strToNum(toStr(v));
}

function toBool(v: Value): boolean {
  if (isNodeSet(v)) return v.length > 0;
  if (typeof v === 'number') return v !== 0 && !Number.isNaN(v);
  if (typeof v === 'string') return v.length > 0;
  return v;
}

function atomCompare(op: string, a: string | number | boolean, b: string | number | boolean): boolean {
  if (op === '=' || op === '!=') {
    let eq: boolean;
    if (typeof a === 'boolean' || typeof b === 'boolean') eq = toBool(a) === toBool(b);
    else if (typeof a === 'number' || typeof b === 'number') eq = toNum(a) === toNum(b);
    else eq = a === b;
    return op === '=' ? eq : !eq;
  }
  const x = toNum(a);
  const y = toNum(b);
  if (op === '<') return x < y;
  if (op === '<=') return x <= y;
  if (op === '>') return x > y;
  return x >= y;
}

function compare(op: string, a: Value, b: Value): boolean {
  if (isNodeSet(a) && isNodeSet(b)) {
    const bs = b.map(stringValue);
    return a.some((x) => bs.some((y) => atomCompare(op, stringValue(x), y)));
  }
  if (isNodeSet(a)) {
    const other = b as string | number | boolean;
    if (typeof other === 'boolean') return atomCompare(op, toBool(a), other);
    return a.some((x) => atomCompare(op, typeof other === 'number' ? strToNum(stringValue(x)) : stringValue(x), other));
  }
  if (isNodeSet(b)) {
    const other = a;
    if (typeof other === 'boolean') return atomCompare(op, other, toBool(b));
    return b.some((y) => atomCompare(op, other, typeof other === 'number' ? strToNum(stringValue(y)) : stringValue(y)));
  }
  return atomCompare(op, a, b);
}

function nodeSet(v: Value, what: string): XNode[] {
  if (!isNodeSet(v)) throw new XPathError(`${what} needs a node-set, not a ${typeof v === 'boolean' ? 'boolean' : typeof v}`);
  return v;
}

function qname(n: XNode): string {
  if (n.type === 'element' || n.type === 'attribute') return n.name;
  if (n.type === 'pi') return n.target;
  return '';
}

function call(name: string, args: Ast[], ctx: Context): Value {
  const arg = (k: number): Value => evaluate(args[k]!, ctx);
  const strArg = (k: number): string => (args.length > k ? toStr(arg(k)) : stringValue(ctx.node));
  const firstNode = (): XNode | undefined => (args.length > 0 ? docOrder(nodeSet(arg(0), `${name}()`))[0] : ctx.node);
  switch (name) {
    case 'last':
    case 'position':
      if (ctx.size === 0) throw new XPathError(`${name}() outside a predicate has no context position`);
      return name === 'last' ? ctx.size : ctx.pos;
    case 'count': return nodeSet(arg(0), 'count()').length;
    case 'local-name': {
      const n = firstNode();
      return n?.type === 'element' || n?.type === 'attribute' ? n.local : n ? qname(n) : '';
    }
    case 'namespace-uri': {
      const n = firstNode();
      return n?.type === 'element' || n?.type === 'attribute' ? n.uri : '';
    }
    case 'name': {
      const n = firstNode();
      return n ? qname(n) : '';
    }
    case 'string': return strArg(0);
    case 'concat': return args.map((_a, k) => toStr(arg(k))).join('');
    case 'starts-with': return toStr(arg(0)).startsWith(toStr(arg(1)));
    case 'contains': return toStr(arg(0)).includes(toStr(arg(1)));
    case 'substring-before': {
      const s = toStr(arg(0));
      const at = s.indexOf(toStr(arg(1)));
      return at < 0 ? '' : s.slice(0, at);
    }
    case 'substring-after': {
      const s = toStr(arg(0));
      const t = toStr(arg(1));
      const at = s.indexOf(t);
      return at < 0 ? '' : s.slice(at + t.length);
    }
    case 'substring': {
      // positions count characters (code points) from 1, with XPath's rounding
      const chars = [...toStr(arg(0))];
      const start = xpathRound(toNum(arg(1)));
      const end = args.length > 2 ? start + xpathRound(toNum(arg(2))) : Infinity;
      return chars.filter((_c, k) => k + 1 >= start && k + 1 < end).join('');
    }
    case 'string-length': return [...strArg(0)].length;
    case 'normalize-space': return strArg(0).replace(/[ \t\r\n]+/g, ' ').replace(/^ | $/g, '');
    case 'translate': {
      const from = [...toStr(arg(1))];
      const to = [...toStr(arg(2))];
      return [...toStr(arg(0))].map((c) => {
        const k = from.indexOf(c);
        return k < 0 ? c : (to[k] ?? '');
      }).join('');
    }
    case 'boolean': return toBool(arg(0));
    case 'not': return !toBool(arg(0));
    case 'true': return true;
    case 'false': return false;
    case 'number': return args.length > 0 ? toNum(arg(0)) : strToNum(stringValue(ctx.node));
    case 'sum': return nodeSet(arg(0), 'sum()').reduce((s, n) => s + strToNum(stringValue(n)), 0);
    case 'floor': return Math.floor(toNum(arg(0)));
    case 'ceiling': return Math.ceil(toNum(arg(0)));
    case 'round': return xpathRound(toNum(arg(0)));
    default: throw new XPathError(`unknown function ${name}()`);
  }
}

function xpathRound(n: number): number {
  if (!Number.isFinite(n)) return n;
  return Math.floor(n + 0.5);
}

function evaluate(ast: Ast, ctx: Context): Value {
  switch (ast.t) {
    case 'or': return toBool(evaluate(ast.a, ctx)) || toBool(evaluate(ast.b, ctx));
    case 'and': return toBool(evaluate(ast.a, ctx)) && toBool(evaluate(ast.b, ctx));
    case 'cmp': return compare(ast.op, evaluate(ast.a, ctx), evaluate(ast.b, ctx));
    case 'arith': {
      const a = toNum(evaluate(ast.a, ctx));
      const b = toNum(evaluate(ast.b, ctx));
      if (ast.op === '+') return a + b;
      if (ast.op === '-') return a - b;
      if (ast.op === '*') return a * b;
      if (ast.op === 'div') return a / b;
      return a % b;
    }
    case 'neg': return -toNum(evaluate(ast.a, ctx));
    case 'union':
      return docOrder([...nodeSet(evaluate(ast.a, ctx), "'|'"), ...nodeSet(evaluate(ast.b, ctx), "'|'")]);
    case 'literal': return ast.v;
    case 'number': return ast.v;
    case 'call': return call(ast.name, ast.args, ctx);
    case 'filter':
      return filterByPredicates(docOrder(nodeSet(evaluate(ast.primary, ctx), 'a predicate')), ast.preds, ctx.root);
    case 'path': {
      let nodes: XNode[] = ast.absolute ? [ctx.root] : ast.start ? nodeSet(evaluate(ast.start, ctx), "'/'") : [ctx.node];
      for (const step of ast.steps) {
        const next: XNode[] = [];
        for (const n of nodes) {
          const along = axisNodes(n, step.axis, ctx.root);
          spend(along.length);
          const candidates = along.filter((m) => matches(m, step.test, step.axis));
          // axisNodes lists reverse axes nearest first, so proximity positions are right
          next.push(...filterByPredicates(candidates, step.preds, ctx.root));
        }
        nodes = docOrder(next);
      }
      return nodes;
    }
  }
}

/** A parsed expression. */
export type CompiledXPath = Ast;

/** Parses `expr`; throws XPathError for a syntax error or anything not supported. */
export function compileXPath(expr: string): CompiledXPath {
  try {
    return new Parser(expr, tokenize(expr)).parse();
  } catch (err) {
    if (err instanceof RangeError) throw new XPathError('the expression is nested too deeply');
    throw err;
  }
}

/**
 * The value of `expr` in `doc`: a node-set in document order, or a string, number or boolean.
 * As in virsh (virXMLParseStringCtxt), the context node is the root element, and there is no
 * context position outside a predicate.
 */
export function evaluateXPath(expr: CompiledXPath, doc: XDocument): XNode[] | string | number | boolean {
  const rootElement = doc.children.find((c) => c.type === 'element') ?? doc;
  workLeft = XPATH_WORK_BUDGET;
  try {
    return evaluate(expr, { node: rootElement, pos: 0, size: 0, root: doc });
  } catch (err) {
    if (err instanceof RangeError) throw new XPathError('the expression is nested too deeply');
    throw err;
  }
}

// Shared pieces of the pool and volume codecs: error locations, escaping, permissions,
// UUIDs, path sanitising. Internal to libs/xml.
import { randomUUID } from 'node:crypto';
import { InvalidArgumentError } from '../errors/errors.js';
import { checkAbsolutePath, checkObjectName } from '../api/names.js';
import { Permissions, Tristate } from '../proto/cistern/v1/storage.js';
import { atLine, attr, child, shown, type XmlElement } from './safe-parse.js';
import { parseSize, withoutLeadingBlanks } from './units.js';

/** Where a logical field (e.g. 'source.format') came from in an XML document. */
export interface Origin {
  readonly xml: string;
  readonly line: number | undefined;
}

/**
 * Names fields in errors. Validation code speaks in message field paths ('source.devices[0].path');
 * when the value came from XML the error names the element/attribute and its line instead.
 */
export class Ctx {
  private readonly origins = new Map<string, Origin>();
  constructor(private readonly prefix = '') {}

  /** Records that `key` was read from `xml` (element path or element/@attribute) at `line`. */
  at(key: string, xml: string, line: number | undefined): void {
    this.origins.set(key, { xml, line });
  }

  /** Field name and line for a key (falls back to the closest recorded parent). */
  locate(key: string): { field: string; line: number | undefined } {
    let k = key;
    for (;;) {
      const o = this.origins.get(k);
      if (o) return { field: o.xml, line: o.line };
      const cut = Math.max(k.lastIndexOf('.'), k.lastIndexOf('['));
      if (cut <= 0) break;
      k = k.slice(0, cut);
    }
    return { field: this.prefix + key, line: undefined };
  }

  fail(key: string, message: string): never {
    const { field, line } = this.locate(key);
    throw new InvalidArgumentError(field, `${message}${atLine(line)}`, line === undefined ? {} : { line: String(line) });
  }

  /** Runs a check from libs/api (which throws with its own field name) and re-labels its error. */
  wrap<T>(key: string, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (e instanceof InvalidArgumentError) {
        const msg = e.field && e.message.startsWith(`${e.field}: `) ? e.message.slice(e.field.length + 2) : e.message;
        this.fail(key, msg);
      }
      throw e;
    }
  }
}

// ---------------------------------------------------------------- output

/** Escapes text and attribute values as libvirt's virBufferEscapeString does. */
export function esc(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => (c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '&' ? '&amp;' : c === "'" ? '&apos;' : '&quot;'));
}

/** A growable document with libvirt's two-space indentation. */
export class Out {
  private readonly parts: string[] = [];
  private pad = '';
  line(s: string): this {
    this.parts.push(this.pad, s, '\n');
    return this;
  }
  open(s: string): this {
    this.line(s);
    this.pad += '  ';
    return this;
  }
  close(s: string): this {
    this.pad = this.pad.slice(2);
    return this.line(s);
  }
  indent(n: number): this {
    this.pad = n > 0 ? this.pad + ' '.repeat(n) : this.pad.slice(-n);
    return this;
  }
  toString(): string {
    return this.parts.join('');
  }
}

export function tristateToString(t: Tristate): string {
  return t === Tristate.TRISTATE_YES ? 'yes' : 'no';
}

// ---------------------------------------------------------------- input checks

const CONTROL = /[\x00-\x1f\x7f]/;

/** A free-form string value: no control characters, at most `max` characters. */
export function checkText(ctx: Ctx, key: string, value: string, what: string, max = 4096): string {
  if (CONTROL.test(value)) ctx.fail(key, `${what} '${shown(value)}' contains a control character`);
  if (value.length > max) ctx.fail(key, `${what} is ${value.length} characters long; at most ${max} allowed`);
  return value;
}

/** Same sanitising as libvirt's virFileSanitizePath: '///a//b/' -> '/a/b', a leading '//' kept. */
export function sanitizePath(path: string): string {
  let p = path;
  if (p.startsWith('///')) p = '/' + p.replace(/^\/+/, '');
  const lead = p.startsWith('//') ? '/' : '';
  p = lead + p.slice(lead.length).replace(/\/{2,}/g, '/');
  if (p.length > 1 && p.endsWith('/') && p !== '//') p = p.slice(0, -1);
  return p;
}

/** An absolute local path (pool target, device, volume path): sanitised, normalised, no '..'. */
export function checkPath(ctx: Ctx, key: string, value: string): string {
  const p = sanitizePath(value);
  return ctx.wrap(key, () => checkAbsolutePath(p, key));
}

export function checkName(ctx: Ctx, key: string, value: string, what: string): string {
  ctx.wrap(key, () => checkObjectName(value, key, what));
  return value;
}

const UUID_HEX = /^[0-9a-fA-F]$/;

/** Parses a UUID as libvirt does (32 hex digits, dashes allowed between bytes) into canonical form. */
export function parseUuid(ctx: Ctx, key: string, value: string, what = 'uuid'): string {
  const s = value.trim();
  let hex = '';
  let i = 0;
  while (i < s.length && hex.length < 32) {
    if (s[i] === '-') {
      i++;
      continue;
    }
    if (!UUID_HEX.test(s[i]!) || i + 1 >= s.length || !UUID_HEX.test(s[i + 1]!)) break;
    hex += s[i]! + s[i + 1]!;
    i += 2;
  }
  if (hex.length !== 32 || i !== s.length) {
    ctx.fail(key, `malformed ${what} '${shown(value)}'; expected 32 hexadecimal digits such as 70a7eb15-6c34-ee9c-bf57-69e8e5ff3fb2`);
  }
  const h = hex.toLowerCase();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function newUuid(): string {
  return randomUUID();
}

// ---------------------------------------------------------------- XML readers

/** XPath string(./name): the element's text, undefined when absent or empty (as libvirt's virXPathString). */
export function textOf(el: XmlElement | undefined): string | undefined {
  if (!el) return undefined;
  return el.text === '' ? undefined : el.text;
}

/** Text of a named child; records its origin under `key`. */
export function childText(ctx: Ctx, el: XmlElement | undefined, name: string, key: string): string | undefined {
  if (!el) return undefined;
  const c = child(el, name);
  if (!c) return undefined;
  ctx.at(key, c.path, c.line);
  return textOf(c);
}

/** An attribute; records its origin under `key`. */
export function attrOf(ctx: Ctx, el: XmlElement | undefined, name: string, key: string): string | undefined {
  if (!el) return undefined;
  const v = attr(el, name);
  if (v !== undefined) ctx.at(key, `${el.path}/@${name}`, el.line);
  return v;
}

/** yes|no attribute. */
export function tristateAttr(ctx: Ctx, el: XmlElement | undefined, name: string, key: string): Tristate {
  const v = attrOf(ctx, el, name, key);
  if (v === undefined) return Tristate.TRISTATE_ABSENT;
  if (v === 'yes') return Tristate.TRISTATE_YES;
  if (v === 'no') return Tristate.TRISTATE_NO;
  return ctx.fail(key, `invalid value '${shown(v)}'; allowed: yes, no`);
}

/** A scaled size element (<capacity unit='G'>5</capacity>) in bytes. */
export function sizeElement(ctx: Ctx, el: XmlElement, key: string): bigint {
  ctx.at(key, el.path, el.line);
  const unit = attr(el, 'unit');
  try {
    return parseSize(el.text, unit, key);
  } catch (e) {
    if (e instanceof InvalidArgumentError) {
      const msg = e.message.startsWith(`${key}: `) ? e.message.slice(key.length + 2) : e.message;
      ctx.fail(key, msg);
    }
    throw e;
  }
}

// ---------------------------------------------------------------- permissions

const UID_UNSET = 4294967295n;

/** <permissions> as libvirt's virStorageDefParsePerms reads it; undefined when nothing is set. */
export function readPermissions(ctx: Ctx, el: XmlElement | undefined, key: string): Permissions | undefined {
  if (!el) return undefined;
  ctx.at(key, el.path, el.line);
  const perms: Permissions = { mode: undefined, owner: undefined, group: undefined, label: '' };
  const mode = childText(ctx, el, 'mode', `${key}.mode`);
  if (mode !== undefined) {
    const m = withoutLeadingBlanks(mode);
    if (!/^[0-7]{1,12}$/.test(m) || parseInt(m, 8) > 0o777) {
      ctx.fail(`${key}.mode`, `malformed octal mode '${shown(mode)}'; allowed: 0 to 0777`);
    }
    perms.mode = parseInt(m, 8);
  }
  for (const which of ['owner', 'group'] as const) {
    const c = child(el, which);
    if (!c) continue;
    ctx.at(`${key}.${which}`, c.path, c.line);
    const t = withoutLeadingBlanks(c.text);
    if (!/^-?[0-9]{1,20}$/.test(t)) ctx.fail(`${key}.${which}`, `malformed ${which} '${shown(c.text)}'; allowed: -1 (unset) or 0 to 4294967295`);
    const v = BigInt(t);
    if (v !== -1n && (v < 0n || v > UID_UNSET)) ctx.fail(`${key}.${which}`, `${which} ${t} is out of range; allowed: -1 (unset) or 0 to 4294967295`);
    if (v !== -1n && v !== UID_UNSET) perms[which] = v;
  }
  const label = childText(ctx, el, 'label', `${key}.label`);
  if (label !== undefined) perms.label = label;
  return normalizePermissions(ctx, perms, key);
}

/** Checks a structured Permissions; unset fields dropped; undefined when nothing is set. */
export function normalizePermissions(ctx: Ctx, p: Permissions | undefined, key: string): Permissions | undefined {
  if (!p) return undefined;
  const out: Permissions = { mode: undefined, owner: undefined, group: undefined, label: '' };
  if (p.mode !== undefined && p.mode !== null) {
    if (!Number.isInteger(p.mode) || p.mode < 0 || p.mode > 0o777) ctx.fail(`${key}.mode`, `mode ${Number.isInteger(p.mode) && p.mode >= 0 ? `0${p.mode.toString(8)} (${p.mode} decimal)` : String(p.mode)} is out of range; allowed: 0 to 0777 (octal), 511 decimal`);
    out.mode = p.mode;
  }
  for (const which of ['owner', 'group'] as const) {
    const v = p[which];
    if (v === undefined || v === null) continue;
    const b = BigInt(v);
    if (b === -1n || b === UID_UNSET) continue;
    if (b < 0n || b > UID_UNSET) ctx.fail(`${key}.${which}`, `${which} ${b} is out of range; allowed: 0 to 4294967294, or -1 or 4294967295 for unset`);
    out[which] = b;
  }
  if (p.label) out.label = checkText(ctx, `${key}.label`, p.label, 'label', 1024);
  if (out.mode === undefined && out.owner === undefined && out.group === undefined && !out.label) return undefined;
  return out;
}

/** <permissions> block (nothing when unset), libvirt's order: mode, owner, group, label. */
export function writePermissions(out: Out, p: Permissions | undefined): void {
  if (!p) return;
  const hasMode = p.mode !== undefined && p.mode !== null;
  const hasOwner = p.owner !== undefined && p.owner !== null && p.owner !== -1n;
  const hasGroup = p.group !== undefined && p.group !== null && p.group !== -1n;
  if (!hasMode && !hasOwner && !hasGroup && !p.label) return;
  out.open('<permissions>');
  if (hasMode) out.line(`<mode>0${p.mode!.toString(8)}</mode>`);
  if (hasOwner) out.line(`<owner>${p.owner!.toString()}</owner>`);
  if (hasGroup) out.line(`<group>${p.group!.toString()}</group>`);
  if (p.label) out.line(`<label>${esc(p.label)}</label>`);
  out.close('</permissions>');
}

// The role table of docs/security.md ("| Role | Methods |"), read as a reader would: each
// row adds methods to the one above it ("viewer + ..."), and "the Secret API" is every
// Secret method of StorageService in the proto. Tests hold the code to this table, so
// the document and METHODS cannot drift apart.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './paths.js';

export type DocumentedRole = 'viewer' | 'operator' | 'admin';

/** The rpc names of StorageService in proto/cistern/v1/storage.proto. */
export function storageServiceRpcs(): string[] {
  const proto = readFileSync(join(repoRoot, 'proto', 'cistern', 'v1', 'storage.proto'), 'utf8');
  const body = /service StorageService \{([\s\S]*?)\n\}/.exec(proto)?.[1];
  if (!body) throw new Error('no StorageService in storage.proto');
  return [...body.matchAll(/^\s*rpc (\w+)\(/gm)].map((m) => m[1]!);
}

/** Method name -> the lowest role docs/security.md lists it under. */
export function documentedMethodRoles(): Map<string, DocumentedRole> {
  const lines = readFileSync(join(repoRoot, 'docs', 'security.md'), 'utf8').split('\n');
  const head = lines.findIndex((l) => /^\|\s*Role\s*\|\s*Methods\s*\|$/.test(l.trim()));
  if (head < 0) throw new Error("docs/security.md has no '| Role | Methods |' table");
  const secretApi = storageServiceRpcs().filter((m) => /Secret/.test(m));
  const roles = new Map<string, DocumentedRole>();
  for (const line of lines.slice(head + 2)) {
    if (!line.startsWith('|')) break;
    const [role, methods] = line.split('|').slice(1, 3).map((c) => c.trim()) as [string, string];
    if (role !== 'viewer' && role !== 'operator' && role !== 'admin') throw new Error(`unknown role '${role}' in docs/security.md`);
    for (let item of methods.split(',').map((m) => m.trim())) {
      const inherits = /^(viewer|operator) \+ (.*)$/.exec(item);
      if (inherits) item = inherits[2]!;
      const names = item === 'the Secret API' ? secretApi : [item];
      for (const name of names) {
        if (!/^[A-Z]\w+$/.test(name)) throw new Error(`cannot read '${name}' in the role table of docs/security.md`);
        if (roles.has(name)) throw new Error(`${name} is listed twice in the role table of docs/security.md`);
        roles.set(name, role);
      }
    }
  }
  return roles;
}

// No shell anywhere: every program runs through the CommandRunner (execa, argv array,
// shell: false). This scans the shipped sources so a later change cannot slip one in.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { repoRoot } from '../support/paths.js';

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory() && e.name !== 'proto' && e.name !== 'node_modules') out.push(...sources(p));
    else if (e.isFile() && /\.(ts|mts|mjs|js)$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

describe('security: no shell in shipped code', () => {
  it('libs, services and cli spawn no shell and import no child_process exec', () => {
    const offenders: string[] = [];
    for (const dir of ['libs', 'services', 'cli']) {
      for (const file of sources(join(repoRoot, dir))) {
        const text = readFileSync(file, 'utf8');
        const rel = file.slice(repoRoot.length + 1);
        if (/shell\s*:\s*(true|['"`])/.test(text)) offenders.push(`${rel}: shell option`);
        if (/\bexecSync\s*\(|\bexec\s*\(\s*['"`]/.test(text)) offenders.push(`${rel}: exec of a command string`);
        if (/from\s+['"](node:)?child_process['"]/.test(text)) offenders.push(`${rel}: child_process (use the CommandRunner)`);
        if (/['"](\/bin\/)?(ba)?sh['"]\s*,\s*\[\s*['"]-c['"]/.test(text)) offenders.push(`${rel}: sh -c`);
      }
    }
    expect(offenders).to.deep.equal([]);
  });
});

// Shared helpers for the libs/xml tests: fixture locations and error assertions.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { InvalidArgumentError } from '../../../libs/errors/errors.js';

const here = dirname(fileURLToPath(import.meta.url));
// dist/test/unit/xml -> repository root is four levels up; sources live next to it in ../shared
const repoRoot = resolve(here, '..', '..', '..', '..');

/** The libvirt fixtures (override with CISTERN_LIBVIRT_FIXTURES). */
export const FIXTURES = process.env.CISTERN_LIBVIRT_FIXTURES ?? [resolve(repoRoot, '..', 'shared', 'fixtures', 'libvirt'), '/work/shared/fixtures/libvirt'].find((p) => existsSync(p))!;

export function fixture(dir: string, name: string): string {
  return readFileSync(join(FIXTURES, dir, name), 'utf8');
}

export function fixtureExists(dir: string, name: string): boolean {
  return existsSync(join(FIXTURES, dir, name));
}

export function fixtureNames(dir: string): string[] {
  return readdirSync(join(FIXTURES, dir))
    .filter((n) => n.endsWith('.xml'))
    .sort();
}

/** Runs fn, expects an InvalidArgumentError and returns it. */
export function expectInvalid(fn: () => unknown, ...fragments: (string | RegExp)[]): InvalidArgumentError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, 'expected an InvalidArgumentError').to.be.instanceOf(InvalidArgumentError);
  const err = caught as InvalidArgumentError;
  for (const f of fragments) {
    if (typeof f === 'string') expect(err.message).to.include(f);
    else expect(err.message).to.match(f);
  }
  return err;
}

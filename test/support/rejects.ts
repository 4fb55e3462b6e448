// The error a promise rejects with, or a failed test when it resolves.
import type { CisternError } from '../../libs/errors/errors.js';

export async function rejects(p: Promise<unknown>): Promise<CisternError> {
  try {
    await p;
  } catch (err) {
    return err as CisternError;
  }
  throw new Error('expected a rejection');
}

/** 'OK', or the Cistern error a promise rejects with as 'CODE: message' (for one expect per outcome). */
export function outcomeOf(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'OK',
    (err: unknown) => `${(err as CisternError).code}: ${(err as Error).message}`,
  );
}

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

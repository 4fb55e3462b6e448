// The id of one create or clone (CreateVolOptions.createId): made by the agent, recorded in
// its create journal, and carried by what a backend makes where it can mark it (an LVM tag),
// so an undo removes only what that create made. Its characters are ones LVM accepts in a
// tag (A-Z a-z 0-9 _ + . - / = ! : # &; we take fewer) so it can be used as one as it is.
import { randomBytes } from 'node:crypto';
import { InvalidArgumentError } from '../errors/errors.js';
import { printable } from '../api/names.js';

const CREATE_ID = /^[A-Za-z0-9_.+-]{1,128}$/;

/** A new create id: 64 random bits in hex, unique enough to tell any two creates apart. */
export function newCreateId(): string {
  return randomBytes(8).toString('hex');
}

/** A create id as made by newCreateId or an earlier version's journal; anything else is refused. */
export function checkCreateId(id: string, field = 'createId'): string {
  if (!CREATE_ID.test(id)) {
    throw new InvalidArgumentError(field, `create id '${printable(id, 140)}' is not 1-128 characters of A-Z a-z 0-9 _ . + -`);
  }
  return id;
}

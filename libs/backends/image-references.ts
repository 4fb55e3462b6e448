// The other files qemu opens when it opens an image: its backing chain, as qemu itself would
// find it. A volume's header is the word of whoever wrote the volume (an upload, a guest), and
// qemu-img convert copies the whole chain into the clone: a qcow2 whose backing file is
// /etc/shadow, cloned to raw and downloaded, hands out the host's file. So before qemu (or an
// in-process copy) reads an image, every file it would open is named here and the caller
// admits each one, or the work is refused. Where this reader cannot be sure of what qemu would
// open (a backing name it cannot read, a protocol, an external data file, a VMDK descriptor),
// it refuses rather than guesses.
import { closeSync, constants as fsc, fstatSync, openSync, readSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { FailedPreconditionError, PermissionDeniedError } from '../errors/errors.js';
import { printable } from '../api/names.js';
import { MAX_HEADER, probeBuffer, readHeaderSync } from './format-probe.js';

/** qemu's own limit on a chain is far higher; a longer one here is refused, not walked. */
export const MAX_CHAIN_LENGTH = 16;

/**
 * Checks one file before it is opened: returns the path to open (the real path the kernel
 * resolves `path` to), or throws. `why` says how the file is reached, for the message.
 */
export type AdmitFile = (path: string, why: string) => string;

const OPEN_PROBE = fsc.O_RDONLY | fsc.O_NONBLOCK | fsc.O_NOCTTY;
const QCOW2_INCOMPAT_DATA_FILE = 1n << 2n;
const VMDK_DESC_SIZE = 20 * 512;
const VMDK_TEXT_VERSION = /^version=[123]\r?\n/;

/** qemu reads 'nbd:...', 'json:{...}', 'file:...' as a protocol or an option string, not as a file name. */
function isProtocol(name: string): boolean {
  return /^[^/]*:/.test(name);
}

/** qemu's vmdk_probe on text: after comment and blank lines, a 'version=1|2|3' line. */
function looksLikeVmdkDescriptor(buf: Buffer): boolean {
  const text = buf.toString('latin1');
  let p = 0;
  while (p < text.length) {
    if (text[p] === '#') {
      const nl = text.indexOf('\n', p);
      if (nl < 0) return false;
      p = nl + 1;
    } else if (text[p] === ' ' || text[p] === '\r' || text[p] === '\n') {
      while (p < text.length && text[p] === ' ') p++;
      if (text[p] === '\r') p++;
      if (p < text.length && text[p] !== '\n') return false;
      p++;
    } else {
      return VMDK_TEXT_VERSION.test(text.slice(p, p + 11));
    }
  }
  return false;
}

/**
 * The backing file name stored in a qcow/qcow2 header, read where qemu reads it (the header's
 * offset may lie beyond the bytes a probe reads), or undefined when it has none.
 */
function qcowBackingName(fd: number, header: Buffer, image: string): string | undefined {
  const offset = header.readBigUInt64BE(8);
  const size = header.readUInt32BE(16);
  if (offset === 0n || size === 0) return undefined;
  if (size > 1023 || offset > BigInt(Number.MAX_SAFE_INTEGER)) throw unreadable(image, 'its backing file name is out of range');
  const name = Buffer.alloc(size);
  if (readSync(fd, name, 0, size, Number(offset)) !== size) throw unreadable(image, 'its backing file name lies beyond its end');
  return name.toString('utf8');
}

/** qemu's vmdk_parent_open: 'parentFileNameHint="..."' in the 10 KiB of descriptor at 0x200. */
function vmdkParentName(fd: number, image: string): string | undefined {
  const desc = Buffer.alloc(VMDK_DESC_SIZE);
  const n = readSync(fd, desc, 0, VMDK_DESC_SIZE, 0x200);
  const text = desc.subarray(0, n).toString('latin1');
  const at = text.indexOf('parentFileNameHint="');
  if (at < 0) return undefined;
  const from = at + 'parentFileNameHint="'.length;
  const end = text.indexOf('"', from);
  if (end < 0) throw unreadable(image, 'its parentFileNameHint has no end');
  return end === from ? undefined : Buffer.from(text.slice(from, end), 'latin1').toString('utf8');
}

function unreadable(image: string, why: string): PermissionDeniedError {
  return new PermissionDeniedError(
    `image '${printable(image, 200)}' cannot be checked: ${why}; refusing to let qemu open a chain whose files are not known`,
  );
}

/**
 * Walks the files qemu opens for the image named `start.name` (opened here as `start.open`,
 * already admitted) read as `format` ('' = as qemu would probe it; 'probe' = as this reader
 * probes it, what a clone passes to qemu-img as -f): each backing file is passed to `admit`
 * before this reads a byte of it. Throws PERMISSION_DENIED for what cannot be checked.
 * A file of the chain that cannot be opened is left to qemu, which fails on it, unless
 * `wholeChain`: then it is FAILED_PRECONDITION here. A create passes it, because a create
 * with a relative backing path runs `qemu-img create -u`, which records the chain without
 * opening it and would make an overlay whose base is missing instead of failing.
 */
export function checkImageReferences(start: { name: string; open: string }, format: string, admit: AdmitFile, { wholeChain = false } = {}): void {
  const path = start.name;
  let image = path; // the name qemu uses for the image: relative backing names resolve against its directory
  let open = start.open;
  let declared = format;
  for (let depth = 0; ; depth++) {
    if (depth > MAX_CHAIN_LENGTH) throw unreadable(path, `its backing chain is longer than ${MAX_CHAIN_LENGTH} files`);
    let fd = -1;
    let next: { name: string; format: string } | undefined;
    try {
      try {
        fd = openSync(open, OPEN_PROBE);
      } catch (err) {
        if (!wholeChain) return; // qemu cannot open it either: the command fails on its own
        throw new FailedPreconditionError(
          `inaccessible backing store volume '${printable(path, 200)}': ` +
            `${depth === 0 ? 'it' : `its backing chain names '${printable(image, 200)}', which`} cannot be opened (${(err as NodeJS.ErrnoException).code ?? err})`,
        );
      }
      const st = fstatSync(fd, { bigint: true });
      if (!st.isFile() && !st.isBlockDevice()) return;
      const header = readHeaderSync(fd, st.isFile() ? Number(st.size) : MAX_HEADER);
      const probe = probeBuffer(header, st.size);
      // qemu takes a recorded or requested format as it is; raw reads no other file
      const effective = declared === 'probe' ? probe.format : declared || (probe.format === 'raw' && looksLikeVmdkDescriptor(header) ? 'vmdk-descriptor' : probe.format);
      if (effective === 'raw' || effective === 'iso') return;
      if (effective === 'vmdk-descriptor') {
        throw unreadable(image, 'it is a VMDK descriptor, which names other files (extents) for qemu to read');
      }
      if (effective !== probe.format) {
        throw unreadable(image, `it is read as '${printable(effective)}' but its header says '${probe.format}'`);
      }
      switch (effective) {
        case 'qcow':
        case 'qcow2': {
          if (effective === 'qcow2' && probe.version === 3 && header.length >= 80 && (header.readBigUInt64BE(72) & QCOW2_INCOMPAT_DATA_FILE) !== 0n) {
            throw unreadable(image, 'it keeps its data in an external data file');
          }
          const name = qcowBackingName(fd, header, image);
          if (name !== undefined) {
            if (!probe.backingStore || probe.backingStore.raw !== name) throw unreadable(image, 'its backing file name is not where a probe reads it');
            next = { name, format: probe.backingStore.format };
          }
          break;
        }
        case 'vmdk': {
          const name = vmdkParentName(fd, image);
          if (name !== undefined) next = { name, format: '' };
          break;
        }
        case 'qed':
        case 'cow':
          if (probe.backingStore) next = { name: probe.backingStore.raw, format: probe.backingStore.format };
          break;
        default:
          // vpc, vdi, bochs, ploop, dir, luks ...: formats that name no other file
          return;
      }
    } finally {
      if (fd >= 0) closeSync(fd);
    }
    if (!next) return;
    if (isProtocol(next.name)) {
      throw new PermissionDeniedError(
        `image '${printable(image, 200)}' names backing '${printable(next.name, 200)}', a protocol or option string qemu would open; only backing files inside this host's pools are allowed`,
      );
    }
    // as qemu: the directory of the image's name, the backing name appended as it is (the kernel resolves '..')
    image = isAbsolute(next.name) ? next.name : `${image.slice(0, image.lastIndexOf('/') + 1)}${next.name}`;
    open = admit(image, `the backing file of '${printable(path, 200)}'`);
    declared = next.format;
  }
}

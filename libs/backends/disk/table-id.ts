// Which disk a partition was made on, as far as the disk itself says: its partition table's
// identifier (a GPT disk GUID, a dos disk signature), which parted writes at random with the
// label and keeps while partitions are added and removed. The device path says nothing about
// that: a kernel name (/dev/sdb) may be another disk after a reboot, a loop device is reused,
// a link is repointed; and disks of one layout have partitions at the same bytes. The undo of
// an interrupted create (journal.ts) acts only on the disk whose table has the id recorded.
import { open } from 'node:fs/promises';

const GPT_SIGNATURE = Buffer.from('EFI PART', 'latin1');
/** Where a GPT header may be: LBA 1 of a 512-byte or of a 4096-byte sector disk. */
const GPT_HEADER_AT = [512, 4096];

/**
 * `gpt:GUID` or `dos:SIGNATURE` (hex, as on disk) of the table on `device`; undefined when
 * it has none this knows, or cannot be read (its callers then go by the path, as before).
 */
export async function readTableId(device: string): Promise<string | undefined> {
  let fh;
  try {
    fh = await open(device, 'r');
    for (const at of GPT_HEADER_AT) {
      const header = Buffer.alloc(72);
      const { bytesRead } = await fh.read(header, 0, header.length, at);
      if (bytesRead === header.length && header.subarray(0, 8).equals(GPT_SIGNATURE)) return `gpt:${header.subarray(56, 72).toString('hex')}`;
    }
    const mbr = Buffer.alloc(512);
    const { bytesRead } = await fh.read(mbr, 0, mbr.length, 0);
    if (bytesRead === mbr.length && mbr[510] === 0x55 && mbr[511] === 0xaa) return `dos:${mbr.subarray(440, 444).toString('hex')}`;
    return undefined;
  } catch {
    return undefined;
  } finally {
    await fh?.close();
  }
}

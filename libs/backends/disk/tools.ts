// What the disk backend runs and asks: parted changes and prints the table, partx tells
// the kernel (and reads the type ids), qemu-img converts a clone's non-raw source, scrub
// does multi-pass wipes; and the two questions about device nodes that tests answer with
// stand-ins (image files are no block devices, and nothing holds them).
export interface DiskTools {
  parted: string;
  qemuImg: string;
  partx: string;
  scrub: string;
  /** How long a create waits for the new partition's /dev node (ms). */
  nodeWaitMs: number;
  /** Checks a path is a block device. */
  isBlockDevice: (path: string) => boolean;
  /** Whether a partition node is in use. */
  isBusy: (path: string) => boolean;
}

// A device number (st_rdev) split into major and minor, and the sysfs directory the
// kernel keeps for the block device of that number (its size, its partitions): one
// decoding for the backends that read either.

/** Linux dev_t -> major, minor (glibc gnu_dev_major / gnu_dev_minor). */
export function splitDevT(rdev: bigint): { major: number; minor: number } {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  return { major: Number(major), minor: Number(minor) };
}

/** /sys/dev/block/MAJ:MIN, the sysfs directory of the block device numbered `rdev`. */
export function sysfsBlockDir(rdev: bigint): string {
  const { major, minor } = splitDevT(rdev);
  return `/sys/dev/block/${major}:${minor}`;
}

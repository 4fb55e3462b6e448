// The first cluster of a qcow2 version 2 image with no backing file, for tests that need a
// file every reader (format-probe.ts, the clone chain check) takes for qcow2 without running
// qemu-img: magic, version, cluster bits and virtual size; the rest zeros.
export function qcow2Header(capacity: bigint): Buffer {
  const buf = Buffer.alloc(4096);
  buf.writeUInt32BE(0x514649fb, 0); // 'QFI\xfb'
  buf.writeUInt32BE(2, 4); // version
  buf.writeUInt32BE(16, 20); // cluster bits: 64 KiB
  buf.writeBigUInt64BE(capacity, 24);
  return buf;
}

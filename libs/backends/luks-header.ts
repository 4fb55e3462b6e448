// The room libvirt 9.0 adds to a LUKS-encrypted block volume (a partition, an LV) for the LUKS
// header: "we could need up to an extra 2MB for the LUKS header". qemu's LUKS header with its
// default settings takes 2068480 bytes (payload offset 4040 sectors), so the payload fits.
export const LUKS_HEADER_ROOM = 2n * 1024n * 1024n;

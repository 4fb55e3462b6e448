// The SCSI host number a pool's adapter name (or fc_host parent) means, as libvirt's
// virSCSIHostGetNumber reads it: 'host5', 'scsi_host5' and 'fc_host5' are all host 5. One
// reading for the define-time conflict rule, the agent's storage claims and the scsi backend.

/** 'host5' | 'scsi_host5' | 'fc_host5' -> 5; undefined for any other form. */
export function scsiHostNumberOf(name: string): number | undefined {
  const m = /^(?:scsi_|fc_)?host(\d{1,9})$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

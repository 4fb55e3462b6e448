// The external programs the logical backend runs besides LVM itself: qemu-img converts a
// clone's non-raw source, scrub does multi-pass wipes, udevadm settles udev before LVs are
// read or removed. Names (found on PATH) or paths; tests point them at stand-ins.
export interface LogicalTools {
  qemuImg: string;
  scrub: string;
  /** `udevadm` to settle before a refresh and before lvremove (libvirt's virWaitForDevices); null: do not wait. */
  udevadm: string | null;
  /** How long `udevadm settle` waits for udev's queue at most, in seconds. */
  udevSettleTimeoutSec: number;
}

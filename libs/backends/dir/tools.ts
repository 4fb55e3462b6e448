// The external programs the dir backend runs where no system call does the job: qemu-img
// for image formats, scrub for multi-pass wipes, fallocate for preallocation, chattr for
// btrfs copy-on-write. Names (found on PATH) or paths; tests point them at stand-ins.
export interface DirTools {
  qemuImg: string;
  scrub: string;
  fallocate: string;
  chattr: string;
}

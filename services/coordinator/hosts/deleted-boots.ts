// Hosts forgotten (deleted), with the boot id last known of their agent (0: unknown), until a
// heartbeat registers them again: a late full sync of that boot (queued on the sync
// connection) does not bring them back. At most MAX_DELETED_REMEMBERED, the oldest dropped.

/** Deleted hosts remembered (with their last boot id) so that a late sync of theirs does not bring them back. */
export const MAX_DELETED_REMEMBERED = 10_000;

export class DeletedBoots {
  private readonly boots = new Map<string, bigint>();

  remember(id: string, bootId: bigint): void {
    this.boots.delete(id); // re-inserted: the newest
    this.boots.set(id, bootId);
    while (this.boots.size > MAX_DELETED_REMEMBERED) this.boots.delete(this.boots.keys().next().value!);
  }

  /** The boot id last known of a deleted host (0n: unknown); undefined when it is not remembered as deleted. */
  bootOf(id: string): bigint | undefined {
    return this.boots.get(id);
  }

  /** The host heartbeats again: a running agent, registered anew, whose syncs count again. */
  registeredAgain(id: string): void {
    this.boots.delete(id);
  }

  /** A full sync (of boot `bootId`, 0: not said) from the boot last known of a deleted host, or of an unknown boot. */
  isLateSync(id: string, bootId: bigint): boolean {
    const deletedBoot = this.boots.get(id);
    return deletedBoot !== undefined && (bootId === 0n || bootId === deletedBoot);
  }
}

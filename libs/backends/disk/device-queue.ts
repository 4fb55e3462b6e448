// Table changes of one device run one at a time: parted rewrites the whole table, so two
// creates planned against the same table would place their partitions over each other.
export class DeviceQueue {
  private readonly tails = new Map<string, Promise<unknown>>();

  async exclusive<T>(device: string, work: () => Promise<T>): Promise<T> {
    const before = this.tails.get(device) ?? Promise.resolve();
    const run = before.then(work, work);
    const tail = run.catch(() => undefined);
    this.tails.set(device, tail);
    try {
      return await run;
    } finally {
      if (this.tails.get(device) === tail) this.tails.delete(device);
    }
  }
}

// A bounded pool of slots for expensive work the coordinator starts on a client's behalf (an
// xmllint per validated document): at most `size` at once, a short line behind them, and an
// immediate RESOURCE_EXHAUSTED beyond it, rather than an unbounded queue that only times out.
import { CancelledError, ResourceExhaustedError } from '../../libs/errors/errors.js';

/**
 * At most `size` tasks at once, at most `maxWaiting` more waiting (then RESOURCE_EXHAUSTED at
 * once); a waiting task whose signal aborts leaves the queue.
 */
export class Slots {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  /** `what`: the tasks, plural, as the refusal names them ('XML validations'). */
  constructor(private readonly size: number, private readonly maxWaiting: number, private readonly what: string) {}

  async run<T>(signal: AbortSignal | undefined, task: () => Promise<T>): Promise<T> {
    if (this.running >= this.size) await this.wait(signal);
    else this.running++;
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }

  /** Resolves once a finishing task hands its slot over (running stays the same). */
  private wait(signal: AbortSignal | undefined): Promise<void> {
    if (this.waiting.length >= this.maxWaiting) {
      return Promise.reject(new ResourceExhaustedError(`${this.size} ${this.what} are running and ${this.waiting.length} waiting; retry later`));
    }
    if (signal?.aborted) return Promise.reject(new CancelledError(`cancelled while waiting among ${this.what}`));
    return new Promise((resolve, reject) => {
      const go = (): void => {
        signal?.removeEventListener('abort', gone);
        resolve();
      };
      const gone = (): void => {
        const i = this.waiting.indexOf(go);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(new CancelledError(`cancelled while waiting among ${this.what}`));
      };
      signal?.addEventListener('abort', gone, { once: true });
      this.waiting.push(go);
    });
  }
}

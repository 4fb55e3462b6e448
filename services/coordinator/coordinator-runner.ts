// One coordinator process over its lifetime: started once, started again whenever the event
// stream or the catalog bucket it reads is replaced underneath it (stream-identity.ts), stopped
// at the end. A
// replacement told while a start is still under way (the first, or a start again) is taken up
// once that start is done: the new coordinator may have read the stream before it was
// replaced, and its own check fires only once.
import type { Logger } from '../../libs/log/logger.js';
import type { RunningCoordinator } from './coordinator.js';

/** Starts a coordinator that calls `replaced` when its event stream is replaced. */
export type StartCoordinator = (replaced: (why: string) => void) => Promise<RunningCoordinator>;

export class CoordinatorRunner {
  private running: RunningCoordinator | undefined;
  /** why the stream was replaced, when a start again is due */
  private replacedWhy: string | undefined;
  private restarting: Promise<void> | undefined;
  private stopping = false;

  /** `failed`: a start again failed (the process should end: it serves nothing any more). */
  constructor(
    private readonly start: StartCoordinator,
    private readonly log: Logger,
    private readonly failed: (err: unknown) => void,
  ) {}

  /** The first start (throws what it throws). */
  async startFirst(): Promise<RunningCoordinator> {
    this.running = await this.start(this.replaced);
    if (this.replacedWhy !== undefined) this.startAgainSoon();
    return this.running;
  }

  /** Stops the coordinator, after a start again under way. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.restarting;
    await this.running?.stop();
  }

  /** Resolves when no start again is under way (tests). */
  async settled(): Promise<void> {
    while (this.restarting) await this.restarting;
  }

  private readonly replaced = (why: string): void => {
    this.replacedWhy = why;
    this.startAgainSoon();
  };

  private startAgainSoon(): void {
    if (!this.running || this.restarting || this.stopping) return;
    this.restarting = (async () => {
      while (this.replacedWhy !== undefined && !this.stopping) {
        const why = this.replacedWhy;
        this.replacedWhy = undefined;
        await this.running!.stop();
        // a stop told meanwhile (SIGTERM): nothing to start, only for it to be stopped again
        if (this.stopping) break;
        this.log.info('coordinator starting again', { why });
        this.running = await this.start(this.replaced);
      }
    })().then(
      () => {
        this.restarting = undefined;
      },
      (err: unknown) => {
        this.restarting = undefined;
        this.failed(err);
      },
    );
  }
}

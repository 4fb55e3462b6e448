// Requests on a hot path (the coordinator's call to an agent, the agent's JetStream publish
// of each event) answered through ONE wildcard subscription per connection. nats.js's
// request() does the same with its own mux, but builds an Error with a captured stack for
// every request, even one that succeeds (RequestOne.cancel after the reply), plus a deferred
// and a timer object each: measured here, ~50-100 µs of a request's round trip on loopback.
import { createInbox, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from '@nats-io/transport-node';

// The errors are named as nats.js names its own, so that whoever tells a bus that did not
// answer from a fault of the request (isBusUnreachable, agent-rpc.ts) reads them alike.

/** Nobody subscribes to the subject: NATS answered with its no-responders status at once. */
export class NoRespondersError extends Error {
  constructor(readonly subject: string) {
    super(`no responders for '${subject}'`);
    this.name = 'NoResponders';
  }
  /** The shape nats.js's own RequestError has, for callers that test it either way. */
  isNoResponders(): boolean {
    return true;
  }
}

/** The connection closed while the request waited, or before it was made. */
export class InboxClosedError extends Error {
  constructor() {
    super('the NATS connection is closed');
    this.name = 'ClosedConnectionError';
  }
}

/** No reply within the request's time. */
export class ReplyTimeoutError extends Error {
  constructor(
    readonly subject: string,
    readonly timeoutMs: number,
  ) {
    super(`no reply to '${subject}' within ${timeoutMs} ms (timeout)`);
    this.name = 'TimeoutError';
  }
}

export interface InboxRequestOptions {
  headers?: MsgHdrs;
  /**
   * The agent host the request goes to: its answer must come on cistern.reply.HOST.ID.TOKEN,
   * a subject only that agent may publish to (scripts/nats-config.mjs), and one that arrives
   * on another host's reply subject is dropped. Agents get no allow_responses: with it, an
   * agent could send itself a message whose reply subject is another host's request subject,
   * and "answer" it.
   */
  replyHost?: string;
  timeoutMs: number;
  /** Aborting it stops the wait at once: the request rejects with what `aborted()` returns, a late reply is dropped. */
  signal?: AbortSignal;
  aborted?: () => Error;
}

interface Waiter {
  subject: string;
  /** the one subject its reply may come on */
  replySubject: string;
  resolve(msg: Msg): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
  signal?: AbortSignal;
  onAbort?: () => void;
}

/** NATS's status for "no subscriber": a reply with no data whose header code is 503. */
function isNoResponders(msg: Msg): boolean {
  return msg.data.length === 0 && msg.headers?.code === 503;
}

const inboxes = new WeakMap<NatsConnection, ReplyInbox>();

export class ReplyInbox {
  private readonly prefix: string;
  /** this inbox's own token, in its host reply subjects */
  private readonly id: string;
  private readonly waiting = new Map<string, Waiter>();
  private readonly subscription: Subscription;
  private hostReplies: Subscription | undefined;
  private counter = 0;
  private closedWith: Error | undefined;

  private constructor(private readonly nc: NatsConnection) {
    // under the connection's own inbox prefix: an agent may only subscribe under its own
    const inboxPrefix = (nc as NatsConnection & { options?: { inboxPrefix?: string } }).options?.inboxPrefix;
    const inbox = createInbox(inboxPrefix);
    this.prefix = `${inbox}.`;
    this.id = inbox.slice(inbox.lastIndexOf('.') + 1);
    // nats.js resubscribes after a reconnect; a request whose reply was lost meanwhile times out
    this.subscription = nc.subscribe(`${this.prefix}*`, { callback: (err, msg) => (err ? this.failAll(err) : this.deliver(msg)) });
    void nc.closed().then(() => this.close(new InboxClosedError()));
  }

  /** The connection's inbox, made on first use. */
  static of(nc: NatsConnection): ReplyInbox {
    let inbox = inboxes.get(nc);
    if (!inbox) {
      inbox = new ReplyInbox(nc);
      inboxes.set(nc, inbox);
    }
    return inbox;
  }

  /** Publishes `data` to `subject` with a reply subject of this inbox; the first reply settles it. */
  request(subject: string, data: Uint8Array, options: InboxRequestOptions): Promise<Msg> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    this.counter = (this.counter + 1) % Number.MAX_SAFE_INTEGER;
    const token = this.counter.toString(36);
    let replySubject = this.prefix + token;
    if (options.replyHost !== undefined) {
      this.hostReplies ??= this.nc.subscribe(`cistern.reply.*.${this.id}.*`, { callback: (err, msg) => (err ? this.failAll(err) : this.deliver(msg)) });
      replySubject = `cistern.reply.${options.replyHost}.${this.id}.${token}`;
    }
    return new Promise<Msg>((resolve, reject) => {
      const timer = setTimeout(() => this.settle(token)?.reject(new ReplyTimeoutError(subject, options.timeoutMs)), options.timeoutMs);
      const waiter: Waiter = { subject, replySubject, resolve, reject, timer };
      const { signal } = options;
      if (signal) {
        waiter.signal = signal;
        waiter.onAbort = () => this.settle(token)?.reject(options.aborted?.() ?? new Error('the request was aborted'));
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.waiting.set(token, waiter);
      try {
        this.nc.publish(subject, data, { reply: replySubject, ...(options.headers ? { headers: options.headers } : {}) });
      } catch (err) {
        this.settle(token)?.reject(err as Error);
      }
    });
  }

  /** Requests still waiting for their reply. */
  get pending(): number {
    return this.waiting.size;
  }

  /** Fails every waiting request with `err` and stops the subscription (the connection closed). */
  private close(err: Error): void {
    if (this.closedWith) return;
    this.closedWith = err;
    this.failAll(err);
    if (!this.nc.isClosed()) {
      this.subscription.unsubscribe();
      this.hostReplies?.unsubscribe();
    }
  }

  private deliver(msg: Msg): void {
    const token = msg.subject.slice(msg.subject.lastIndexOf('.') + 1);
    // another host's agent answering on its own reply subject for a request it did not get
    if (this.waiting.get(token)?.replySubject !== msg.subject) return;
    const waiter = this.settle(token);
    if (!waiter) return; // timed out or forgotten: nobody waits for it any more
    if (isNoResponders(msg)) waiter.reject(new NoRespondersError(waiter.subject));
    else waiter.resolve(msg);
  }

  private settle(token: string): Waiter | undefined {
    const waiter = this.waiting.get(token);
    if (!waiter) return undefined;
    this.waiting.delete(token);
    clearTimeout(waiter.timer);
    if (waiter.onAbort) waiter.signal!.removeEventListener('abort', waiter.onAbort);
    return waiter;
  }

  private failAll(err: Error): void {
    for (const token of [...this.waiting.keys()]) this.settle(token)?.reject(err);
  }
}

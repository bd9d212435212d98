/**
 * The per-subscription side of the in-memory broker: a subscription's runner
 * and the publishes waiting for room in its queue, one message on its way to
 * one subscription (which is also the handler's context), a publish waiting
 * for room, and a request waiting for its first reply.
 *
 * @module
 */

import type { MessageContext } from "./broker.ts";
import { RequestFailedError } from "./errors.ts";
import { CloudEvent } from "./event.ts";
import type { HandlerRunner, RunnerDelivery } from "./handler_runner.ts";
import type { RingQueue } from "./ring_queue.ts";

// One settled promise serves every publish that needed no waiting.
export const ACCEPTED: Promise<void> = Promise.resolve();

/** A publish waiting for room in one or more full queues. */
export class WaitingPublish {
  remaining = 0;
  declare resolve: () => void;
  declare reject: (error: unknown) => void;
  readonly promise: Promise<void>;

  constructor() {
    this.promise = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  /** One queue took the message, or will never take it. */
  settleOne(): void {
    if (--this.remaining === 0) this.resolve();
  }
}

/** A request waiting for its first reply. */
export class PendingRequest {
  settled = false;
  /** Deliveries whose handler has not finished yet. */
  outstanding = 0;
  timer: ReturnType<typeof setTimeout> | undefined;
  cleanup: () => void = noop;
  declare resolve: (value: unknown) => void;
  declare reject: (error: unknown) => void;

  constructor(readonly inbox: string, readonly channel: string) {}

  /** The first handler to finish wins. */
  reply(value: unknown): void {
    this.outstanding--;
    if (this.settled) return;
    this.settled = true;
    this.cleanup();
    this.resolve(value);
  }

  /** A handler gave up: the request fails only when no handler is left to reply. */
  failed(subscription: string, error: unknown): void {
    if (--this.outstanding === 0) {
      this.abort(RequestFailedError.from(this.channel, subscription, error));
    }
  }

  abort(error: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.cleanup();
    this.reject(error);
  }
}

function noop(): void {}

/** The state of one subscription. */
export class SubscriptionState {
  /** Deliveries whose publish waits for room, created on first need. */
  blocked: RingQueue<Delivery> | null = null;
  /** Deliveries waiting for a retry, by timer. */
  retries: Map<ReturnType<typeof setTimeout>, Delivery> | null = null;
  /** Resolved when a retry timer fires: `MemoryBroker.idle()` waits on it. */
  retryWaiters: (() => void)[] | null = null;
  active = true;

  constructor(
    readonly runner: HandlerRunner<Delivery>,
    readonly idPrefix: string,
  ) {}

  get channel(): string {
    return this.runner.channel;
  }

  get name(): string {
    return this.runner.subscription;
  }

  get waiting(): number {
    return this.blocked === null ? 0 : this.blocked.length;
  }

  /** Resolves when the next retry of this subscription is queued. */
  nextRetry(): Promise<void> {
    return new Promise<void>((resolve) => (this.retryWaiters ??= []).push(resolve));
  }

  /** A retry was queued. */
  retryFired(): void {
    const waiters = this.retryWaiters;
    if (waiters === null) return;
    this.retryWaiters = null;
    for (const resolve of waiters) resolve();
  }

  isIdle(): boolean {
    return this.runner.isIdle() && this.waiting === 0 &&
      (this.retries === null || this.retries.size === 0);
  }
}

/**
 * One message on its way to one subscription; it is also the handler's
 * context, so a delivery costs a single allocation.
 */
export class Delivery implements MessageContext, RunnerDelivery {
  /** Set while the publish waits for room in this subscription's queue. */
  waiting: WaitingPublish | undefined = undefined;
  /** Taken at publish: a later restart gives the subscription a new signal. */
  readonly signal: AbortSignal;
  attempt = 1;

  constructor(
    readonly state: SubscriptionState,
    readonly message: unknown,
    readonly sequence: number,
    readonly headers: Readonly<Record<string, string>>,
    readonly correlationId: string | undefined,
    readonly replyTo: string | undefined,
    readonly request: PendingRequest | undefined,
  ) {
    this.signal = state.runner.signal;
  }

  get context(): MessageContext {
    return this;
  }

  get channel(): string {
    return this.state.channel;
  }

  get subscription(): string {
    return this.state.name;
  }

  get messageId(): string {
    const message = this.message;
    return message instanceof CloudEvent ? message.id : this.state.idPrefix + this.sequence;
  }
}

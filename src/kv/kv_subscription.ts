/**
 * The consuming side of one subscription in one broker: its runner, the
 * batches being handled (a queue message is settled once each of its
 * messages is), one message on its way to the handler, and the messages
 * given back unhandled (to be parked).
 *
 * @module
 */

import type { MessageContext } from "../broker.ts";
import type { HandlerRunner, RunnerDelivery } from "../handler_runner.ts";
import { deadline } from "../timers.ts";
import type { Envelope } from "./envelope.ts";
import type { DecodedRecord } from "./record.ts";

/**
 * A queue message being handled. The listener callback awaits `settled`,
 * which resolves once every message is settled (handled, retried,
 * dead-lettered or parked), and rejects when recording an outcome in KV
 * failed: KV then delivers the batch again.
 */
export class Batch {
  readonly settled: Promise<void>;
  #pending: number;
  #failure: unknown = undefined;
  #resolve!: () => void;
  #reject!: (error: unknown) => void;

  /** A batch of `size` messages. */
  constructor(readonly envelope: Envelope, size: number) {
    this.#pending = size;
    this.settled = new Promise<void>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    if (size === 0) this.#resolve();
  }

  /** One message is settled. */
  settleOne(): void {
    if (--this.#pending > 0) return;
    if (this.#failure === undefined) this.#resolve();
    else this.#reject(this.#failure);
  }

  /** Recording one message's outcome failed: the batch will be delivered again. */
  fail(error: unknown): void {
    this.#failure ??= error;
  }
}

/** One message on its way to one subscription's handler; it is also the handler's context. */
export class KvDelivery implements MessageContext, RunnerDelivery {
  /** Taken when it arrived: a later restart gives the subscription a new signal. */
  readonly signal: AbortSignal;
  /** A handler call holds it now. */
  running = false;

  /** Creates the delivery of one decoded record of `batch`. */
  constructor(
    readonly state: KvSubscriptionState,
    readonly batch: Batch,
    /** The stored record as parsed, kept to retry, park or dead-letter the message as it came. */
    readonly raw: unknown,
    readonly decoded: DecodedRecord,
    /** Arrival order in this broker: given-back messages are parked in it. */
    readonly sequence: number,
  ) {
    this.signal = state.runner.signal;
  }

  /** The context handed to the handler: the delivery itself. */
  get context(): MessageContext {
    return this;
  }

  /** The message handed to the handler. */
  get message(): unknown {
    return this.decoded.message;
  }

  /** Channel of the message. */
  get channel(): string {
    return this.state.channel;
  }

  /** Name of the subscription. */
  get subscription(): string {
    return this.state.name;
  }

  /** The CloudEvent id, or the id the broker gave the message. */
  get messageId(): string {
    return this.decoded.messageId;
  }

  /** Headers given to `publish`. */
  get headers(): Readonly<Record<string, string>> {
    return this.decoded.headers;
  }

  /** Correlation id given to `publish`. */
  get correlationId(): string | undefined {
    return this.decoded.correlationId;
  }

  /** Reply channel of a request. */
  get replyTo(): string | undefined {
    return this.decoded.replyTo;
  }

  /** Delivery attempt, from 1. */
  get attempt(): number {
    return this.batch.envelope.attempt;
  }
}

/** One subscription of one broker. */
export class KvSubscriptionState {
  /** False once unsubscribed. */
  active = true;
  /** While starting, arrivals wait here, in order; `null` once started. */
  held: KvDelivery[] | null = null;
  /** Registration and unparking in progress. */
  starting: Promise<void> | undefined;
  /** Messages given back unhandled, parked once the runner is idle. */
  leftovers: KvDelivery[] = [];
  /** Resolves once the subscription is closed and its leftovers are parked. */
  closed: Promise<void> | undefined;
  /** Batches moved back from parking that have not arrived yet. */
  #awaiting: Set<string> | undefined;
  #arrived: (() => void) | undefined;

  /** Creates the state of a subscription around its runner. */
  constructor(readonly runner: HandlerRunner<KvDelivery>) {}

  /** Channel subscribed to. */
  get channel(): string {
    return this.runner.channel;
  }

  /** Durable name. */
  get name(): string {
    return this.runner.subscription;
  }

  /** Messages waiting: queued in the runner or held while starting. */
  get queued(): number {
    return this.runner.queued + (this.held?.length ?? 0);
  }

  /** Hands arrivals to the runner, or holds them while starting. */
  push(deliveries: readonly KvDelivery[]): void {
    if (this.held === null) {
      for (const delivery of deliveries) this.runner.push(delivery);
      return;
    }
    this.held.push(...deliveries);
    const awaiting = this.#awaiting;
    if (awaiting === undefined || deliveries.length === 0) return;
    awaiting.delete(deliveries[0].batch.envelope.batch);
    if (awaiting.size === 0) this.#arrived?.();
  }

  /**
   * While starting: resolves once the batches with these ids (moved back
   * from parking) have arrived here, or after `ms` (another instance may
   * have got them).
   */
  awaitArrivals(ids: readonly string[], ms: number): Promise<void> {
    if (ids.length === 0 || this.held === null) return Promise.resolve();
    const awaiting = new Set(ids);
    for (const delivery of this.held) awaiting.delete(delivery.batch.envelope.batch);
    if (awaiting.size === 0) return Promise.resolve();
    this.#awaiting = awaiting;
    const arrived = new Promise<void>((resolve) => (this.#arrived = resolve));
    return deadline(arrived, ms, () => {}).finally(() => {
      this.#awaiting = undefined;
      this.#arrived = undefined;
    });
  }

  /**
   * Starting is over: what arrived meanwhile goes to the runner, sorted by
   * batch id (publish order), so messages moved back from parking come
   * before later ones that arrived first.
   */
  open(): void {
    const held = this.held;
    this.held = null;
    if (held === null) return;
    held.sort((a, b) => {
      const x = a.batch.envelope.batch;
      const y = b.batch.envelope.batch;
      return x < y ? -1 : x > y ? 1 : 0;
    });
    for (const delivery of held) this.runner.push(delivery);
  }

  /** Takes every waiting message out (queued or held), to give them back. */
  takeWaiting(): KvDelivery[] {
    const held = this.held ?? [];
    if (this.held !== null) this.held = [];
    return [...this.runner.clear(), ...held];
  }
}

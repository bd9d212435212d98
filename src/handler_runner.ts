/**
 * The one handler runner every broker uses: a FIFO of deliveries run by up
 * to `concurrency` workers (1 keeps order), idle waiting for drains, giving
 * up on calls a stop could not wait for, outcome classification (`AckMessage`,
 * `NackMessage`, `RejectMessage`, failure) and guarded failure reporting. A
 * broker adds only its transport rules through {@linkcode RunnerHost}:
 * what success, a retry request, a refusal or a failure mean for its
 * messages (ack, reply, retry, dead letter).
 *
 * @module
 */

import type { Handler, MessageContext } from "./broker.ts";
import { CloudEvent } from "./event.ts";
import { AckMessage, NackMessage, RejectMessage } from "./outcomes.ts";
import type { Reporter } from "./reporter.ts";
import { RingQueue } from "./ring_queue.ts";

/** A message on its way to one subscription's handler. */
export interface RunnerDelivery {
  /** What the handler gets as its first argument. */
  readonly message: unknown;
  /** What the handler gets as its second argument. */
  readonly context: MessageContext;
}

/**
 * How a handler call ended, other than success: a failure (reported before
 * the host sees it), a `NackMessage`, a `RejectMessage`, or a release (the
 * delivery was given back unhandled, e.g. a consumer stream was cancelled).
 */
export type Unsettled =
  | { readonly kind: "error"; readonly error: unknown }
  | { readonly kind: "nack"; readonly error: NackMessage; readonly delay: number | undefined }
  | { readonly kind: "reject"; readonly error: RejectMessage; readonly reason: string }
  | { readonly kind: "release"; readonly error: ReleaseMessage };

/** The transport rules of a broker, called by the runner as calls end. */
export interface RunnerHost<D extends RunnerDelivery> {
  /**
   * The handler returned `result` (`undefined` after `AckMessage` or a
   * middleware that skipped the handler): acknowledge, reply. A returned
   * promise keeps the worker's slot until it settles.
   */
  succeeded(delivery: D, result: unknown): void | Promise<void>;
  /** The call ended otherwise: retry, dead-letter, drop, fail a request. */
  unsettled(delivery: D, outcome: Unsettled): void | Promise<void>;
  /** A delivery left the queue for a worker (room for bounded transports). */
  taken?(delivery: D): void;
}

/**
 * Thrown by a consumer stream's handler to give a delivery back unhandled:
 * durable brokers deliver it again, in-memory brokers count it as dropped.
 * Internal: it is never shown to users' handlers.
 */
export class ReleaseMessage extends Error {
  /** Creates the marker. */
  constructor(reason: string) {
    super(reason);
    this.name = "ReleaseMessage";
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === "object" || typeof value === "function") &&
    typeof (value as PromiseLike<unknown>).then === "function";
}

/** Sorts what a handler threw into an outcome. */
export function classify(error: unknown): Unsettled | "ack" {
  if (error instanceof AckMessage) return "ack";
  if (error instanceof NackMessage) return { kind: "nack", error, delay: error.delay };
  if (error instanceof RejectMessage) return { kind: "reject", error, reason: error.reason };
  if (error instanceof ReleaseMessage) return { kind: "release", error };
  return { kind: "error", error };
}

const IDLE: Promise<void> = Promise.resolve();

/**
 * Runs one subscription's handler over the deliveries pushed to it.
 *
 * @example
 * ```ts
 * import { HandlerRunner, type RunnerDelivery } from "./handler_runner.ts";
 * import { Reporter } from "./reporter.ts";
 * const seen: unknown[] = [];
 * const runner = new HandlerRunner<RunnerDelivery>({
 *   channel: "jobs",
 *   subscription: "worker",
 *   handler: (message) => void seen.push(message),
 *   concurrency: 1,
 *   reporter: new Reporter(console, undefined, new EventTarget()),
 *   host: { succeeded() {}, unsettled() {} },
 * });
 * const context = {
 *   channel: "jobs", subscription: "worker", messageId: "1", headers: {},
 *   correlationId: undefined, replyTo: undefined, attempt: 1, signal: runner.signal,
 * };
 * runner.push({ message: "a", context });
 * await runner.whenIdle();
 * console.assert(seen[0] === "a");
 * ```
 */
export class HandlerRunner<D extends RunnerDelivery> {
  /** Channel of the subscription. */
  readonly channel: string;
  /** Name of the subscription. */
  readonly subscription: string;
  /** Handler calls allowed at once. */
  readonly concurrency: number;
  readonly #handler: Handler;
  readonly #host: RunnerHost<D>;
  readonly #reporter: Reporter;
  readonly #queue = new RingQueue<D>();
  #running = 0;
  /** Bumped when a stop gives up on the calls in flight: their late outcomes are ignored. */
  #generation = 0;
  #controller = new AbortController();
  /** Kept apart from the controller: reading `controller.signal` costs a WebIDL check per call. */
  #signal: AbortSignal = this.#controller.signal;
  #idleWaiters: (() => void)[] | null = null;

  /** Creates a runner; deliveries run as soon as they are pushed. */
  constructor(spec: {
    channel: string;
    subscription: string;
    handler: Handler;
    concurrency: number;
    reporter: Reporter;
    host: RunnerHost<D>;
  }) {
    this.channel = spec.channel;
    this.subscription = spec.subscription;
    this.concurrency = spec.concurrency;
    this.#handler = spec.handler;
    this.#host = spec.host;
    this.#reporter = spec.reporter;
  }

  /** Signal handed to handlers: fires when a stop gives up on them or the subscription closes. */
  get signal(): AbortSignal {
    return this.#signal;
  }

  /** Deliveries waiting for a worker. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Handler calls in flight. */
  get running(): number {
    return this.#running;
  }

  /** Nothing queued and nothing running. */
  isIdle(): boolean {
    return this.#running === 0 && this.#queue.length === 0;
  }

  /** Appends a delivery; a free worker takes it on the next microtask. */
  push(delivery: D): void {
    this.#queue.push(delivery);
    if (this.#running < this.concurrency) {
      this.#running++;
      this.#work(this.#generation);
    }
  }

  /** Puts a delivery before every waiting one (retries, entries of dead consumers). */
  pushFront(delivery: D): void {
    this.#queue.unshift(delivery);
    if (this.#running < this.concurrency) {
      this.#running++;
      this.#work(this.#generation);
    }
  }

  /** Removes every waiting delivery and returns them, oldest first. */
  clear(): D[] {
    const left = this.#queue.drain();
    if (this.#running === 0) this.#notifyIdle();
    return left;
  }

  /** Resolves once nothing is queued or running. */
  whenIdle(): Promise<void> {
    if (this.isIdle()) return IDLE;
    return new Promise<void>((resolve) => (this.#idleWaiters ??= []).push(resolve));
  }

  /**
   * Gives up on the calls in flight: fires their signal, ignores whatever
   * they do later and frees their slots. Returns how many were running.
   */
  abandon(reason: string): number {
    const running = this.#running;
    this.#generation++;
    this.#running = 0;
    this.#controller.abort(new DOMException(reason, "AbortError"));
    if (this.#queue.length === 0) this.#notifyIdle();
    return running;
  }

  /** Fires the handlers' signal once the calls in flight are done (a closed subscription). */
  abortWhenIdle(reason: string): void {
    const controller = this.#controller;
    this.whenIdle().then(() => controller.abort(new DOMException(reason, "AbortError")));
  }

  /** Gives handlers a fresh signal after a stop aborted the last one. */
  renew(): void {
    if (this.#signal.aborted) {
      this.#controller = new AbortController();
      this.#signal = this.#controller.signal;
    }
  }

  async #work(generation: number): Promise<void> {
    // Handlers never run inside the call that pushed the delivery.
    await undefined;
    const queue = this.#queue;
    const host = this.#host;
    while (this.#generation === generation) {
      const delivery = queue.shift();
      if (delivery === undefined) break;
      host.taken?.(delivery);
      let result: unknown;
      try {
        result = this.#handler(delivery.message, delivery.context);
        if (isThenable(result)) result = await result;
      } catch (error) {
        if (this.#generation !== generation) {
          this.#reporter.log("debug", `abandoned handler "${this.subscription}" failed`, error);
          return;
        }
        const outcome = classify(error);
        const settled = outcome === "ack"
          ? this.#succeeded(delivery, undefined)
          : this.#unsettled(delivery, outcome);
        if (settled !== undefined) await settled;
        continue;
      }
      if (this.#generation !== generation) return;
      const settled = this.#succeeded(delivery, result);
      if (settled !== undefined) await settled;
    }
    if (this.#generation !== generation) return;
    if (--this.#running === 0 && queue.length === 0) this.#notifyIdle();
  }

  #succeeded(delivery: D, result: unknown): void | Promise<void> {
    try {
      const settled = this.#host.succeeded(delivery, result);
      if (settled !== undefined) return settled.catch((error) => this.#hostFailed(error));
    } catch (error) {
      this.#hostFailed(error);
    }
  }

  #hostFailed(error: unknown): void {
    this.#reporter.log("error", `settling a message of "${this.subscription}" failed`, error);
  }

  #unsettled(delivery: D, outcome: Unsettled): void | Promise<void> {
    if (outcome.kind === "error") {
      const context = delivery.context;
      const message = delivery.message;
      this.#reporter.failure({
        error: outcome.error,
        channel: this.channel,
        subscription: this.subscription,
        messageId: context.messageId,
        eventType: message instanceof CloudEvent ? message.type : undefined,
        attempt: context.attempt,
      });
    }
    try {
      const settled = this.#host.unsettled(delivery, outcome);
      if (settled !== undefined) return settled.catch((error) => this.#hostFailed(error));
    } catch (error) {
      this.#hostFailed(error);
    }
  }

  #notifyIdle(): void {
    const waiters = this.#idleWaiters;
    if (waiters === null) return;
    this.#idleWaiters = null;
    for (const resolve of waiters) resolve();
  }
}

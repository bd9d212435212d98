/**
 * The in-memory broker: per-subscription bounded FIFO queues with
 * backpressure, per-subscription concurrency, graceful stop, request/reply
 * without leaks. Web standards only.
 *
 * @module
 */

import { BrokerBase } from "./broker_base.ts";
import type {
  BatchEntry,
  BrokerDelivery,
  BrokerHealth,
  BrokerOptions,
  BrokerState,
  BrokerStats,
  Handler,
  PublishOptions,
  RequestOptions,
  StopOptions,
  SubscribeOptions,
  Subscription,
  SubscriptionHealth,
} from "./broker.ts";
import {
  BrokerError,
  InvalidArgumentError,
  NoSubscribersError,
  NotStartedError,
  QueueFullError,
  RequestTimeoutError,
} from "./errors.ts";
import {
  checkChannel,
  checkLogger,
  checkPublishOptions,
  checkRequestOptions,
  checkStopOptions,
  checkSubscribeArgs,
  duplicateNameError,
} from "./handler_support.ts";
import { checkBatch } from "./batch_entries.ts";
import { checkIdempotent, idempotentHandler } from "./idempotency.ts";
import { HandlerRunner, type RunnerHost, type Unsettled } from "./handler_runner.ts";
import { defaultLogger } from "./logger.ts";
import { Lifecycle } from "./lifecycle.ts";
import {
  ACCEPTED,
  Delivery,
  PendingRequest,
  SubscriptionState,
  WaitingPublish,
} from "./memory_subscription.ts";
import { Reporter } from "./reporter.ts";
import {
  backoffDelay,
  resolveBackoff,
  type ResolvedBackoff,
  resolveMaxDeliveries,
} from "./retry.ts";
import { RingQueue } from "./ring_queue.ts";
import { subscriptionHandle } from "./subscription.ts";
import { deadline } from "./timers.ts";

/**
 * Options of {@linkcode MemoryBroker}.
 *
 * @example
 * ```ts
 * import { MemoryBroker, type MemoryBrokerOptions } from "@opensecflow/eventbus";
 * const options: MemoryBrokerOptions = { maxQueueSize: 100, overflow: "reject" };
 * const broker = new MemoryBroker(options);
 * ```
 */
export interface MemoryBrokerOptions extends BrokerOptions {
  /** Messages each subscription may hold waiting; default 1000. */
  maxQueueSize?: number;
  /**
   * What `publish` does when a subscription's queue is full: `"wait"` (the
   * default) waits for room, which is backpressure; `"reject"` rejects with
   * `QueueFullError` and delivers to no subscription.
   */
  overflow?: "wait" | "reject";
}

/**
 * Counters of one subscription, as reported by {@linkcode MemoryBroker.stats}.
 *
 * @example
 * ```ts
 * import { MemoryBroker } from "@opensecflow/eventbus";
 * const broker = new MemoryBroker();
 * broker.subscribe("jobs", function worker() {});
 * const [sub] = broker.stats().subscriptions;
 * console.log(sub.channel, sub.name, sub.queued, sub.running, sub.waiting);
 * ```
 */
export interface MemorySubscriptionStats {
  /** Channel subscribed to. */
  readonly channel: string;
  /** Subscription name. */
  readonly name: string;
  /** Messages in its queue. */
  readonly queued: number;
  /** Publishes waiting for room in its queue. */
  readonly waiting: number;
  /** Handler calls in flight. */
  readonly running: number;
  /** Its concurrency limit. */
  readonly concurrency: number;
}

/**
 * What {@linkcode MemoryBroker.stats} returns: the common counters plus
 * per-subscription queue sizes.
 *
 * @example
 * ```ts
 * import { MemoryBroker } from "@opensecflow/eventbus";
 * const stats = new MemoryBroker().stats();
 * console.log(stats.running, stats.waiting, stats.pendingRequests, stats.subscriptions.length);
 * ```
 */
export interface MemoryBrokerStats extends BrokerStats {
  /** Handler calls in flight. */
  running: number;
  /** Publishes waiting for room in a full queue. */
  waiting: number;
  /** Messages waiting for a retry. */
  retrying: number;
  /** Requests waiting for a reply. */
  pendingRequests: number;
  /** One entry per subscription. */
  subscriptions: MemorySubscriptionStats[];
}

const DEFAULT_MAX_QUEUE_SIZE = 1000;
const DEFAULT_STOP_TIMEOUT = 10_000;
const DEFAULT_REQUEST_TIMEOUT = 5_000;
const EMPTY_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

interface CheckedOptions {
  readonly maxQueueSize: number;
  readonly reject: boolean;
  readonly maxDeliveries: number;
  readonly backoff: ResolvedBackoff;
}

function checkOptions(options: MemoryBrokerOptions | undefined): CheckedOptions {
  if (options === undefined) options = {};
  if (options === null || typeof options !== "object") {
    throw new InvalidArgumentError("options", "must be an object");
  }
  const { maxQueueSize, overflow, logger, onError } = options;
  if (
    maxQueueSize !== undefined &&
    (typeof maxQueueSize !== "number" || !Number.isSafeInteger(maxQueueSize) || maxQueueSize < 1)
  ) {
    throw new InvalidArgumentError(
      "maxQueueSize",
      `must be an integer >= 1, got ${String(maxQueueSize)}`,
    );
  }
  if (overflow !== undefined && overflow !== "wait" && overflow !== "reject") {
    throw new InvalidArgumentError(
      "overflow",
      `must be "wait" or "reject", got ${String(overflow)}`,
    );
  }
  if (logger !== undefined) checkLogger(logger);
  if (onError !== undefined && typeof onError !== "function") {
    throw new InvalidArgumentError("onError", `must be a function, got ${typeof onError}`);
  }
  return {
    maxQueueSize: maxQueueSize ?? DEFAULT_MAX_QUEUE_SIZE,
    reject: overflow === "reject",
    maxDeliveries: resolveMaxDeliveries(options.maxDeliveries, 1),
    backoff: resolveBackoff(options.retryBackoff),
  };
}

const MEMORY_DELIVERY: BrokerDelivery = Object.freeze({
  transport: "memory",
  guarantee: "at-most-once",
  description: "In memory (MemoryBroker): reaches the handlers of this process only; " +
    "at most once, since queued events are lost if the process ends.",
});

/**
 * A broker inside one process. Each subscription has its own bounded FIFO
 * queue and runs up to `concurrency` handler calls at once (default 1, which
 * keeps publish order). `publish` resolves once every subscription's queue
 * took the message; when a queue is full it waits for room (or rejects with
 * `QueueFullError` under `overflow: "reject"`). A message published to a
 * channel nobody subscribes to reaches nobody, as in any pub/sub system.
 *
 * A failed handler call is reported (logger, `onError`, an `error` event) and,
 * with `maxDeliveries` above 1, delivered again after `retryBackoff`.
 * `NackMessage` asks for another delivery within that budget; `RejectMessage`
 * and a budget used up drop the message, counted in `stats().dropped` and
 * dispatched as a `drop` event.
 *
 * `stop()` stops accepting publishes, lets queued, waiting-for-retry and
 * running handler calls finish within the timeout, then fires the handlers'
 * `context.signal` and counts what it gave up on in `stats().dropped`, each
 * drop dispatched as a `drop` event too.
 * `start()` after `stop()` consumes again.
 *
 * @example
 * ```ts
 * import { MemoryBroker } from "@opensecflow/eventbus";
 *
 * await using broker = new MemoryBroker();
 * broker.subscribe("orders", function audit(order: { id: string }) {
 *   console.log("order", order.id);
 * });
 * broker.subscribe("prices", function price(sku: string) {
 *   return sku === "A1" ? 12.5 : undefined;
 * });
 * await broker.start();
 * await broker.publish({ id: "A1" }, "orders");
 * console.log(await broker.request("A1", "prices", { timeout: 500 })); // 12.5
 * ```
 */
export class MemoryBroker extends BrokerBase {
  readonly #reporter: Reporter;
  readonly #maxQueueSize: number;
  readonly #reject: boolean;
  readonly #maxDeliveries: number;
  readonly #backoff: ResolvedBackoff;
  readonly #idPrefix = `mem-${crypto.randomUUID().slice(0, 8)}-`;
  readonly #channels = new Map<string, SubscriptionState[]>();
  readonly #requests = new Map<string, PendingRequest>();
  readonly #lifecycle: Lifecycle = new Lifecycle(this);
  /** Unsubscribed, with handler calls still in flight: `stop()` waits for them too. */
  readonly #closing = new Set<SubscriptionState>();
  readonly #host: RunnerHost<Delivery>;
  #sequence = 0;
  #anonymous = 0;
  #subscribers = 0;
  #published = 0;
  #consumed = 0;
  #errors = 0;
  #dropped = 0;

  /** Creates a stopped broker; throws `InvalidArgumentError` on a bad option. */
  constructor(options?: MemoryBrokerOptions) {
    super();
    const checked = checkOptions(options);
    this.#reporter = new Reporter(options?.logger ?? defaultLogger, options?.onError, this);
    this.#maxQueueSize = checked.maxQueueSize;
    this.#reject = checked.reject;
    this.#maxDeliveries = checked.maxDeliveries;
    this.#backoff = checked.backoff;
    this.#host = {
      taken: (delivery) => this.#admitWaiting(delivery.state),
      succeeded: (delivery, result) => this.#succeeded(delivery, result),
      unsettled: (delivery, outcome) => this.#unsettled(delivery, outcome),
    };
  }

  /** A listener's error goes to this broker's logger. */
  protected override reportListenerError(type: string, error: unknown): void {
    this.#reporter.log("error", `a "${type}" event listener threw`, error);
  }

  /** Current lifecycle state. */
  get state(): BrokerState {
    return this.#lifecycle.state;
  }

  /** At most once, to this process only: what is queued is lost when the process ends. */
  get delivery(): BrokerDelivery {
    return MEMORY_DELIVERY;
  }

  /** Starts consuming; idempotent; waits for a stop in progress, then starts again. */
  start(): Promise<void> {
    return this.#lifecycle.start(() => {
      for (const states of this.#channels.values()) {
        for (const state of states) state.runner.renew();
      }
      this.#reporter.log("info", "MemoryBroker started");
    });
  }

  /**
   * Stops accepting publishes and lets queued, retrying and running handler
   * calls finish within `timeout` ms (default 10000). What is still queued or
   * running then is dropped: counted in `stats().dropped`, reported, and the
   * running calls' `context.signal` fires. Pending requests reject.
   */
  stop(options?: StopOptions): Promise<void> {
    let timeout: number;
    try {
      timeout = checkStopOptions(options, DEFAULT_STOP_TIMEOUT);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#lifecycle.stop(() => this.#drainAndStop(timeout));
  }

  /**
   * Registers a handler on a channel, before or after `start()`. A handler
   * without a name (no `options.name`, anonymous function) is named
   * `anonymous#N`. `options.signal` unsubscribes when it aborts.
   */
  subscribe<T = unknown>(
    channel: string,
    handler: Handler<T>,
    options?: SubscribeOptions,
  ): Subscription {
    const checked = checkSubscribeArgs(channel, handler, options);
    const name = checked.name ?? `anonymous#${++this.#anonymous}`;
    if (this.#channels.get(channel)?.some((other) => other.name === name)) {
      throw duplicateNameError(channel, name);
    }
    const ttl = checkIdempotent(options?.idempotent);
    const runner = new HandlerRunner<Delivery>({
      channel,
      subscription: name,
      handler: ttl === undefined ? handler as Handler : idempotentHandler(handler as Handler, ttl),
      concurrency: checked.concurrency,
      reporter: this.#reporter,
      host: this.#host,
    });
    const state = new SubscriptionState(runner, this.#idPrefix);
    const states = this.#channels.get(channel);
    // Copy on write: a publish iterating the old list is never disturbed.
    this.#channels.set(channel, states === undefined ? [state] : [...states, state]);
    this.#subscribers++;
    return subscriptionHandle(channel, name, () => this.#unsubscribe(state), checked.signal);
  }

  /**
   * Puts the message in the queue of every subscription of `channel`;
   * resolves once all took it. Rejects with `NotStartedError` unless started,
   * `QueueFullError` under `overflow: "reject"` when a queue is full.
   */
  publish(message: unknown, channel: string, options?: PublishOptions): Promise<void> {
    if (this.#lifecycle.state !== "started") {
      return Promise.reject(this.#notStarted("publish"));
    }
    const states = this.#channels.get(channel);
    if (states === undefined || options !== undefined) {
      try {
        if (states === undefined) checkChannel(channel);
        checkPublishOptions(options);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    if (states === undefined) {
      this.#published++;
      // A reply sent by hand to a request's `replyTo`.
      if (this.#requests.size > 0) this.#requests.get(channel)?.reply(message);
      return ACCEPTED;
    }
    const headers = frozenHeaders(options);
    return this.#deliver(
      message,
      states,
      headers,
      options?.correlationId,
      options?.replyTo,
      undefined,
    );
  }

  /**
   * Puts every message in the queue of every subscription of its channel, in
   * order, all or nothing: the entries and options are checked and, under
   * `overflow: "reject"`, every queue must have room for all of the batch's
   * messages bound to it (else `QueueFullError`, and no queue gets any);
   * then all are queued at once. Under `overflow: "wait"` all are accepted
   * at once too, in line behind earlier waiting publishes, and the promise
   * resolves once every queue took them. Rejects with `NotStartedError`
   * unless started and `InvalidArgumentError` naming a bad entry.
   *
   * @example
   * ```ts
   * import { MemoryBroker } from "@opensecflow/eventbus";
   * await using broker = new MemoryBroker();
   * const seen: string[] = [];
   * broker.subscribe("steps", function record(step: string) {
   *   seen.push(step);
   * });
   * await broker.start();
   * await broker.publishBatch([{ message: "a", channel: "steps" }, { message: "b", channel: "steps" }]);
   * await broker.idle();
   * console.log(seen); // ["a", "b"]
   * ```
   */
  override publishBatch(entries: readonly BatchEntry[], options?: PublishOptions): Promise<void> {
    if (this.#lifecycle.state !== "started") {
      return Promise.reject(this.#notStarted("publish"));
    }
    try {
      checkBatch(entries, options);
      if (this.#reject) this.#checkRoom(entries);
    } catch (error) {
      return Promise.reject(error);
    }
    const headers = frozenHeaders(options);
    let waiting: Promise<void>[] | undefined;
    for (const { message, channel } of entries) {
      const states = this.#channels.get(channel);
      if (states === undefined) {
        this.#published++;
        if (this.#requests.size > 0) this.#requests.get(channel)?.reply(message);
        continue;
      }
      const accepted = this.#deliver(
        message,
        states,
        headers,
        options?.correlationId,
        options?.replyTo,
        undefined,
      );
      if (accepted !== ACCEPTED) (waiting ??= []).push(accepted);
    }
    return waiting === undefined ? ACCEPTED : Promise.all(waiting).then(() => undefined);
  }

  /** Refuses a batch unless every queue it reaches has room for all of its messages. */
  #checkRoom(entries: readonly BatchEntry[]): void {
    const max = this.#maxQueueSize;
    const needed = new Map<SubscriptionState, number>();
    for (const { channel } of entries) {
      for (const state of this.#channels.get(channel) ?? []) {
        const count = (needed.get(state) ?? 0) + 1;
        if (state.runner.queued + count > max) {
          throw new QueueFullError(state.channel, state.name, max);
        }
        needed.set(state, count);
      }
    }
  }

  /**
   * Publishes a request and resolves with the first handler's return value.
   * Rejects at once with `NoSubscribersError` when nobody subscribes to the
   * channel, with `RequestTimeoutError` after `timeout` ms (default 5000),
   * with `RequestFailedError` (its `cause` the handler's error) when every
   * handler failed, and with the signal's reason when `signal` aborts.
   */
  request<R = unknown>(message: unknown, channel: string, options?: RequestOptions): Promise<R> {
    if (this.#lifecycle.state !== "started") {
      return Promise.reject(this.#notStarted("request"));
    }
    let timeout: number;
    try {
      timeout = checkRequestOptions(channel, options, DEFAULT_REQUEST_TIMEOUT);
    } catch (error) {
      return Promise.reject(error);
    }
    const signal = options?.signal;
    const states = this.#channels.get(channel);
    if (states === undefined) return Promise.reject(new NoSubscribersError(channel));

    const request = new PendingRequest(`${this.#idPrefix}reply-${++this.#sequence}`, channel);
    request.outstanding = states.length;
    const promise = new Promise<R>((resolve, reject) => {
      request.resolve = resolve as (value: unknown) => void;
      request.reject = reject;
    });
    const onAbort = (): void => request.abort(signal?.reason);
    request.timer = setTimeout(
      () => request.abort(new RequestTimeoutError(channel, timeout)),
      timeout,
    );
    signal?.addEventListener("abort", onAbort, { once: true });
    request.cleanup = () => {
      clearTimeout(request.timer);
      signal?.removeEventListener("abort", onAbort);
      this.#requests.delete(request.inbox);
    };
    this.#requests.set(request.inbox, request);
    const headers = frozenHeaders(options);
    this.#deliver(
      message,
      states,
      headers,
      options?.correlationId ?? crypto.randomUUID(),
      request.inbox,
      request,
    ).catch((error) => request.abort(error));
    return promise;
  }

  /**
   * Resolves once nothing is queued, waiting for a retry or running in any
   * subscription, including work that handlers publish meanwhile. For tests
   * and graceful hand-offs; it does not stop anything.
   *
   * @example
   * ```ts
   * import { MemoryBroker } from "@opensecflow/eventbus";
   * await using broker = new MemoryBroker();
   * const seen: number[] = [];
   * broker.subscribe("n", function record(n: number) {
   *   seen.push(n);
   * });
   * await broker.start();
   * await broker.publish(1, "n");
   * await broker.idle();
   * console.assert(seen.length === 1);
   * ```
   */
  async idle(): Promise<void> {
    for (;;) {
      const busy = [...this.#channels.values()].flat().concat([...this.#closing])
        .filter((state) => !state.isIdle());
      if (busy.length === 0) return;
      await Promise.race(
        busy.map((state) =>
          state.runner.isIdle() && state.waiting === 0 ? state.nextRetry() : state.runner.whenIdle()
        ),
      );
    }
  }

  /**
   * Readiness: ok while started, with each subscription's queue.
   *
   * @example
   * ```ts
   * import { MemoryBroker } from "@opensecflow/eventbus";
   * await using broker = new MemoryBroker();
   * broker.subscribe("jobs", function worker() {});
   * await broker.start();
   * console.log((await broker.health()).subscriptions); // [{ channel: "jobs", subscription: "worker", queued: 0, running: 0 }]
   * ```
   */
  health(): Promise<BrokerHealth> {
    const state = this.#lifecycle.state;
    const subscriptions: SubscriptionHealth[] = [];
    for (const states of this.#channels.values()) {
      for (const { runner } of states) {
        subscriptions.push({
          channel: runner.channel,
          subscription: runner.subscription,
          queued: runner.queued,
          running: runner.running,
        });
      }
    }
    return Promise.resolve({
      ok: state === "started",
      state,
      subscriptions,
      ...(state === "started" ? {} : { error: `MemoryBroker is ${state}` }),
    });
  }

  /** Counters, queue sizes and in-flight work. */
  stats(): MemoryBrokerStats {
    let queued = 0;
    let running = 0;
    let waiting = 0;
    let retrying = 0;
    const subscriptions: MemorySubscriptionStats[] = [];
    for (const states of this.#channels.values()) {
      for (const state of states) {
        const runner = state.runner;
        queued += runner.queued;
        running += runner.running;
        waiting += state.waiting;
        retrying += state.retries?.size ?? 0;
        subscriptions.push({
          channel: state.channel,
          name: state.name,
          queued: runner.queued,
          waiting: state.waiting,
          running: runner.running,
          concurrency: runner.concurrency,
        });
      }
    }
    return {
      published: this.#published,
      consumed: this.#consumed,
      errors: this.#errors,
      dropped: this.#dropped,
      channels: this.#channels.size,
      subscribers: this.#subscribers,
      queued,
      running,
      waiting,
      retrying,
      pendingRequests: this.#requests.size,
      subscriptions,
    };
  }

  #notStarted(action: string): NotStartedError {
    return new NotStartedError("MemoryBroker", this.#lifecycle.state, action);
  }

  #deliver(
    message: unknown,
    states: SubscriptionState[],
    headers: Readonly<Record<string, string>>,
    correlationId: string | undefined,
    replyTo: string | undefined,
    request: PendingRequest | undefined,
  ): Promise<void> {
    const max = this.#maxQueueSize;
    if (this.#reject) {
      // All or nothing: no subscription gets the message unless all have room.
      for (let i = 0; i < states.length; i++) {
        const state = states[i];
        if (state.runner.queued >= max) {
          return Promise.reject(new QueueFullError(state.channel, state.name, max));
        }
      }
    }
    this.#published++;
    const sequence = ++this.#sequence;
    let waiting: WaitingPublish | undefined;
    for (let i = 0; i < states.length; i++) {
      const state = states[i];
      const delivery = new Delivery(
        state,
        message,
        sequence,
        headers,
        correlationId,
        replyTo,
        request,
      );
      if (state.runner.queued < max && (state.blocked === null || state.blocked.length === 0)) {
        state.runner.push(delivery);
      } else {
        // Behind earlier waiting publishes, so publish order is kept.
        waiting ??= new WaitingPublish();
        waiting.remaining++;
        delivery.waiting = waiting;
        (state.blocked ??= new RingQueue()).push(delivery);
      }
    }
    return waiting === undefined ? ACCEPTED : waiting.promise;
  }

  /** A worker took a delivery: the oldest publish waiting for room gets its place. */
  #admitWaiting(state: SubscriptionState): void {
    const blocked = state.blocked;
    if (blocked === null || blocked.length === 0) return;
    const admitted = blocked.shift()!;
    admitted.waiting!.settleOne();
    admitted.waiting = undefined;
    state.runner.push(admitted);
  }

  #succeeded(delivery: Delivery, result: unknown): void {
    this.#consumed++;
    if (delivery.request !== undefined) delivery.request.reply(result);
    else if (delivery.replyTo !== undefined && result !== undefined) {
      this.#sendReply(delivery, result);
    }
  }

  #unsettled(delivery: Delivery, outcome: Unsettled): void {
    const state = delivery.state;
    switch (outcome.kind) {
      case "error":
        this.#errors++;
        if (delivery.attempt < this.#maxDeliveries && state.active) {
          return this.#retry(delivery, backoffDelay(this.#backoff, delivery.attempt));
        }
        delivery.request?.failed(state.name, outcome.error);
        return;
      case "nack":
        if (delivery.attempt < this.#maxDeliveries && state.active) {
          return this.#retry(
            delivery,
            outcome.delay ?? backoffDelay(this.#backoff, delivery.attempt),
          );
        }
        return this.#drop(
          delivery,
          outcome.error,
          `refused (NackMessage) on each of its ${delivery.attempt} deliveries`,
        );
      case "reject":
        return this.#drop(delivery, outcome.error, `rejected: ${outcome.reason}`);
      case "release":
        return this.#drop(delivery, outcome.error, outcome.error.message);
    }
  }

  #drop(delivery: Delivery, error: Error, reason: string): void {
    this.#dropped++;
    this.#reporter.drop(delivery.channel, delivery.subscription, 1, reason);
    delivery.request?.failed(delivery.subscription, error);
  }

  /** Delivers again after `wait` ms; while stopping, at once, so the drain includes it. */
  #retry(delivery: Delivery, wait: number): void {
    delivery.attempt++;
    const state = delivery.state;
    if (this.#lifecycle.state !== "started" || wait <= 0) {
      state.runner.pushFront(delivery);
      return;
    }
    const retries = state.retries ??= new Map();
    const timer = setTimeout(() => {
      retries.delete(timer);
      state.runner.pushFront(delivery);
      state.retryFired();
    }, wait);
    retries.set(timer, delivery);
  }

  /** Puts every message waiting for a retry back in its queue now. */
  #flushRetries(state: SubscriptionState): void {
    const retries = state.retries;
    if (retries === null || retries.size === 0) return;
    for (const [timer, delivery] of retries) {
      clearTimeout(timer);
      state.runner.pushFront(delivery);
    }
    retries.clear();
    state.retryFired();
  }

  #sendReply(delivery: Delivery, result: unknown): void {
    this.publish(result, delivery.replyTo!, { correlationId: delivery.correlationId }).catch(
      (error) =>
        this.#reporter.log(
          "error",
          `reply of handler "${delivery.subscription}" to "${delivery.replyTo}" failed`,
          error,
        ),
    );
  }

  /**
   * Stops delivery at once and drops what is queued. Calls in flight are not
   * awaited, so a handler may unsubscribe itself; `stop()` still waits for
   * them, and their signal fires once they have finished.
   */
  #unsubscribe(state: SubscriptionState): Promise<void> {
    state.active = false;
    const states = this.#channels.get(state.channel);
    if (states !== undefined) {
      const rest = states.filter((other) => other !== state);
      if (rest.length === 0) this.#channels.delete(state.channel);
      else this.#channels.set(state.channel, rest);
    }
    this.#subscribers--;
    this.#dropQueued(state, "its subscription was closed");
    this.#closing.add(state);
    state.runner.whenIdle().then(() => this.#closing.delete(state));
    state.runner.abortWhenIdle("subscription closed");
    return ACCEPTED;
  }

  /** Empties a subscription's queue, retries and waiting publishes, and reports them. */
  #dropQueued(state: SubscriptionState, why: string): number {
    const dropped = state.runner.clear();
    if (state.blocked !== null) {
      for (const delivery of state.blocked.drain()) {
        // The other subscriptions may have taken it: the publish completes.
        delivery.waiting!.settleOne();
        delivery.waiting = undefined;
        dropped.push(delivery);
      }
    }
    if (state.retries !== null) {
      for (const [timer, delivery] of state.retries) {
        clearTimeout(timer);
        dropped.push(delivery);
      }
      state.retries.clear();
      state.retryFired();
    }
    for (const delivery of dropped) {
      delivery.request?.failed(state.name, new BrokerError(`request dropped: ${why}`));
    }
    if (dropped.length > 0) {
      this.#dropped += dropped.length;
      this.#reporter.drop(state.channel, state.name, dropped.length, why);
    }
    return dropped.length;
  }

  async #drainAndStop(timeout: number): Promise<void> {
    const states = [...this.#channels.values()].flat().concat([...this.#closing]);
    for (const state of states) this.#flushRetries(state);
    const timedOut = await deadline(
      Promise.all(states.map((state) => state.runner.whenIdle())).then(() => false),
      timeout,
      () => true,
    );
    if (timedOut) {
      let dropped = 0;
      let aborted = 0;
      for (const state of states) {
        if (state.isIdle()) continue;
        dropped += this.#dropQueued(state, "the broker stopped");
        const running = state.runner.abandon("broker stop timed out");
        if (running === 0) continue;
        aborted += running;
        this.#dropped += running;
        this.#reporter.drop(
          state.channel,
          state.name,
          running,
          "running handler calls abandoned: the stop timed out",
        );
      }
      this.#reporter.log(
        "warn",
        `MemoryBroker stop timed out after ${timeout} ms: dropped ${dropped} queued message(s) and ${aborted} running handler call(s), whose signal was aborted`,
      );
    }
    for (const request of [...this.#requests.values()]) {
      request.abort(new BrokerError("MemoryBroker stopped before a reply came"));
    }
    this.#reporter.log("info", "MemoryBroker stopped");
  }
}

/**
 * The name readers of the Python library know the in-memory broker by.
 *
 * @example
 * ```ts
 * import { AsyncQueueBroker } from "@opensecflow/eventbus";
 * await using broker = new AsyncQueueBroker();
 * await broker.start();
 * ```
 */
export const AsyncQueueBroker: typeof MemoryBroker = MemoryBroker;
/** The type of {@linkcode AsyncQueueBroker}: a {@linkcode MemoryBroker}. */
export type AsyncQueueBroker = MemoryBroker;

/** The headers a publish gives every handler: one frozen copy, shared. */
function frozenHeaders(options: PublishOptions | undefined): Readonly<Record<string, string>> {
  return options?.headers === undefined ? EMPTY_HEADERS : Object.freeze({ ...options.headers });
}

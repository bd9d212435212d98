/**
 * The in-memory broker: per-subscription bounded FIFO queues with
 * backpressure, per-subscription concurrency, graceful stop, request/reply
 * without leaks. Web standards only.
 *
 * @module
 */

import type {
  Broker,
  BrokerOptions,
  BrokerState,
  BrokerStats,
  Handler,
  HandlerFailure,
  PublisherDecorator,
  PublishOptions,
  RequestOptions,
  StopOptions,
  SubscribeOptions,
  SubscriberDecorator,
  Subscription,
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
  checkSubscribeArgs,
  checkTimeout,
  describeMessage,
  duplicateNameError,
  publisherDecorator,
  reportFailure,
  subscriberDecorator,
} from "./handler_support.ts";
import { defaultLogger, type Logger } from "./logger.ts";
import { LifecycleQueue } from "./lifecycle.ts";
import {
  ACCEPTED,
  Delivery,
  PendingRequest,
  SubscriptionState,
  WaitingPublish,
} from "./memory_subscription.ts";
import { RingQueue } from "./ring_queue.ts";

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
  /** Requests waiting for a reply. */
  pendingRequests: number;
  /** One entry per subscription. */
  subscriptions: MemorySubscriptionStats[];
}

const DEFAULT_MAX_QUEUE_SIZE = 1000;
const DEFAULT_STOP_TIMEOUT = 10_000;
const DEFAULT_REQUEST_TIMEOUT = 5_000;
const EMPTY_HEADERS: Readonly<Record<string, string>> = Object.freeze({});
function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === "object" || typeof value === "function") &&
    typeof (value as PromiseLike<unknown>).then === "function";
}

function validateOptions(options: MemoryBrokerOptions | undefined): MemoryBrokerOptions {
  if (options === undefined) return {};
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
  return options;
}

/**
 * A broker inside one process. Each subscription has its own bounded FIFO
 * queue and runs up to `concurrency` handler calls at once (default 1, which
 * keeps publish order). `publish` resolves once every subscription's queue
 * took the message; when a queue is full it waits for room (or rejects with
 * `QueueFullError` under `overflow: "reject"`). A message published to a
 * channel nobody subscribes to reaches nobody, as in any pub/sub system.
 *
 * `stop()` stops accepting publishes, lets queued and running handler calls
 * finish within the timeout, then fires the handlers' `context.signal` and
 * counts what it gave up on in `stats().dropped`. `start()` after `stop()`
 * consumes again.
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
export class MemoryBroker implements Broker {
  readonly #logger: Logger;
  readonly #onError: ((failure: HandlerFailure) => void) | undefined;
  readonly #maxQueueSize: number;
  readonly #reject: boolean;
  readonly #idPrefix = `mem-${crypto.randomUUID().slice(0, 8)}-`;
  readonly #channels = new Map<string, SubscriptionState[]>();
  readonly #requests = new Map<string, PendingRequest>();
  #state: BrokerState = "stopped";
  readonly #lifecycle = new LifecycleQueue();
  /** Unsubscribed, with handler calls still in flight: `stop()` waits for them too. */
  readonly #closing = new Set<SubscriptionState>();
  #sequence = 0;
  #anonymous = 0;
  #subscribers = 0;
  #published = 0;
  #consumed = 0;
  #errors = 0;
  #dropped = 0;

  /** Creates a stopped broker; throws `InvalidArgumentError` on a bad option. */
  constructor(options?: MemoryBrokerOptions) {
    const checked = validateOptions(options);
    this.#logger = checked.logger ?? defaultLogger;
    this.#onError = checked.onError;
    this.#maxQueueSize = checked.maxQueueSize ?? DEFAULT_MAX_QUEUE_SIZE;
    this.#reject = checked.overflow === "reject";
  }

  /** Current lifecycle state. */
  get state(): BrokerState {
    return this.#state;
  }

  /** Starts consuming; idempotent; waits for a stop in progress, then starts again. */
  start(): Promise<void> {
    return this.#lifecycle.run("start", () => {
      if (this.#state === "started") return ACCEPTED;
      for (const states of this.#channels.values()) {
        for (const state of states) {
          if (state.controller.signal.aborted) state.controller = new AbortController();
        }
      }
      this.#state = "started";
      this.#logger.info("MemoryBroker started");
      return ACCEPTED;
    });
  }

  /**
   * Stops accepting publishes and lets queued and running handler calls
   * finish within `timeout` ms (default 10000). What is still queued or
   * running then is dropped: counted in `stats().dropped`, logged, and the
   * running calls' `context.signal` fires. Pending requests reject.
   */
  stop(options?: StopOptions): Promise<void> {
    let timeout: number;
    try {
      if (options !== undefined && (options === null || typeof options !== "object")) {
        throw new InvalidArgumentError("options", "must be an object");
      }
      timeout = checkTimeout(options?.timeout, DEFAULT_STOP_TIMEOUT);
    } catch (error) {
      return Promise.reject(error);
    }
    // Refuse publishes from this call on, not from when the queued stop runs.
    if (this.#state === "started") this.#state = "stopping";
    return this.#lifecycle.run("stop", () => {
      if (this.#state === "stopped") return ACCEPTED;
      return this.#drainAndStop(timeout);
    });
  }

  /** Stops the broker at the end of an `await using` scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  /**
   * Registers a handler on a channel, before or after `start()`. A handler
   * without a name (no `options.name`, anonymous function) is named
   * `anonymous#N`.
   */
  subscribe<T = unknown>(
    channel: string,
    handler: Handler<T>,
    options?: SubscribeOptions,
  ): Subscription {
    const checked = checkSubscribeArgs(channel, handler, options);
    const name = checked.name ?? `anonymous#${++this.#anonymous}`;
    const concurrency = checked.concurrency;
    if (this.#channels.get(channel)?.some((other) => other.name === name)) {
      throw duplicateNameError(channel, name);
    }
    const state = new SubscriptionState(channel, name, handler, concurrency, this.#idPrefix);
    const states = this.#channels.get(channel);
    // Copy on write: a publish iterating the old list is never disturbed.
    this.#channels.set(channel, states === undefined ? [state] : [...states, state]);
    this.#subscribers++;
    return {
      channel,
      name,
      unsubscribe: (): Promise<void> => (state.closing ??= this.#unsubscribe(state)),
    };
  }

  /** Decorator form of {@linkcode MemoryBroker.subscribe}. */
  subscriber(channel: string, options?: SubscribeOptions): SubscriberDecorator {
    return subscriberDecorator(this, channel, options);
  }

  /** Decorator publishing the wrapped function's non-undefined result to `channel`. */
  publisher(channel: string, options?: PublishOptions): PublisherDecorator {
    return publisherDecorator(this, channel, options);
  }

  /**
   * Puts the message in the queue of every subscription of `channel`;
   * resolves once all took it. Rejects with `NotStartedError` unless started,
   * `QueueFullError` under `overflow: "reject"` when a queue is full.
   */
  publish(message: unknown, channel: string, options?: PublishOptions): Promise<void> {
    if (this.#state !== "started") {
      return Promise.reject(new NotStartedError("MemoryBroker", this.#state, "publish"));
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
    const headers = options?.headers === undefined
      ? EMPTY_HEADERS
      : Object.freeze({ ...options.headers });
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
   * Publishes a request and resolves with the first handler's return value.
   * Rejects at once with `NoSubscribersError` when nobody subscribes to the
   * channel, with `RequestTimeoutError` after `timeout` ms (default 5000),
   * with the handler's error when every handler failed, and with the
   * signal's reason when `signal` aborts.
   */
  request<R = unknown>(message: unknown, channel: string, options?: RequestOptions): Promise<R> {
    if (this.#state !== "started") {
      return Promise.reject(new NotStartedError("MemoryBroker", this.#state, "request"));
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

    const request = new PendingRequest(`${this.#idPrefix}reply-${++this.#sequence}`);
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
    const headers = options?.headers === undefined
      ? EMPTY_HEADERS
      : Object.freeze({ ...options.headers });
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

  /** Counters, queue sizes and in-flight work. */
  stats(): MemoryBrokerStats {
    let queued = 0;
    let running = 0;
    let waiting = 0;
    const subscriptions: MemorySubscriptionStats[] = [];
    for (const states of this.#channels.values()) {
      for (const state of states) {
        queued += state.queue.length;
        running += state.running;
        waiting += state.waiting;
        subscriptions.push({
          channel: state.channel,
          name: state.name,
          queued: state.queue.length,
          waiting: state.waiting,
          running: state.running,
          concurrency: state.concurrency,
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
      pendingRequests: this.#requests.size,
      subscriptions,
    };
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
        if (state.queue.length >= max) {
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
      if (state.queue.length < max && (state.blocked === null || state.blocked.length === 0)) {
        state.queue.push(delivery);
        if (state.running < state.concurrency) {
          state.running++;
          this.#work(state, state.generation);
        }
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

  /** A worker: runs queued deliveries of one subscription until its queue is empty. */
  async #work(state: SubscriptionState, generation: number): Promise<void> {
    // Handlers never run inside `publish`.
    await undefined;
    const queue = state.queue;
    while (state.generation === generation) {
      const delivery = queue.shift();
      if (delivery === undefined) break;
      if (state.blocked !== null && state.blocked.length > 0) {
        const admitted = state.blocked.shift()!;
        queue.push(admitted);
        admitted.waiting!.settleOne();
        admitted.waiting = undefined;
        // Publishes that waited for room never started a worker of their own.
        if (state.running < state.concurrency) {
          state.running++;
          this.#work(state, generation);
        }
      }
      let result: unknown;
      try {
        result = state.handler(delivery.message, delivery);
        if (isThenable(result)) result = await result;
      } catch (error) {
        if (state.generation !== generation) {
          this.#logger.debug(`abandoned handler "${state.name}" failed after stop`, error);
          return;
        }
        this.#errors++;
        this.#fail(delivery, error);
        continue;
      }
      // A stop that timed out gave up on this call and counted it as dropped.
      if (state.generation !== generation) return;
      this.#consumed++;
      if (delivery.request !== undefined) delivery.request.reply(result);
      else if (delivery.replyTo !== undefined && result !== undefined) {
        this.#sendReply(delivery, result);
      }
    }
    if (state.generation !== generation) return;
    if (--state.running === 0 && queue.length === 0) state.notifyIdle();
  }

  #fail(delivery: Delivery, error: unknown): void {
    const state = delivery.state;
    try {
      reportFailure(this.#logger, this.#onError, {
        error,
        channel: state.channel,
        subscription: state.name,
        messageId: delivery.messageId,
        eventType: describeMessage(delivery.message).type,
        attempt: 1,
      });
    } catch {
      // A logger that throws must not kill the worker.
    }
    delivery.request?.failed(error);
  }

  #sendReply(delivery: Delivery, result: unknown): void {
    this.publish(result, delivery.replyTo!, { correlationId: delivery.correlationId }).catch(
      (error) =>
        this.#logger.error(
          `reply of handler "${delivery.state.name}" to "${delivery.replyTo}" failed`,
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
    const dropped = this.#dropQueued(state, "its subscription was closed");
    if (dropped > 0) {
      this.#logger.warn(
        `unsubscribe of "${state.name}" on "${state.channel}" dropped ${dropped} queued message(s)`,
      );
    }
    this.#closing.add(state);
    state.whenIdle().then(() => {
      this.#closing.delete(state);
      state.controller.abort(new DOMException("subscription closed", "AbortError"));
    });
    return ACCEPTED;
  }

  /** Empties a subscription's queue and waiting publishes; returns how many it dropped. */
  #dropQueued(state: SubscriptionState, why: string): number {
    const queued = state.queue.drain();
    const blocked = state.blocked === null ? [] : state.blocked.drain();
    for (const delivery of queued) {
      delivery.request?.failed(new BrokerError(`request dropped: ${why}`));
    }
    for (const delivery of blocked) {
      // The other subscriptions may have taken it: the publish completes.
      delivery.waiting!.settleOne();
      delivery.waiting = undefined;
      delivery.request?.failed(new BrokerError(`request dropped: ${why}`));
    }
    const count = queued.length + blocked.length;
    this.#dropped += count;
    return count;
  }

  async #drainAndStop(timeout: number): Promise<void> {
    this.#state = "stopping";
    const states = [...this.#channels.values()].flat().concat([...this.#closing]);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = await Promise.race([
      Promise.all(states.map((state) => state.whenIdle())).then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(resolve, timeout, true))),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      let dropped = 0;
      let aborted = 0;
      for (const state of states) {
        if (state.isIdle()) continue;
        dropped += this.#dropQueued(state, "the broker stopped");
        aborted += state.running;
        this.#dropped += state.running;
        state.running = 0;
        state.generation++;
        state.controller.abort(new DOMException("broker stop timed out", "AbortError"));
        state.notifyIdle();
      }
      this.#logger.warn(
        `MemoryBroker stop timed out after ${timeout} ms: dropped ${dropped} queued message(s) and ${aborted} running handler call(s), whose signal was aborted`,
      );
    }
    for (const request of [...this.#requests.values()]) {
      request.abort(new BrokerError("MemoryBroker stopped before a reply came"));
    }
    this.#state = "stopped";
    this.#logger.info("MemoryBroker stopped");
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

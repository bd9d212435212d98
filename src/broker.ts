/**
 * The contract every broker implements, shaped after FastStream's brokers:
 * start/stop, subscribe (imperative and decorator), publish, publisher
 * (decorator), request/reply, stats and `await using`.
 *
 * @module
 */

import type { Logger } from "./logger.ts";

/** Lifecycle state of a broker. */
export type BrokerState = "stopped" | "starting" | "started" | "stopping";

/**
 * What a handler receives next to the message.
 *
 * @example
 * ```ts
 * import { MemoryBroker, type MessageContext } from "@opensecflow/eventbus";
 * await using broker = new MemoryBroker();
 * broker.subscribe("jobs", (job: string, ctx: MessageContext) => {
 *   console.log(ctx.channel, ctx.attempt, ctx.headers["x-tenant"]);
 * }, { name: "worker" });
 * ```
 */
export interface MessageContext {
  /** Channel the message arrived on. */
  readonly channel: string;
  /** Name of the subscription running the handler. */
  readonly subscription: string;
  /** The CloudEvent id for events, else an id the broker gave the message. */
  readonly messageId: string;
  /** Headers given to `publish`. */
  readonly headers: Readonly<Record<string, string>>;
  /** Correlation id given to `publish`, or set by `request`. */
  readonly correlationId: string | undefined;
  /** Where a reply goes, when the message is a request. */
  readonly replyTo: string | undefined;
  /** Delivery attempt, starting at 1; above 1 after a retry or redelivery. */
  readonly attempt: number;
  /** Fires when a graceful stop runs out of time, or the subscription is closed. */
  readonly signal: AbortSignal;
}

/**
 * A message handler. Its return value is the reply when the message is a
 * request; otherwise it is ignored (unless wrapped by a `publisher`).
 *
 * @example
 * ```ts
 * import type { Handler } from "@opensecflow/eventbus";
 * const double: Handler<number, number> = (n) => n * 2;
 * ```
 */
// deno-lint-ignore no-explicit-any
export type Handler<T = any, R = unknown> = (message: T, context: MessageContext) => R | Promise<R>;

/**
 * Options of `subscribe`.
 *
 * @example
 * ```ts
 * import type { SubscribeOptions } from "@opensecflow/eventbus";
 * const options: SubscribeOptions = { name: "billing", concurrency: 4 };
 * ```
 */
export interface SubscribeOptions {
  /**
   * Durable name of the subscription. Defaults to the handler's function name.
   * On durable brokers, instances sharing a name share the work.
   */
  name?: string;
  /** Handler calls in flight at once for this subscription; default 1 (keeps order). */
  concurrency?: number;
  /** Unsubscribes when it aborts. */
  signal?: AbortSignal;
  /**
   * Effectively-once handling: a CloudEvent whose (`source`, `id`) this
   * subscription already handled successfully within `ttl` ms (default one
   * day) is acknowledged without running, whoever published it twice.
   */
  idempotent?: boolean | { ttl?: number };
}

/**
 * A live subscription.
 *
 * @example
 * ```ts
 * import { MemoryBroker } from "@opensecflow/eventbus";
 * await using broker = new MemoryBroker();
 * const sub = broker.subscribe("news", function reader() {});
 * await sub.unsubscribe();
 * ```
 */
export interface Subscription extends AsyncDisposable {
  /** Channel subscribed to. */
  readonly channel: string;
  /** Durable name of the subscription. */
  readonly name: string;
  /**
   * Stops delivery to this handler at once. Calls already running are not
   * awaited, so a handler may unsubscribe itself; they finish on their own,
   * and `stop()` still waits for them. Idempotent. `await using` calls it too.
   */
  unsubscribe(): Promise<void>;
}

/**
 * Options of `consume`.
 *
 * @example
 * ```ts
 * import type { ConsumeOptions } from "@opensecflow/eventbus";
 * const options: ConsumeOptions = { name: "audit", concurrency: 1 };
 * ```
 */
export interface ConsumeOptions {
  /** Durable name of the subscription behind the stream (required). */
  name: string;
  /** Messages handed out before the reader asks for more; default 1 (keeps order). */
  concurrency?: number;
  /** Cancels the stream when it aborts. */
  signal?: AbortSignal;
}

/**
 * Options of `publish`.
 *
 * @example
 * ```ts
 * import type { PublishOptions } from "@opensecflow/eventbus";
 * const options: PublishOptions = { headers: { "x-tenant": "acme" }, correlationId: "c-1" };
 * ```
 */
export interface PublishOptions {
  /** String headers carried to the handler's context. */
  headers?: Record<string, string>;
  /** Correlation id carried to the handler's context. */
  correlationId?: string;
  /** Channel a reply should go to. */
  replyTo?: string;
}

/**
 * One message of a batch given to `publishBatch`.
 *
 * @example
 * ```ts
 * import type { BatchEntry } from "@opensecflow/eventbus";
 * const entries: BatchEntry[] = [
 *   { message: { sku: "A1" }, channel: "stock.reserved" },
 *   { message: { sku: "A1" }, channel: "stock.shipped" },
 * ];
 * ```
 */
export interface BatchEntry {
  /** The message, as `publish` takes it. */
  readonly message: unknown;
  /** Channel it goes to. */
  readonly channel: string;
}

/**
 * Options of `request`.
 *
 * @example
 * ```ts
 * import type { RequestOptions } from "@opensecflow/eventbus";
 * const options: RequestOptions = { timeout: 500 };
 * ```
 */
export interface RequestOptions {
  /** Milliseconds to wait for the reply; default 5000. */
  timeout?: number;
  /** String headers carried to the handler's context. */
  headers?: Record<string, string>;
  /** Correlation id; generated when absent. */
  correlationId?: string;
  /** Cancels the wait. */
  signal?: AbortSignal;
}

/**
 * Options of `stop`.
 *
 * @example
 * ```ts
 * import { MemoryBroker } from "@opensecflow/eventbus";
 * const broker = new MemoryBroker();
 * await broker.start();
 * await broker.stop({ timeout: 2_000 });
 * ```
 */
export interface StopOptions {
  /** Milliseconds to let queued and running handlers finish; default 10000. */
  timeout?: number;
}

/**
 * Counters every broker reports.
 *
 * @example
 * ```ts
 * import { MemoryBroker } from "@opensecflow/eventbus";
 * const stats = new MemoryBroker().stats();
 * console.log(stats.published, stats.consumed, stats.errors, stats.dropped);
 * ```
 */
export interface BrokerStats {
  /** Messages accepted by `publish`. */
  published: number;
  /** Handler calls that completed successfully. */
  consumed: number;
  /** Handler calls that failed. */
  errors: number;
  /** Messages accepted but never handled (e.g. still queued when a stop timed out). */
  dropped: number;
  /** Channels with at least one subscription. */
  channels: number;
  /** Subscriptions. */
  subscribers: number;
  /** Messages waiting in queues now. */
  queued: number;
}

/**
 * Readiness of one subscription, as {@linkcode BrokerHealth} lists it.
 *
 * @example
 * ```ts
 * import type { SubscriptionHealth } from "@opensecflow/eventbus";
 * const sub: SubscriptionHealth = { channel: "events.order.created", subscription: "charge", queued: 0 };
 * ```
 */
export interface SubscriptionHealth {
  /** Channel subscribed to. */
  readonly channel: string;
  /** Name of the subscription. */
  readonly subscription: string;
  /** Messages waiting in this process. */
  readonly queued?: number;
  /** Handler calls running in this process. */
  readonly running?: number;
  /** Entries of the stream not yet delivered to the subscription's group (Redis). */
  readonly lag?: number | null;
  /** Entries delivered to the group and not yet acknowledged (Redis). */
  readonly pending?: number;
}

/**
 * A broker's readiness, for liveness and readiness probes.
 *
 * @example
 * ```ts
 * import { MemoryBroker } from "@opensecflow/eventbus";
 * const broker = new MemoryBroker();
 * await broker.start();
 * const health = await broker.health();
 * console.log(health.ok, health.state); // true "started"
 * await broker.stop();
 * ```
 */
export interface BrokerHealth {
  /** Started and, for a networked broker, connected. */
  readonly ok: boolean;
  /** Lifecycle state. */
  readonly state: BrokerState;
  /** Whether the broker reaches its server (networked brokers). */
  readonly connected?: boolean;
  /** Round trip of a ping, in milliseconds (networked brokers). */
  readonly latencyMs?: number;
  /** Each subscription's readiness. */
  readonly subscriptions: readonly SubscriptionHealth[];
  /** Dead letters held per channel (brokers with dead letters). */
  readonly deadLetters?: Readonly<Record<string, number>>;
  /** What went wrong, when `ok` is false. */
  readonly error?: string;
}

/**
 * What a broker reports when a handler fails.
 *
 * @example
 * ```ts
 * import { MemoryBroker, type HandlerFailure } from "@opensecflow/eventbus";
 * const failures: HandlerFailure[] = [];
 * const broker = new MemoryBroker({ onError: (f) => failures.push(f) });
 * ```
 */
export interface HandlerFailure {
  /** What the handler threw or rejected with. */
  readonly error: unknown;
  /** Channel of the message. */
  readonly channel: string;
  /** Name of the subscription whose handler failed. */
  readonly subscription: string;
  /** CloudEvent id or broker message id. */
  readonly messageId: string;
  /** CloudEvent type, when the message is an event. */
  readonly eventType: string | undefined;
  /** Delivery attempt that failed, from 1. */
  readonly attempt: number;
}

/**
 * Exponential backoff between deliveries of a failed message.
 *
 * @example
 * ```ts
 * import type { RetryBackoff } from "@opensecflow/eventbus";
 * const backoff: RetryBackoff = { initial: 50, max: 5_000, factor: 3 };
 * ```
 */
export interface RetryBackoff {
  /** Delay before the second attempt; default 100. */
  initial?: number;
  /** Longest delay; default 30000. */
  max?: number;
  /** Growth per attempt; default 2. */
  factor?: number;
}

/**
 * Options every broker accepts.
 *
 * @example
 * ```ts
 * import { MemoryBroker, silentLogger } from "@opensecflow/eventbus";
 * const broker = new MemoryBroker({ logger: silentLogger, onError: (f) => console.log(f.subscription) });
 * ```
 */
export interface BrokerOptions {
  /** Where handler errors and lifecycle notes go; default: warnings and errors to the console. */
  logger?: Logger;
  /** Called for every failed handler call, after it is logged. */
  onError?: (failure: HandlerFailure) => void;
  /**
   * Deliveries of a message before it is given up on (dead-lettered on
   * durable brokers, dropped and counted in memory). A failure or a
   * `NackMessage` uses one. Default: 1 in memory (no retry), 5 on Redis.
   */
  maxDeliveries?: number;
  /** Wait between deliveries of a failed message; default 100 ms doubling up to 30 s. */
  retryBackoff?: RetryBackoff;
}

/**
 * Registers a handler when applied: the function form `broker.subscriber(ch)(fn)`
 * returns `fn` unchanged. As a decorator it works on static and instance
 * methods in both protocols: with TC39 decorators an instance is subscribed
 * as it is constructed; with legacy ones (`experimentalDecorators`) the
 * method is recorded on its class and `subscribeInstance(instance)`
 * subscribes each instance.
 *
 * @example
 * ```ts
 * import { MemoryBroker, type SubscriberDecorator } from "@opensecflow/eventbus";
 * await using broker = new MemoryBroker();
 * const onJob: SubscriberDecorator = broker.subscriber("jobs");
 * onJob(function runJob(job: string) {
 *   console.log("running", job);
 * });
 * ```
 */
export interface SubscriberDecorator {
  /** Function form, or a TC39 decorator on a static or instance method. */
  <H extends Handler>(handler: H, context?: ClassMethodDecoratorContext): H;
  /**
   * Legacy decorator (`experimentalDecorators`) on a static method (`target`
   * is the class, subscribed now) or an instance method (`target` is the
   * prototype; each instance is subscribed by `subscribeInstance`).
   */
  <M extends Handler>(
    target: object,
    key: string | symbol,
    descriptor: TypedPropertyDescriptor<M>,
  ): void;
}

/**
 * Wraps a function so that its non-undefined result is published to a channel.
 */
export type PublisherDecorator = <A extends unknown[], R>(
  fn: (...args: A) => R,
  context?: ClassMethodDecoratorContext,
) => (...args: A) => Promise<Awaited<R>>;

/**
 * How a broker delivers messages, as the broker describes itself. Contract
 * documents (`./asyncapi`) read it, so they state what the running
 * configuration does; a broker without it is documented as `unspecified`.
 *
 * @example
 * ```ts
 * import type { BrokerDelivery } from "@opensecflow/eventbus";
 * const delivery: BrokerDelivery = {
 *   transport: "my-queue",
 *   guarantee: "at-least-once",
 *   description: "My queue: acknowledged after the handler succeeded, retried on failure.",
 * };
 * ```
 */
export interface BrokerDelivery {
  /** Short name of the transport: `"memory"`, `"redis-stream"`, `"redis-pubsub"`, `"deno-kv"`... */
  readonly transport: string;
  /**
   * `"at-most-once"`: a message may be lost, never handled twice;
   * `"at-least-once"`: an accepted message is handled, possibly more than once.
   */
  readonly guarantee: "at-most-once" | "at-least-once";
  /** One sentence saying where messages go and what may happen to them. */
  readonly description: string;
}

/**
 * The broker contract. `MemoryBroker` and `RedisBroker` implement it, and one
 * contract test suite holds every implementation to it.
 *
 * @example
 * ```ts
 * import { type Broker, MemoryBroker } from "@opensecflow/eventbus";
 * const broker: Broker = new MemoryBroker();
 * broker.subscribe("greetings", function greet(name: string) {
 *   return `hello ${name}`;
 * });
 * await broker.start();
 * console.log(await broker.request("ada", "greetings")); // "hello ada"
 * await broker.stop();
 * ```
 */
export interface Broker extends EventTarget {
  /** Current lifecycle state. */
  readonly state: BrokerState;
  /** Starts consuming; idempotent; a stopped broker can start again. */
  start(): Promise<void>;
  /** Stops taking publishes, drains within the timeout, then closes. Idempotent. */
  stop(options?: StopOptions): Promise<void>;
  /** Registers a handler; works before and after `start()`. */
  subscribe<T = unknown>(
    channel: string,
    handler: Handler<T>,
    options?: SubscribeOptions,
  ): Subscription;
  /**
   * The messages of a channel as a `ReadableStream` (async-iterable): a
   * message is acknowledged when the reader asks for the next one; cancelling
   * the stream or leaving the loop unsubscribes, and the message in hand is
   * not acknowledged (durable brokers deliver it again).
   */
  consume<T = unknown>(channel: string, options: ConsumeOptions): ReadableStream<T>;
  /** Decorator form of `subscribe`. */
  subscriber(channel: string, options?: SubscribeOptions): SubscriberDecorator;
  /** Decorator publishing the wrapped function's non-undefined result to `channel`. */
  publisher(channel: string, options?: PublishOptions): PublisherDecorator;
  /** Publishes; resolves once the broker has accepted the message. */
  publish(message: unknown, channel: string, options?: PublishOptions): Promise<void>;
  /**
   * Publishes messages in order, all or nothing as far as the broker can
   * promise it: every message is checked (channel, options, encoding, size)
   * before any is written, so a refusal publishes none of them, and then
   * they are written together. Resolves once the broker accepted all of them.
   * What a failure of the write itself (after the checks) leaves behind is
   * each broker's own: see its `publishBatch`. Optional: the bus publishes
   * one message at a time on a broker without it.
   */
  publishBatch?(entries: readonly BatchEntry[], options?: PublishOptions): Promise<void>;
  /** Publishes a request and resolves with the first handler's return value. */
  request<R = unknown>(message: unknown, channel: string, options?: RequestOptions): Promise<R>;
  /** Counters. */
  stats(): BrokerStats;
  /** Readiness for probes; never rejects (a failure is reported in the result). */
  health?(): Promise<BrokerHealth>;
  /** What the broker guarantees, for contract documents; absent means unknown. */
  readonly delivery?: BrokerDelivery;
  /** `await using broker = ...` stops the broker at scope exit. */
  [Symbol.asyncDispose](): Promise<void>;
}

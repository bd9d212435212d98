/**
 * {@linkcode RedisBroker}: the `Broker` contract on Redis, through ioredis.
 * Stream mode (default) gives durable at-least-once delivery with consumer
 * groups, retries, claims of dead consumers' entries and dead letters;
 * pub/sub mode gives at-most-once fire-and-forget broadcast.
 *
 * @module
 */

import type { Redis } from "ioredis";
import type {
  Broker,
  BrokerState,
  ConsumeOptions,
  Handler,
  PublisherDecorator,
  PublishOptions,
  RequestOptions,
  StopOptions,
  SubscribeOptions,
  SubscriberDecorator,
  Subscription,
} from "../broker.ts";
import {
  BrokerError,
  InvalidArgumentError,
  NoSubscribersError,
  NotStartedError,
} from "../errors.ts";
import {
  checkChannel,
  checkPublishOptions,
  checkRequestOptions,
  checkSubscribeArgs,
  checkTimeout,
  duplicateNameError,
  publisherDecorator,
  subscriberDecorator,
} from "../handler_support.ts";
import { consumeStream, subscriptionHandle } from "../subscription.ts";
import { closeConnection, connectWithin, createConnection } from "./connection.ts";
import {
  type DeadLetter,
  listDeadLetters,
  replayDeadLetters as moveDeadLetters,
} from "./dead_letters.ts";
import { DeadlineQueue } from "./deadline_queue.ts";
import { type DecodedEntry, encodeEntry, entryBytes, toPubSubText } from "./entry_codec.ts";
import { deadLetterKey, groupName, pubsubKey, replyKey, streamKey } from "./keys.ts";
import {
  type RedisBrokerOptions,
  type ResolvedRedisOptions,
  resolveRedisOptions,
  safeError,
} from "./options.ts";
import { PubSubSubscription, SubscriberConnection } from "./pubsub.ts";
import { failureReplyText, replyText, RequestReply } from "./request_reply.ts";
import { newCounters, type RedisBrokerStats, type RedisCounters } from "./stats.ts";
import { StreamConsumer } from "./stream_consumer.ts";

const DEFAULT_STOP_TIMEOUT = 10_000;
const DEFAULT_REQUEST_TIMEOUT = 5_000;

interface SubscriptionRecord {
  readonly channel: string;
  readonly name: string;
  readonly handler: Handler;
  readonly concurrency: number;
  stream?: StreamConsumer;
  pubsub?: PubSubSubscription;
  /** Starting the subscription on a running broker. */
  starting?: Promise<void>;
  closing?: Promise<void>;
}

/**
 * Options of {@linkcode RedisBroker.deadLetters}.
 *
 * @example
 * ```ts
 * import type { DeadLettersOptions } from "@opensecflow/eventbus/redis";
 * const options: DeadLettersOptions = { count: 50 };
 * ```
 */
export interface DeadLettersOptions {
  /** Most dead letters to return, oldest first; default 100. */
  count?: number;
}

/**
 * Options of {@linkcode RedisBroker.replayDeadLetters}.
 *
 * @example
 * ```ts
 * import type { ReplayOptions } from "@opensecflow/eventbus/redis";
 * const options: ReplayOptions = { ids: ["1700000000000-0"] };
 * ```
 */
export interface ReplayOptions {
  /** Dead-letter ids to replay; default: all of the channel's. */
  ids?: string[];
}

/**
 * A broker on Redis. In stream mode (the default) each channel is a stream
 * (`${keyPrefix}stream:${channel}`), each subscription a consumer group
 * (`${group}:${name}`): instances sharing `group` and the subscription name
 * share the work, different names each get every event. An entry is
 * acknowledged only after its handler succeeded; failures are retried with
 * backoff and dead-lettered after `maxDeliveries`; entries of a consumer that
 * died are claimed after `claimIdleMs`. Credentials never appear in logs,
 * errors or stats.
 *
 * @example
 * ```ts
 * import { RedisBroker } from "@opensecflow/eventbus/redis";
 * import { CloudEvent } from "@opensecflow/eventbus";
 *
 * await using broker = new RedisBroker({ url: "redis://127.0.0.1:6379", group: "billing" });
 * broker.subscribe("orders", async function charge(event: CloudEvent) {
 *   console.log("charging", event.data);
 * });
 * await broker.start();
 * await broker.publish(
 *   new CloudEvent({ type: "order.created", source: "/shop", data: { orderId: "A1" } }),
 *   "orders",
 * );
 * ```
 */
export class RedisBroker extends EventTarget implements Broker {
  readonly #options: ResolvedRedisOptions;
  readonly #counters: RedisCounters = newCounters();
  readonly #subscriptions = new Set<SubscriptionRecord>();
  /** Unsubscribed subscriptions whose running calls are still finishing. */
  readonly #closing = new Set<Promise<void>>();
  readonly #deadlines: DeadlineQueue<(error: Error) => void>;
  readonly #requests: RequestReply;
  readonly #replyPrefix: string;
  /** Validated channels and the key each publishes to (bounded, so odd usage cannot grow it forever). */
  readonly #channelKeys = new Map<string, string>();
  #state: BrokerState = "stopped";
  #command: Redis | undefined;
  /** Acks, claims and dead letters of stream consumers, apart from the publishing flood. */
  #consumerCommand: Redis | undefined;
  #consumerCommandReady: Promise<void> | undefined;
  #subscriber: SubscriberConnection | undefined;
  #starting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;

  /** Validates the options (throws `InvalidArgumentError`); connects on `start()`. */
  constructor(options: RedisBrokerOptions = {}) {
    super();
    this.#options = resolveRedisOptions(options);
    const { publishTimeout, maskedUrl } = this.#options;
    this.#deadlines = new DeadlineQueue(publishTimeout, (reject, channel) =>
      reject(
        new BrokerError(
          `publish to "${channel}" was not accepted by Redis at ${maskedUrl} within ${publishTimeout} ms`,
        ),
      ));
    this.#replyPrefix = replyKey(this.#options.keyPrefix, "");
    this.#requests = new RequestReply(
      replyKey(this.#options.keyPrefix, this.#options.consumer),
      () => this.#subscriberConnection(),
    );
  }

  /** Current lifecycle state. */
  get state(): BrokerState {
    return this.#state;
  }

  /** Consumer name of this instance (given, or generated). */
  get consumer(): string {
    return this.#options.consumer;
  }

  /** Prefix of every key this broker touches. */
  get keyPrefix(): string {
    return this.#options.keyPrefix;
  }

  /** `"stream"` or `"pubsub"`. */
  get mode(): "stream" | "pubsub" {
    return this.#options.mode;
  }

  /**
   * Connects, creates every subscription's consumer group (or pub/sub
   * subscription) and starts consuming. Resolves once all exist, so an event
   * published afterwards is never missed. Rejects with `BrokerError` when
   * Redis cannot be reached within `connectTimeout`. Idempotent.
   */
  start(): Promise<void> {
    if (this.#state === "started") return Promise.resolve();
    if (this.#state === "starting") return this.#starting!;
    if (this.#state === "stopping") return this.#stopping!.then(() => this.start());
    this.#state = "starting";
    this.#starting = this.#start().then(
      () => {
        this.#state = "started";
        this.#options.logger.info(`RedisBroker started on ${this.#options.maskedUrl}`);
      },
      async (error) => {
        await this.#shutdown(Date.now());
        this.#state = "stopped";
        throw error;
      },
    );
    return this.#starting;
  }

  async #start(): Promise<void> {
    const command = createConnection(this.#options, "command", { enableAutoPipelining: true });
    this.#command = command;
    await connectWithin(command, this.#options, "command");
    try {
      await Promise.all([...this.#subscriptions].map((record) => this.#ensureStarted(record)));
    } catch (error) {
      if (error instanceof BrokerError) throw error;
      throw new BrokerError(
        `cannot start the subscriptions: ${safeError(error, this.#options.secrets).message}`,
        { cause: safeError(error, this.#options.secrets) },
      );
    }
  }

  #commandConnection(): Redis {
    if (this.#command === undefined) {
      throw new NotStartedError("RedisBroker", this.#state, "use Redis");
    }
    return this.#command;
  }

  #subscriberConnection(): SubscriberConnection {
    this.#subscriber ??= new SubscriberConnection(this.#options);
    return this.#subscriber;
  }

  #host() {
    return {
      options: this.#options,
      counters: this.#counters,
      command: () => this.#commandConnection(),
      consumerCommand: () => this.#consumerCommand ?? this.#commandConnection(),
      reply: (decoded: DecodedEntry, result: unknown) => this.#reply(decoded, result),
      replyFailure: (decoded: DecodedEntry, error: string) => this.#replyFailure(decoded, error),
    };
  }

  #ensureStarted(record: SubscriptionRecord): Promise<void> {
    record.starting ??= this.#startSubscription(record);
    return record.starting;
  }

  #logStartFailure(record: SubscriptionRecord, error: unknown): void {
    this.#options.logger.error(
      `subscription "${record.name}" on "${record.channel}" could not start: ${
        safeError(error, this.#options.secrets).message
      }`,
    );
  }

  #startSubscription(record: SubscriptionRecord): Promise<void> {
    const options = this.#options;
    if (options.mode === "pubsub") {
      record.pubsub ??= new PubSubSubscription(
        record.channel,
        record.name,
        record.handler,
        record.concurrency,
        this.#host(),
      );
      record.pubsub.start();
      return this.#subscriberConnection().listen(
        pubsubKey(options.keyPrefix, record.channel),
        record.pubsub.listener,
      );
    }
    const broadcast = options.delivery === "broadcast";
    record.stream ??= new StreamConsumer({
      channel: record.channel,
      name: record.name,
      handler: record.handler,
      concurrency: record.concurrency,
      stream: streamKey(options.keyPrefix, record.channel),
      group: groupName(options.group, record.name, broadcast ? options.consumer : undefined),
      deadLetterStream: deadLetterKey(options.keyPrefix, record.channel),
      broadcast,
    }, this.#host());
    const consumer = record.stream;
    // Written now, before any later publish of this broker: the group sees that publish.
    const group = consumer.ensureGroup();
    return Promise.all([group, this.#openConsumerCommand()]).then(() => consumer.start());
  }

  #openConsumerCommand(): Promise<void> {
    this.#consumerCommandReady ??= (async () => {
      const client = createConnection(this.#options, "command", { enableAutoPipelining: true });
      this.#consumerCommand = client;
      await connectWithin(client, this.#options, "command");
    })();
    return this.#consumerCommandReady;
  }

  /**
   * Stops a subscription. Delivery stops synchronously; with `drain` (a
   * broker stop) buffered messages are still handled until `deadline`,
   * without (an unsubscribe) they are left: pending for other instances in
   * stream mode, dropped in pub/sub mode.
   */
  async #stopSubscription(
    record: SubscriptionRecord,
    deadline: number,
    drain: boolean,
  ): Promise<void> {
    if (!drain) {
      record.stream?.close();
      record.pubsub?.close();
    }
    const stopping: Promise<void>[] = [];
    if (record.stream) stopping.push(record.stream.stop(deadline, drain));
    if (record.pubsub) {
      const pubsub = record.pubsub;
      const unlisten = this.#subscriber?.unlisten(
        pubsubKey(this.#options.keyPrefix, record.channel),
        pubsub.listener,
      );
      stopping.push(pubsub.stop(deadline, drain), unlisten ?? Promise.resolve());
    }
    await record.starting?.catch(() => {});
    record.starting = undefined;
    await Promise.all(stopping);
    // A start that completed while this stop waited for it is stopped too.
    if (record.stream) await record.stream.stop(deadline, drain);
  }

  /**
   * Stops reading, lets running handlers finish (and acknowledges them) until
   * `timeout` (default 10000 ms; then their `signal` aborts), leaves the rest
   * pending for other instances, rejects waiting requests and closes the
   * connections. Idempotent; `start()` works again afterwards.
   */
  stop(options?: StopOptions): Promise<void> {
    let timeout: number;
    try {
      timeout = checkTimeout(options?.timeout, DEFAULT_STOP_TIMEOUT);
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.#state === "stopped") return Promise.resolve();
    if (this.#state === "stopping") return this.#stopping!;
    if (this.#state === "starting") {
      return this.#starting!.then(() => this.stop(options), () => this.stop(options));
    }
    this.#state = "stopping";
    this.#stopping = this.#shutdown(Date.now() + timeout).finally(() => {
      this.#state = "stopped";
      this.#options.logger.info("RedisBroker stopped");
    });
    return this.#stopping;
  }

  async #shutdown(deadline: number): Promise<void> {
    await Promise.all(
      [...this.#subscriptions].map((record) =>
        this.#stopSubscription(record, deadline, true).catch((error) => {
          this.#options.logger.error(
            `stopping "${record.name}" on "${record.channel}" failed: ${
              safeError(error, this.#options.secrets).message
            }`,
          );
        })
      ),
    );
    if (this.#closing.size > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.all(this.#closing),
        new Promise((resolve) => (timer = setTimeout(resolve, Math.max(0, deadline - Date.now())))),
      ]);
      clearTimeout(timer);
    }
    this.#requests.close(new BrokerError("RedisBroker stopped before a reply came"));
    const subscriber = this.#subscriber;
    this.#subscriber = undefined;
    await subscriber?.close();
    // Publishes already accepted by the broker may still sit in ioredis's
    // auto-pipelining batch, which QUIT would overtake: let them reach Redis first.
    if (this.#deadlines.size > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.#deadlines.whenEmpty(),
        new Promise((resolve) => (timer = setTimeout(resolve, Math.max(0, deadline - Date.now())))),
      ]);
      clearTimeout(timer);
    }
    // Closed connections stay referenced: a late ack of an abandoned handler fails cleanly on them.
    this.#consumerCommandReady = undefined;
    await Promise.all([
      this.#consumerCommand && closeConnection(this.#consumerCommand),
      this.#command && closeConnection(this.#command),
    ]);
    this.#deadlines.expireAll();
  }

  /**
   * Registers a handler under a durable name (`options.name`, else the
   * function's name; an anonymous handler without a name throws
   * `InvalidArgumentError`). On a running broker its consumer group is created
   * at once and starts from now. `unsubscribe()` stops delivery at once (so a
   * handler may unsubscribe itself); running calls finish and are acknowledged
   * in the background, entries read but not started stay pending for other
   * instances, and `stop()` waits for those calls.
   */
  subscribe<T = unknown>(
    channel: string,
    handler: Handler<T>,
    options?: SubscribeOptions,
  ): Subscription {
    const { name, concurrency, signal } = checkSubscribeArgs(channel, handler, options);
    if (name === undefined) {
      throw new InvalidArgumentError(
        "name",
        'an anonymous handler needs a durable name: pass { name: "..." } or use a named function',
      );
    }
    for (const other of this.#subscriptions) {
      if (other.channel === channel && other.name === name) {
        throw duplicateNameError(channel, name);
      }
    }
    const record: SubscriptionRecord = {
      channel,
      name,
      handler: handler as Handler,
      concurrency,
    };
    this.#subscriptions.add(record);
    if (this.#state === "started") {
      // Starting now writes XGROUP CREATE at once: a publish right after subscribe() is seen.
      this.#ensureStarted(record).catch((error) => this.#logStartFailure(record, error));
    } else if (this.#state === "starting") {
      this.#starting!.then(() => {
        if (this.#state === "started" && this.#subscriptions.has(record)) {
          return this.#ensureStarted(record);
        }
      }).catch((error) => this.#logStartFailure(record, error));
    }
    return subscriptionHandle(channel, name, () => {
      if (record.closing !== undefined) return record.closing;
      record.closing = Promise.resolve();
      if (!this.#subscriptions.delete(record)) return record.closing;
      // Delivery stops now; running calls finish (and are acknowledged) in the background,
      // so a handler may unsubscribe itself. stop() still waits for them.
      const finished = this.#stopSubscription(record, Date.now() + DEFAULT_STOP_TIMEOUT, false)
        .catch((error) => {
          this.#options.logger.error(
            `unsubscribe of "${name}" on "${channel}" failed: ${
              safeError(error, this.#options.secrets).message
            }`,
          );
        });
      this.#closing.add(finished);
      finished.finally(() => this.#closing.delete(finished));
      return record.closing;
    }, signal);
  }

  /**
   * The messages of `channel` as a `ReadableStream`, acknowledged when the
   * reader asks for the next one; leaving the loop unsubscribes and leaves
   * the message in hand unacknowledged, so it is delivered again.
   *
   * @example
   * ```ts
   * import { RedisBroker } from "@opensecflow/eventbus/redis";
   * await using broker = new RedisBroker({ url: "redis://127.0.0.1:6379", keyPrefix: "doc:" });
   * const jobs = broker.consume<string>("jobs", { name: "worker" });
   * await broker.start();
   * await broker.publish("first", "jobs");
   * for await (const job of jobs) {
   *   console.log(job); // "first"
   *   break;
   * }
   * ```
   */
  consume<T = unknown>(channel: string, options: ConsumeOptions): ReadableStream<T> {
    checkChannel(channel);
    return consumeStream<T>(
      (handler, subscribe) => this.subscribe(channel, handler, subscribe),
      options,
    );
  }

  /** Decorator form of `subscribe`: `broker.subscriber("orders")(function handle(e) {})`. */
  subscriber(channel: string, options?: SubscribeOptions): SubscriberDecorator {
    return subscriberDecorator(this, channel, options);
  }

  /** Decorator publishing the wrapped function's non-undefined result to `channel`. */
  publisher(channel: string, options?: PublishOptions): PublisherDecorator {
    return publisherDecorator(this, channel, options);
  }

  /**
   * Publishes a message (a `CloudEvent` or any JSON value) to a channel and
   * resolves once Redis accepted it (XADD, or PUBLISH in pub/sub mode).
   * Rejects with `NotStartedError` unless started, `InvalidArgumentError` for
   * an oversize or unencodable message (nothing sent), and `BrokerError` when
   * Redis does not accept it within `publishTimeout`.
   */
  publish(message: unknown, channel: string, options?: PublishOptions): Promise<void> {
    return this.#publish(message, channel, options, false) as Promise<unknown> as Promise<void>;
  }

  /** Resolves with the number of receivers (1 for a stream) when `count`, else with undefined. */
  #publish(
    message: unknown,
    channel: string,
    options: PublishOptions | undefined,
    count: boolean,
  ): Promise<number | undefined> {
    if (this.#state !== "started") {
      return Promise.reject(new NotStartedError("RedisBroker", this.#state, "publish"));
    }
    let fields: string[];
    let key: string | undefined;
    try {
      key = this.#channelKeys.get(channel);
      if (key === undefined) {
        checkChannel(channel);
        key = channel.startsWith(this.#replyPrefix)
          ? channel
          : this.#options.mode === "pubsub"
          ? pubsubKey(this.#options.keyPrefix, channel)
          : streamKey(this.#options.keyPrefix, channel);
        if (this.#channelKeys.size < 10_000) this.#channelKeys.set(channel, key);
      }
      if (options !== undefined) checkPublishOptions(options);
      fields = encodeEntry(message, options);
      const limit = this.#options.maxMessageBytes;
      let chars = 0;
      for (let i = 0; i < fields.length; i++) chars += fields[i].length;
      // A UTF-16 unit is at most 3 UTF-8 bytes: most messages need no exact count.
      const bytes = chars * 3 <= limit ? chars : entryBytes(fields, limit);
      if (bytes > limit) {
        throw new InvalidArgumentError(
          "message",
          `encoded size ${bytes} bytes exceeds maxMessageBytes (${limit})`,
        );
      }
    } catch (error) {
      return Promise.reject(error);
    }
    const command = this.#command!;
    const options_ = this.#options;
    let sent: Promise<unknown>;
    if (options_.mode === "pubsub" || key === channel) {
      // Pub/sub mode, or a reply sent by hand to a request's replyTo: straight to the listener.
      sent = command.publish(key, toPubSubText(fields));
    } else if (options_.maxLen > 0) {
      sent = command.xadd(key, "MAXLEN", "~", options_.maxLen, "*", ...fields);
    } else {
      sent = command.xadd(key, "*", ...fields);
    }
    return new Promise<number | undefined>((resolve, reject) => {
      const ticket = this.#deadlines.add(reject, channel);
      sent.then((reply) => {
        if (!this.#deadlines.settle(ticket)) return;
        this.#counters.published++;
        resolve(count ? (typeof reply === "number" ? reply : 1) : undefined);
      }, (error) => {
        if (!this.#deadlines.settle(ticket)) return;
        const safe = safeError(error, options_.secrets);
        reject(new BrokerError(`publish to "${channel}" failed: ${safe.message}`, { cause: safe }));
      });
    });
  }

  /**
   * Publishes a request and resolves with the first handler's return value.
   * The reply comes over this instance's reply channel. Rejects with
   * `NoSubscribersError` when no consumer group exists on the channel (no
   * listener in pub/sub mode), `RequestTimeoutError` after `timeout` ms
   * (default 5000), `BrokerError` when every handler failed, and the signal's
   * reason when `signal` aborts.
   */
  request<R = unknown>(message: unknown, channel: string, options?: RequestOptions): Promise<R> {
    if (this.#state !== "started") {
      return Promise.reject(new NotStartedError("RedisBroker", this.#state, "request"));
    }
    let timeout: number;
    try {
      timeout = checkRequestOptions(channel, options, DEFAULT_REQUEST_TIMEOUT);
    } catch (error) {
      return Promise.reject(error);
    }
    const signal = options?.signal;
    const correlationId = options?.correlationId ?? crypto.randomUUID();
    const publishOptions: PublishOptions = {
      headers: options?.headers,
      correlationId,
      replyTo: this.#requests.channel,
    };
    const send = async (): Promise<number> => {
      if (this.#options.mode === "pubsub") {
        const receivers = await this.#publish(message, channel, publishOptions, true);
        if (receivers === 0) throw new NoSubscribersError(channel);
        // PUBLISH counts connections, not handlers (an instance may hold
        // several): failures never settle the request early; the timeout does.
        return Number.POSITIVE_INFINITY;
      }
      const groups = await this.#groupCount(channel);
      if (groups === 0) throw new NoSubscribersError(channel);
      await this.#publish(message, channel, publishOptions, true);
      return groups;
    };
    return this.#requests.request(channel, correlationId, timeout, signal, send) as Promise<R>;
  }

  async #groupCount(channel: string): Promise<number> {
    try {
      const groups = await this.#commandConnection().xinfo(
        "GROUPS",
        streamKey(this.#options.keyPrefix, channel),
      ) as unknown[];
      return groups.length;
    } catch (error) {
      if (error instanceof Error && /no such key/i.test(error.message)) return 0;
      const safe = safeError(error, this.#options.secrets);
      throw new BrokerError(`cannot look up the subscribers of "${channel}": ${safe.message}`, {
        cause: safe,
      });
    }
  }

  #reply(decoded: DecodedEntry, result: unknown): Promise<void> | void {
    const replyTo = decoded.replyTo!;
    if (replyTo.startsWith(this.#replyPrefix)) {
      if (decoded.correlationId === undefined || this.#command === undefined) return;
      // Sent even while stopping: the handler that finished during the drain still answers.
      return this.#command.publish(replyTo, replyText(decoded.correlationId, result)).then(
        () => undefined,
      );
    }
    if (result === undefined) return;
    if (this.#state !== "started") {
      this.#counters.dropped++;
      this.#options.logger.warn(
        `result for replyTo "${replyTo}" not published: the broker is ${this.#state}`,
      );
      return;
    }
    return this.publish(result, replyTo, { correlationId: decoded.correlationId });
  }

  #replyFailure(decoded: DecodedEntry, error: string): void {
    const replyTo = decoded.replyTo;
    if (
      replyTo === undefined || !replyTo.startsWith(this.#replyPrefix) ||
      decoded.correlationId === undefined || this.#command === undefined
    ) return;
    this.#command.publish(replyTo, failureReplyText(decoded.correlationId, error)).catch(
      (failure: unknown) => {
        this.#options.logger.warn(
          `failure reply to ${replyTo} was not sent: ${
            safeError(failure, this.#options.secrets).message
          }`,
        );
      },
    );
  }

  /**
   * Lists a channel's dead letters, oldest first: the reason, the attempts,
   * the original entry id and the message (decoded when possible).
   *
   * @example
   * ```ts
   * import { RedisBroker } from "@opensecflow/eventbus/redis";
   * await using broker = new RedisBroker({ keyPrefix: "docs:dlq:" });
   * await broker.start();
   * for (const letter of await broker.deadLetters("orders")) {
   *   console.log(letter.entryId, letter.attempts, letter.error);
   * }
   * ```
   */
  async deadLetters(channel: string, options?: DeadLettersOptions): Promise<DeadLetter[]> {
    checkChannel(channel);
    const count = options?.count ?? 100;
    if (!Number.isSafeInteger(count) || count < 1) {
      throw new InvalidArgumentError("count", `must be an integer >= 1, got ${String(count)}`);
    }
    if (this.#state !== "started") {
      throw new NotStartedError("RedisBroker", this.#state, "list dead letters");
    }
    try {
      return await listDeadLetters(
        this.#commandConnection(),
        deadLetterKey(this.#options.keyPrefix, channel),
        count,
      );
    } catch (error) {
      const safe = safeError(error, this.#options.secrets);
      throw new BrokerError(`cannot list dead letters of "${channel}": ${safe.message}`, {
        cause: safe,
      });
    }
  }

  /**
   * Publishes dead letters again onto their channel as fresh entries (every
   * subscription of the channel sees them again) and removes them from the
   * dead-letter stream. Without `ids`, replays all. Returns how many moved.
   *
   * @example
   * ```ts
   * import { RedisBroker } from "@opensecflow/eventbus/redis";
   * await using broker = new RedisBroker({ keyPrefix: "docs:replay:" });
   * await broker.start();
   * const moved = await broker.replayDeadLetters("orders");
   * console.log(`${moved} dead letters replayed`);
   * ```
   */
  async replayDeadLetters(channel: string, options?: ReplayOptions): Promise<number> {
    checkChannel(channel);
    const ids = options?.ids;
    if (ids !== undefined && (!Array.isArray(ids) || ids.some((id) => typeof id !== "string"))) {
      throw new InvalidArgumentError("ids", "must be an array of dead-letter ids");
    }
    if (this.#state !== "started") {
      throw new NotStartedError("RedisBroker", this.#state, "replay dead letters");
    }
    const { keyPrefix, maxLen } = this.#options;
    try {
      return await moveDeadLetters(
        this.#commandConnection(),
        deadLetterKey(keyPrefix, channel),
        streamKey(keyPrefix, channel),
        ids,
        maxLen > 0 ? ["MAXLEN", "~", maxLen] : [],
      );
    } catch (error) {
      const safe = safeError(error, this.#options.secrets);
      throw new BrokerError(`cannot replay dead letters of "${channel}": ${safe.message}`, {
        cause: safe,
      });
    }
  }

  /** Counters: `BrokerStats` plus retries, dead letters, claims and waiting requests. */
  stats(): RedisBrokerStats {
    const channels = new Set<string>();
    let queued = 0;
    for (const record of this.#subscriptions) {
      channels.add(record.channel);
      queued += record.stream?.queued ?? record.pubsub?.queued ?? 0;
    }
    return {
      ...this.#counters,
      channels: channels.size,
      subscribers: this.#subscriptions.size,
      queued,
      mode: this.#options.mode,
      pendingRequests: this.#requests.pending,
      publishing: this.#deadlines.size,
    };
  }

  /** `await using broker = new RedisBroker()` stops it at scope exit. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

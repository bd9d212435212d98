/**
 * {@linkcode RedisBroker}: the `Broker` contract on Redis, through ioredis.
 * Stream mode (default) gives durable at-least-once delivery with consumer
 * groups, retries, claims of dead consumers' entries and dead letters;
 * pub/sub mode gives at-most-once fire-and-forget broadcast.
 *
 * @module
 */

import { BrokerBase } from "../broker_base.ts";
import type { Redis } from "ioredis";
import type {
  BatchEntry,
  BrokerDelivery,
  BrokerHealth,
  BrokerState,
  Handler,
  PublishOptions,
  RequestOptions,
  StopOptions,
  SubscribeOptions,
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
  checkRequestOptions,
  checkStopOptions,
  checkSubscribeArgs,
  duplicateNameError,
} from "../handler_support.ts";
import { checkIdempotent } from "../idempotency.ts";
import { Lifecycle } from "../lifecycle.ts";
import { Reporter } from "../reporter.ts";
import { subscriptionHandle } from "../subscription.ts";
import { deadline } from "../timers.ts";
import { type HealthSubscription, redisHealth } from "./health.ts";
import { closeConnection, connectWithin, createConnection } from "./connection.ts";
import type { DeadLetter, DeadLettersOptions, ReplayOptions } from "../dead_letter.ts";
import { listDeadLetters, replayDeadLetters as moveDeadLetters } from "./dead_letters.ts";
import {
  attemptsKey,
  deadLetterKey,
  doneKeyPrefix,
  groupName,
  pubsubKey,
  replyKey,
  replyKeyPrefix,
  streamKey,
} from "./keys.ts";
import {
  type RedisBrokerOptions,
  type ResolvedRedisOptions,
  resolveRedisOptions,
} from "./options.ts";
import { Publisher } from "./publisher.ts";
import { PubSubChannel, type PubSubHost, PubSubSubscription } from "./pubsub.ts";
import { Replier, RequestReply } from "./request_reply.ts";
import { safeError } from "./secrets.ts";
import { newCounters, type RedisBrokerStats, type RedisCounters } from "./stats.ts";
import { type ConsumerHost, StreamConsumer } from "./stream_consumer.ts";
import { SubscriberConnection } from "./subscriber_connection.ts";

const DEFAULT_STOP_TIMEOUT = 10_000;
const DEFAULT_REQUEST_TIMEOUT = 5_000;
const DEFAULT_DEAD_LETTER_COUNT = 100;

interface SubscriptionRecord {
  readonly channel: string;
  readonly name: string;
  readonly handler: Handler;
  readonly concurrency: number;
  /** `idempotent` ttl (ms), stream mode; `undefined` when off. */
  readonly idempotentTtl: number | undefined;
  stream?: StreamConsumer;
  pubsub?: PubSubSubscription;
  /** Starting the subscription on a running broker. */
  starting?: Promise<void>;
  closing?: Promise<void>;
}

const STREAM_DELIVERY: BrokerDelivery = Object.freeze({
  transport: "redis-stream",
  guarantee: "at-least-once",
  description: "Redis stream with consumer groups (RedisBroker): at least once; an entry is " +
    "acknowledged only after its handler succeeded, retried on failure, then dead-lettered.",
});

const PUBSUB_DELIVERY: BrokerDelivery = Object.freeze({
  transport: "redis-pubsub",
  guarantee: "at-most-once",
  description:
    "Redis pub/sub (RedisBroker): at most once, to the instances subscribed at that moment.",
});

function checkOptionsObject(options: unknown): void {
  if (options !== undefined && (options === null || typeof options !== "object")) {
    throw new InvalidArgumentError("options", "must be an object");
  }
}

/**
 * A broker on Redis. In stream mode (the default) each channel is a stream
 * (`${keyPrefix}{${channel}}:stream`), each subscription a consumer group
 * (`${group}:${name}`): instances sharing `group` and the subscription name
 * share the work, different names each get every event. An entry is
 * acknowledged only after its handler succeeded (or threw `AckMessage`);
 * failures and `NackMessage` are delivered again with backoff and
 * dead-lettered after `maxDeliveries`, `RejectMessage` dead-letters at once;
 * entries of a consumer that died are claimed after `claimIdleMs`.
 * Credentials never appear in logs, errors or stats.
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
export class RedisBroker extends BrokerBase {
  readonly #options: ResolvedRedisOptions;
  readonly #counters: RedisCounters = newCounters();
  readonly #reporter: Reporter;
  readonly #lifecycle: Lifecycle = new Lifecycle(this);
  readonly #publisher: Publisher;
  readonly #requests: RequestReply;
  readonly #replier: Replier;
  readonly #subscriptions = new Set<SubscriptionRecord>();
  /** Unsubscribed subscriptions whose running calls are still finishing. */
  readonly #closing = new Set<Promise<void>>();
  /** Pub/sub mode: the local subscriptions of each channel. */
  readonly #pubsubChannels = new Map<string, PubSubChannel>();
  readonly #consumerHost: ConsumerHost;
  readonly #pubsubHost: PubSubHost;
  #command: Redis | undefined;
  /** Acks, claims and dead letters of stream consumers, apart from the publishing flood. */
  #consumerCommand: Redis | undefined;
  #consumerCommandReady: Promise<void> | undefined;
  #subscriber: SubscriberConnection | undefined;
  /** The command connection of the start in progress, once it is up. */
  #connected: Promise<void> | undefined;

  /** Validates the options (throws `InvalidArgumentError`); connects on `start()`. */
  constructor(options: RedisBrokerOptions = {}) {
    super();
    const resolved = resolveRedisOptions(options);
    this.#options = resolved;
    this.#reporter = new Reporter(resolved.logger, resolved.onError, this);
    this.#publisher = new Publisher(resolved, this.#counters);
    this.#requests = new RequestReply(
      replyKey(resolved.keyPrefix, resolved.consumer),
      () => this.#subscriberConnection(),
    );
    this.#replier = new Replier(
      replyKeyPrefix(resolved.keyPrefix),
      {
        send: (replyTo, text) => {
          const command = this.#command;
          return command && this.#publisher.publishText(command, replyTo, text);
        },
        started: () => this.#lifecycle.state === "started",
        publish: (message, channel, publishOptions) =>
          this.publish(message, channel, publishOptions),
      },
      this.#counters,
      this.#reporter,
      resolved.secrets,
    );
    this.#pubsubHost = {
      options: resolved,
      counters: this.#counters,
      reporter: this.#reporter,
      replier: this.#replier,
    };
    this.#consumerHost = {
      ...this.#pubsubHost,
      command: () => this.#commandConnection(),
      consumerCommand: () => this.#consumerCommand ?? this.#commandConnection(),
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

  /** Stream mode at least once (acknowledged after the handler); pub/sub mode at most once. */
  get delivery(): BrokerDelivery {
    return this.#options.mode === "stream" ? STREAM_DELIVERY : PUBSUB_DELIVERY;
  }

  /**
   * Connects, creates every subscription's consumer group (or pub/sub
   * subscription) and starts consuming. Resolves once all exist, so an event
   * published afterwards is never missed. Rejects with `BrokerError` when
   * Redis cannot be reached within `connectTimeout`. Idempotent; calls to
   * `start()` and `stop()` run one after another, the last one deciding the
   * final state.
   */
  start(): Promise<void> {
    return this.#lifecycle.start(() => this.#start());
  }

  async #start(): Promise<void> {
    const options = this.#options;
    // No auto-pipelining: commands go out in call order (a consumer group is created before
    // any later publish), and the publisher batches publishes itself.
    const command = createConnection(options, this.#reporter, "command", {
      enableAutoPipelining: false,
    });
    this.#command = command;
    this.#connected = connectWithin(command, options, "command");
    try {
      await this.#connected;
      await Promise.all([...this.#subscriptions].map((record) => this.#ensureStarted(record)));
    } catch (error) {
      await this.#shutdown(Date.now());
      if (error instanceof BrokerError) throw error;
      const safe = safeError(error, options.secrets);
      throw new BrokerError(`cannot start the subscriptions: ${safe.message}`, { cause: safe });
    }
    this.#reporter.log("info", `RedisBroker started on ${options.maskedUrl}`);
  }

  #commandConnection(): Redis {
    if (this.#command === undefined) {
      throw new NotStartedError("RedisBroker", this.#lifecycle.state, "use Redis");
    }
    return this.#command;
  }

  #subscriberConnection(): SubscriberConnection {
    this.#subscriber ??= new SubscriberConnection(this.#options, this.#reporter);
    return this.#subscriber;
  }

  #ensureStarted(record: SubscriptionRecord): Promise<void> {
    record.starting ??= this.#startSubscription(record);
    return record.starting;
  }

  #logStartFailure(record: SubscriptionRecord, error: unknown): void {
    this.#reporter.log(
      "error",
      `subscription "${record.name}" on "${record.channel}" could not start: ${
        safeError(error, this.#options.secrets).message
      }`,
    );
  }

  #startSubscription(record: SubscriptionRecord): Promise<void> {
    const options = this.#options;
    if (options.mode === "pubsub") {
      const subscription = record.pubsub ??= new PubSubSubscription(
        record.channel,
        record.name,
        record.handler,
        record.concurrency,
        this.#pubsubHost,
      );
      subscription.start();
      return this.#joinPubSubChannel(record.channel, subscription);
    }
    const broadcast = options.delivery === "broadcast";
    const group = groupName(options.group, record.name, broadcast ? options.consumer : undefined);
    const consumer = record.stream ??= new StreamConsumer({
      channel: record.channel,
      name: record.name,
      handler: record.handler,
      concurrency: record.concurrency,
      stream: streamKey(options.keyPrefix, record.channel),
      group,
      deadLetterStream: deadLetterKey(options.keyPrefix, record.channel),
      attemptsKey: attemptsKey(options.keyPrefix, record.channel, group),
      doneKeyPrefix: doneKeyPrefix(options.keyPrefix, record.channel, group),
      idempotentTtl: record.idempotentTtl,
      broadcast,
    }, this.#consumerHost);
    // Written now, before any later publish of this broker: the group sees that publish.
    const created = consumer.ensureGroup();
    return Promise.all([created, this.#openConsumerCommand()]).then(() => consumer.start());
  }

  #joinPubSubChannel(channel: string, subscription: PubSubSubscription): Promise<void> {
    let fanOut = this.#pubsubChannels.get(channel);
    if (fanOut === undefined) {
      fanOut = new PubSubChannel(channel, pubsubKey(this.#options.keyPrefix, channel), {
        ...this.#pubsubHost,
      });
      this.#pubsubChannels.set(channel, fanOut);
    }
    fanOut.add(subscription);
    // One listener per channel, whatever the number of local subscriptions.
    return this.#subscriberConnection().listen(fanOut.key, fanOut.listener);
  }

  #leavePubSubChannel(channel: string, subscription: PubSubSubscription): Promise<void> {
    const fanOut = this.#pubsubChannels.get(channel);
    if (fanOut === undefined || fanOut.remove(subscription) > 0) return Promise.resolve();
    this.#pubsubChannels.delete(channel);
    return this.#subscriber?.unlisten(fanOut.key, fanOut.listener) ?? Promise.resolve();
  }

  #openConsumerCommand(): Promise<void> {
    this.#consumerCommandReady ??= (async () => {
      const client = createConnection(this.#options, this.#reporter, "command", {
        enableAutoPipelining: true,
      });
      this.#consumerCommand = client;
      await connectWithin(client, this.#options, "command");
    })();
    return this.#consumerCommandReady;
  }

  /**
   * Stops a subscription. Delivery stops synchronously; with `drain` (a
   * broker stop) queued messages are still handled until `until`, without
   * (an unsubscribe) they are left: pending for other instances in stream
   * mode, dropped in pub/sub mode.
   */
  async #stopSubscription(
    record: SubscriptionRecord,
    until: number,
    drain: boolean,
  ): Promise<void> {
    const stopping: Promise<void>[] = [];
    if (!drain) {
      record.stream?.close();
      record.pubsub?.close();
      if (record.pubsub) stopping.push(this.#leavePubSubChannel(record.channel, record.pubsub));
    }
    if (record.stream) stopping.push(record.stream.stop(until, drain));
    if (record.pubsub) stopping.push(record.pubsub.stop(until, drain));
    await record.starting?.catch(() => {});
    record.starting = undefined;
    await Promise.all(stopping);
    // A start that completed while this stop waited for it is stopped too.
    if (record.stream) await record.stream.stop(until, drain);
  }

  /**
   * Stops reading, lets handlers in flight and messages already read finish
   * (and acknowledges them) until `timeout` (default 10000 ms; then their
   * `signal` aborts), leaves the rest pending for other instances, rejects
   * waiting requests and closes the connections. Idempotent; `start()` works
   * again afterwards.
   */
  stop(options?: StopOptions): Promise<void> {
    let timeout: number;
    try {
      timeout = checkStopOptions(options, DEFAULT_STOP_TIMEOUT);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#lifecycle.stop(async () => {
      await this.#shutdown(Date.now() + timeout);
      this.#reporter.log("info", "RedisBroker stopped");
    });
  }

  async #shutdown(until: number): Promise<void> {
    const remaining = (): number => Math.max(0, until - Date.now());
    await Promise.all(
      [...this.#subscriptions].map((record) =>
        this.#stopSubscription(record, until, true).catch((error) => {
          this.#reporter.log(
            "error",
            `stopping "${record.name}" on "${record.channel}" failed: ${
              safeError(error, this.#options.secrets).message
            }`,
          );
        })
      ),
    );
    if (this.#closing.size > 0) {
      await deadline(Promise.all(this.#closing), remaining(), () => undefined);
    }
    this.#connected = undefined;
    this.#requests.close(new BrokerError("RedisBroker stopped before a reply came"));
    const subscriber = this.#subscriber;
    this.#subscriber = undefined;
    this.#pubsubChannels.clear();
    await subscriber?.close();
    // Publishes already accepted by the broker may still sit in ioredis's
    // auto-pipelining batch, which QUIT would overtake: let them reach Redis first.
    if (this.#publisher.inFlight > 0) {
      await deadline(this.#publisher.whenSettled(), remaining(), () => undefined);
    }
    // Closed connections stay referenced: a late ack of an abandoned handler fails cleanly on them.
    this.#consumerCommandReady = undefined;
    await Promise.all([
      this.#consumerCommand && closeConnection(this.#consumerCommand),
      this.#command && closeConnection(this.#command),
    ]);
    this.#publisher.expireAll();
  }

  /**
   * Registers a handler under a durable name (`options.name`, else the
   * function's name; an anonymous handler without a name throws
   * `InvalidArgumentError`). On a running broker its consumer group is created
   * at once and starts from now. `unsubscribe()` (or `options.signal`
   * aborting) stops delivery at once, so a handler may unsubscribe itself;
   * running calls finish and are acknowledged in the background, entries read
   * but not started stay pending for other instances, and `stop()` waits for
   * those calls.
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
    const idempotentTtl = checkIdempotent(options?.idempotent);
    if (idempotentTtl !== undefined && this.#options.mode === "pubsub") {
      throw new InvalidArgumentError(
        "idempotent",
        'works in stream mode only: pub/sub mode delivers at most once, with nothing to de-duplicate (use mode "stream")',
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
      idempotentTtl,
    };
    this.#subscriptions.add(record);
    const state = this.#lifecycle.state;
    if (state === "started") {
      // Starting now writes XGROUP CREATE at once: a publish right after subscribe() is seen.
      this.#ensureStarted(record).catch((error) => this.#logStartFailure(record, error));
    } else if (state === "starting") {
      this.#connected?.then(() => {
        const now = this.#lifecycle.state;
        if ((now === "starting" || now === "started") && this.#subscriptions.has(record)) {
          return this.#ensureStarted(record);
        }
      }, () => {}).catch((error) => this.#logStartFailure(record, error));
    }
    return subscriptionHandle(channel, name, () => this.#unsubscribe(record), signal);
  }

  #unsubscribe(record: SubscriptionRecord): Promise<void> {
    if (record.closing !== undefined) return record.closing;
    record.closing = Promise.resolve();
    if (!this.#subscriptions.delete(record)) return record.closing;
    // Delivery stops now; running calls finish (and are acknowledged) in the background,
    // so a handler may unsubscribe itself. stop() still waits for them.
    const finished = this.#stopSubscription(record, Date.now() + DEFAULT_STOP_TIMEOUT, false)
      .catch((error) => {
        this.#reporter.log(
          "error",
          `unsubscribe of "${record.name}" on "${record.channel}" failed: ${
            safeError(error, this.#options.secrets).message
          }`,
        );
      });
    this.#closing.add(finished);
    finished.finally(() => this.#closing.delete(finished));
    return record.closing;
  }

  /**
   * Publishes a message (a `CloudEvent` or any JSON value) to a channel and
   * resolves once Redis accepted it (XADD, or PUBLISH in pub/sub mode).
   * Rejects with `NotStartedError` unless started, `InvalidArgumentError` for
   * an oversize or unencodable message (nothing sent), and `BrokerError` when
   * Redis does not accept it within `publishTimeout`.
   */
  publish(message: unknown, channel: string, options?: PublishOptions): Promise<void> {
    if (this.#lifecycle.state !== "started") {
      return Promise.reject(this.#notStarted("publish"));
    }
    return this.#publisher.publish(this.#command!, message, channel, options, false) as Promise<
      unknown
    > as Promise<void>;
  }

  /**
   * Publishes messages in order, all or nothing as far as Redis allows.
   * Every message is checked and encoded first: a bad channel or option, or
   * one above `maxMessageBytes`, rejects with `InvalidArgumentError` naming
   * the entry (`entries[2].message`) and nothing is sent. Then the batch is
   * written as one `MULTI`/`EXEC` transaction (XADDs, or PUBLISHes in
   * pub/sub mode), in the same pipeline as the other publishes of this turn:
   * consumers never see part of it, and when Redis refuses a command before
   * `EXEC` (e.g. out of memory) or the connection drops first, none is
   * written. Redis has no rollback: a command that fails while `EXEC` runs
   * leaves the others written, and the batch rejects with `BrokerError`. On
   * a cluster, the messages of each channel are one transaction; channels
   * in different slots are written separately, so such a failure can leave
   * some channels' messages written. A rejection for `publishTimeout` says
   * nothing about whether Redis wrote it (as for `publish`).
   *
   * @example
   * ```ts
   * import { RedisBroker } from "@opensecflow/eventbus/redis";
   * const broker = new RedisBroker({ url: "redis://127.0.0.1:6379", keyPrefix: "docs:batch:" });
   * await broker.start();
   * await broker.publishBatch([
   *   { message: { sku: "A1" }, channel: "stock.reserved" },
   *   { message: { sku: "A1" }, channel: "stock.shipped" },
   * ]);
   * await broker.stop();
   * ```
   */
  override publishBatch(entries: readonly BatchEntry[], options?: PublishOptions): Promise<void> {
    if (this.#lifecycle.state !== "started") {
      return Promise.reject(this.#notStarted("publish"));
    }
    return this.#publisher.publishAll(this.#command!, entries, options);
  }

  #notStarted(action: string): NotStartedError {
    return new NotStartedError("RedisBroker", this.#lifecycle.state, action);
  }

  /**
   * Publishes a request and resolves with the first handler's return value.
   * The reply comes over this instance's reply channel. Rejects with
   * `NoSubscribersError` when no consumer group exists on the channel (no
   * listener in pub/sub mode), `RequestTimeoutError` after `timeout` ms
   * (default 5000), `RequestFailedError` (naming the handler's error) when
   * every handler gave up on it, and the signal's reason when `signal`
   * aborts.
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
    const correlationId = options?.correlationId ?? crypto.randomUUID();
    const publishOptions: PublishOptions = {
      headers: options?.headers,
      correlationId,
      replyTo: this.#requests.channel,
    };
    const send = async (): Promise<number> => {
      const command = this.#commandConnection();
      if (this.#options.mode === "pubsub") {
        // Each listening instance answers once, success or failure, for all its handlers.
        const receivers = await this.#publisher.publish(
          command,
          message,
          channel,
          publishOptions,
          true,
        );
        if (receivers === 0) throw new NoSubscribersError(channel);
        return receivers!;
      }
      const groups = await this.#groupCount(channel);
      if (groups === 0) throw new NoSubscribersError(channel);
      await this.#publisher.publish(command, message, channel, publishOptions, false);
      return groups;
    };
    return this.#requests.request(
      channel,
      correlationId,
      timeout,
      options?.signal,
      send,
    ) as Promise<R>;
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
    checkOptionsObject(options);
    const count = options?.count ?? DEFAULT_DEAD_LETTER_COUNT;
    if (!Number.isSafeInteger(count) || count < 1) {
      throw new InvalidArgumentError("count", `must be an integer >= 1, got ${String(count)}`);
    }
    if (this.#lifecycle.state !== "started") throw this.#notStarted("list dead letters");
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
    checkOptionsObject(options);
    const ids = options?.ids;
    if (ids !== undefined && (!Array.isArray(ids) || ids.some((id) => typeof id !== "string"))) {
      throw new InvalidArgumentError("ids", "must be an array of dead-letter ids");
    }
    if (this.#lifecycle.state !== "started") throw this.#notStarted("replay dead letters");
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

  /**
   * Readiness for probes, never rejecting: connected or not, a ping's
   * latency, each stream subscription's consumer-group `lag` and `pending`
   * entries (`XINFO GROUPS`) next to what this instance has queued and
   * running, and the dead letters held per channel. Each round trip is
   * bounded by `connectTimeout`.
   *
   * @example
   * ```ts
   * import { RedisBroker } from "@opensecflow/eventbus/redis";
   * await using broker = new RedisBroker({ url: "redis://127.0.0.1:6379", keyPrefix: "doc:" });
   * broker.subscribe("orders", function audit() {});
   * await broker.start();
   * const health = await broker.health();
   * console.log(health.ok, health.latencyMs, health.subscriptions[0].lag, health.deadLetters);
   * ```
   */
  health(): Promise<BrokerHealth> {
    const options = this.#options;
    const subscriptions: HealthSubscription[] = [];
    for (const record of this.#subscriptions) {
      const consumer = record.stream ?? record.pubsub;
      subscriptions.push({
        channel: record.channel,
        subscription: record.name,
        queued: consumer?.queued ?? 0,
        running: consumer?.running ?? 0,
        stream: record.stream === undefined ? undefined : {
          key: record.stream.spec.stream,
          group: record.stream.spec.group,
          deadLetters: record.stream.spec.deadLetterStream,
        },
      });
    }
    return redisHealth({
      state: this.#lifecycle.state,
      command: this.#command,
      subscriptions,
      timeout: options.connectTimeout,
      secrets: options.secrets,
    });
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
      publishing: this.#publisher.inFlight,
    };
  }
}

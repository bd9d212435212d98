/**
 * {@linkcode KvBroker}: the `Broker` contract on the Deno KV queue, the
 * durable at-least-once delivery Deno Deploy offers without any server.
 *
 * @module
 */

import { BrokerBase } from "../broker_base.ts";
import { checkBatch, entryError } from "../batch_entries.ts";
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
  SubscriptionHealth,
} from "../broker.ts";
import { BrokerError, describeError, InvalidArgumentError, NotStartedError } from "../errors.ts";
import { HandlerRunner } from "../handler_runner.ts";
import {
  checkChannel,
  checkPublishOptions,
  checkRequestOptions,
  checkStopOptions,
  checkSubscribeArgs,
  duplicateNameError,
} from "../handler_support.ts";
import { checkIdempotent } from "../idempotency.ts";
import { Lifecycle } from "../lifecycle.ts";
import { Reporter } from "../reporter.ts";
import { deadline } from "../timers.ts";
import { subscriptionHandle } from "../subscription.ts";
import { KvConsumer } from "./consumer.ts";
import type { DeadLetter, DeadLettersOptions, ReplayOptions } from "../dead_letter.ts";
import { listDeadLetters, replayDeadLetters as moveDeadLetters } from "./dead_letters.ts";
import { Dispatcher, type QueueConsumer } from "./dispatcher.ts";
import { type Envelope, envelopeOverhead, MAX_VALUE_BYTES, utf8Length } from "./envelope.ts";
import { kvIdempotentHandler } from "./idempotency.ts";
import { KvKeys } from "./keys.ts";
import { type KvDelivery, KvSubscriptionState } from "./kv_subscription.ts";
import { kvOpener, type KvStore } from "./kv_store.ts";
import {
  checkKeyName,
  type KvBrokerOptions,
  MAX_NAME_LENGTH,
  type ResolvedKvOptions,
  resolveKvOptions,
} from "./options.ts";
import { OrderedWriter } from "./ordered_writer.ts";
import { unpark } from "./parking.ts";
import type { PlannedPublish } from "./commit_plan.ts";
import { Publisher } from "./publisher.ts";
import { encodeRecord } from "./record.ts";
import { Registry } from "./registry.ts";
import { isReplyChannel, KvRequests } from "./request_reply.ts";
import { type KvBrokerStats, type KvCounters, newKvCounters } from "./stats.ts";

const DEFAULT_STOP_TIMEOUT = 10_000;
const DEFAULT_REQUEST_TIMEOUT = 5_000;
/** Longest wait of a starting subscription for its batches moved back from parking. */
const UNPARK_WAIT_MS = 1_000;
/** A name of the longest length, to bound the routing fields of a message. */
const MAX_NAME_LENGTH_TEXT = "x".repeat(MAX_NAME_LENGTH);

function subscriptionKey(channel: string, name: string): string {
  return `${channel}\u0000${name}`;
}

const KV_DELIVERY: BrokerDelivery = Object.freeze({
  transport: "deno-kv",
  guarantee: "at-least-once",
  description: "Deno KV queue (KvBroker): at least once; a message is settled only after its " +
    "handler succeeded, retried on failure and delivered again after a crash, then dead-lettered.",
});

/**
 * A broker on the Deno KV queue. Each subscription (a channel and a durable
 * name) gets every message published to its channel, once per `group`: the
 * instances sharing a group share the work, as KV hands each queue message
 * to one isolate. The fan-out happens at publish time, in one atomic commit
 * holding one queue message per registered subscription; the registry of
 * subscriptions lives in KV, so a subscription made on any instance is seen
 * by publishers on every instance.
 *
 * A handler's message is settled only once the handler finished: a failure
 * is retried with backoff up to `maxDeliveries`, then dead-lettered; a
 * process that dies mid-handler leaves the message to KV, which delivers it
 * again (and writes it to the dead letters when the budget is used up).
 * A subscription at `concurrency: 1` on one instance gets the messages of
 * one publisher in publish order; retries, redeliveries after a crash and
 * parked messages can reorder.
 *
 * @example
 * ```ts
 * import { CloudEvent } from "@opensecflow/eventbus";
 * import { KvBroker } from "@opensecflow/eventbus/kv";
 *
 * await using broker = new KvBroker({ path: ":memory:", group: "billing" });
 * broker.subscribe("orders", async function charge(event: CloudEvent, context) {
 *   console.log("charging", event.data, "attempt", context.attempt);
 * });
 * await broker.start();
 * await broker.publish(
 *   new CloudEvent({ type: "order.created", source: "/shop", data: { orderId: "A1" } }),
 *   "orders",
 * );
 * ```
 */
export class KvBroker extends BrokerBase {
  readonly #options: ResolvedKvOptions;
  readonly #reporter: Reporter;
  readonly #keys: KvKeys;
  readonly #lifecycle: Lifecycle = new Lifecycle(this);
  readonly #counters: KvCounters = newKvCounters();
  readonly #writer = new OrderedWriter();
  readonly #requests: KvRequests;
  readonly #idPrefix = `kv-${crypto.randomUUID().slice(0, 8)}-`;
  /** Live subscriptions by channel and name. */
  readonly #subscriptions = new Map<string, KvSubscriptionState>();
  /** Unsubscribed subscriptions still finishing, by channel and name (the latest). */
  readonly #closing = new Map<string, KvSubscriptionState>();
  /** Every unsubscribed subscription still finishing. */
  readonly #closingAll = new Set<Promise<void>>();
  readonly #consumer: KvConsumer;
  /** This broker as the dispatcher of its database sees it. */
  readonly #queueConsumer: QueueConsumer;
  #kv: KvStore | undefined;
  #registry: Registry | undefined;
  #publisher: Publisher | undefined;
  #watch: ReadableStreamDefaultReader<unknown> | undefined;
  #unparking: Promise<void> | undefined;
  #unparkAgain = false;
  /** Bumped at each start: a subscription starts once per start. */
  #generation = 0;
  readonly #startedIn = new WeakMap<KvSubscriptionState, number>();
  #sequence = 0;
  /** Batches routed here are handled (from start until stop begins). */
  #accepting = false;

  /** Validates the options (throws `InvalidArgumentError`); opens the database on `start()`. */
  constructor(options?: KvBrokerOptions) {
    super();
    this.#options = resolveKvOptions(options);
    this.#reporter = new Reporter(this.#options.logger, options?.onError, this);
    this.#keys = new KvKeys(this.#options.keyPrefix);
    this.#requests = new KvRequests(() => this.#store(), this.#keys);
    this.#consumer = new KvConsumer({
      store: () => this.#store(),
      keys: this.#keys,
      group: this.#options.group,
      maxDeliveries: this.#options.maxDeliveries,
      backoff: this.#options.backoff,
      counters: this.#counters,
      reporter: this.#reporter,
      requests: this.#requests,
      publish: (message: unknown, channel: string, options: PublishOptions) =>
        this.publish(message, channel, options),
      started: () => this.#lifecycle.state === "started",
    });
    this.#queueConsumer = {
      keys: this.#keys,
      group: this.#options.group,
      receive: (envelope) => this.#receive(envelope),
      report: (message, error) => this.#reporter.log("error", message, error),
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

  /** At least once: settled after the handler succeeded, retried, then dead-lettered. */
  get delivery(): BrokerDelivery {
    return KV_DELIVERY;
  }

  /** The service name: instances sharing it share the work. */
  get group(): string {
    return this.#options.group;
  }

  /** First parts of every key the broker writes. */
  get keyPrefix(): readonly (string | number | bigint | boolean)[] {
    return this.#options.keyPrefix;
  }

  #store(): KvStore {
    if (this.#kv === undefined) {
      throw new NotStartedError("KvBroker", this.#lifecycle.state, "use the database");
    }
    return this.#kv;
  }

  /**
   * Opens the database (unless a `kv` was given), registers every
   * subscription, moves their parked messages back onto the queue and starts
   * listening. Rejects with `BrokerError` when the database cannot be
   * opened. Idempotent; a stopped broker starts again.
   */
  start(): Promise<void> {
    return this.#lifecycle.start(() => this.#start());
  }

  async #start(): Promise<void> {
    const kv = await this.#open();
    this.#kv = kv;
    try {
      const registry = new Registry(kv, this.#keys);
      await registry.reload();
      this.#registry = registry;
      this.#publisher = new Publisher({
        kv: () => this.#store(),
        keys: this.#keys,
        registry,
        writer: this.#writer,
        maxDeliveries: this.#options.maxDeliveries,
        backoff: this.#options.backoff,
        ready: () => this.#subscriptionsReady(),
      });
      // Listening first: a starting subscription waits for its batches moved back from parking.
      this.#accepting = true;
      Dispatcher.of(kv).attach(this.#queueConsumer);
      this.#generation++;
      for (const state of this.#subscriptions.values()) {
        state.runner.renew();
        this.#startSubscription(state);
      }
      await this.#subscriptionsReady();
      this.#startWatch(kv);
    } catch (error) {
      this.#accepting = false;
      Dispatcher.of(kv).detach(this.#queueConsumer);
      await this.#close(kv);
      throw new BrokerError(`KvBroker could not start: ${describeError(error).message}`, {
        cause: error,
      });
    }
    this.#reporter.log("info", "KvBroker started");
  }

  async #open(): Promise<KvStore> {
    if (this.#options.kv !== undefined) return this.#options.kv;
    const open = kvOpener();
    if (open === undefined) {
      throw new BrokerError(
        "KvBroker has no kv to work on: pass { kv } (on Node, from the @deno/kv package)",
      );
    }
    try {
      return await open(this.#options.path);
    } catch (error) {
      throw new BrokerError(
        `cannot open the KV database${
          this.#options.path === undefined ? "" : ` at ${this.#options.path}`
        }: ${describeError(error).message}`,
        { cause: error },
      );
    }
  }

  async #close(kv: KvStore): Promise<void> {
    this.#registry = undefined;
    this.#publisher = undefined;
    await this.#watch?.cancel().catch(() => {});
    this.#watch = undefined;
    if (this.#options.kv === undefined) {
      // Every listener callback must have returned: KV holds a message whose callback never did.
      await Dispatcher.of(kv).whenIdle();
      kv.close();
    }
    this.#kv = undefined;
  }

  /**
   * Stops taking publishes, commits the publishes already accepted, lets
   * running handlers finish within `timeout` ms (default 10000; then their
   * `signal` aborts) and parks the messages not handled, so another instance
   * (or this one after `start()`) handles them. Pending requests reject.
   * Closes the database it opened. Idempotent.
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

  async #drainAndStop(timeout: number): Promise<void> {
    const kv = this.#kv;
    if (kv === undefined) return;
    await this.#publisher?.whenIdle();
    this.#accepting = false;
    Dispatcher.of(kv).detach(this.#queueConsumer);
    await this.#subscriptionsReady();
    const states = [...this.#subscriptions.values()];
    for (const state of states) state.leftovers.push(...state.takeWaiting());
    const closing = [...this.#closing.values()];
    await this.#waitForHandlers([...states, ...closing], timeout);
    await Promise.allSettled([...this.#closingAll]);
    await Promise.all(states.map((state) => this.#consumer.parkLeftovers(state)));
    await this.#consumer.whenSettled();
    await this.#unparking;
    this.#requests.rejectAll(new BrokerError("KvBroker stopped before a reply came"));
    await this.#close(kv);
    this.#reporter.log("info", "KvBroker stopped");
  }

  /** Waits for running handler calls; gives up on them after `timeout` and parks their messages. */
  async #waitForHandlers(states: KvSubscriptionState[], timeout: number): Promise<void> {
    const idle = Promise.all(states.map((state) => state.runner.whenIdle())).then(() => false);
    const timedOut = await deadline(idle, timeout, () => true);
    if (!timedOut) return;
    let abandoned = 0;
    for (const state of states) {
      const running = this.#consumer.takeRunning(state);
      if (running.length === 0) continue;
      abandoned += running.length;
      state.leftovers.push(...running);
      state.runner.abandon("broker stop timed out");
    }
    this.#reporter.log(
      "warn",
      `KvBroker stop timed out after ${timeout} ms: gave up on ${abandoned} running handler call(s), whose signal was aborted; their messages are parked and will be delivered again`,
    );
  }

  /**
   * Registers a handler under a durable name (`options.name`, else the
   * function's name; an anonymous handler without a name throws
   * `InvalidArgumentError`). The subscription is registered in KV at
   * `start()` (at once on a running broker) and stays registered: messages
   * published while no instance runs it are parked until one does.
   * `unsubscribe()` stops delivery here at once; running calls finish in the
   * background and the messages waiting are parked. With `idempotent`, a
   * CloudEvent whose (`source`, `id`) the subscription handled successfully
   * on any instance within the time to live is acknowledged without running.
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
    checkKeyName(channel, "channel");
    checkKeyName(name, "name");
    const ttl = checkIdempotent(options?.idempotent);
    const key = subscriptionKey(channel, name);
    if (this.#subscriptions.has(key)) throw duplicateNameError(channel, name);
    const group = this.#options.group;
    const runner = new HandlerRunner<KvDelivery>({
      channel,
      subscription: name,
      handler: ttl === undefined ? handler as Handler : kvIdempotentHandler(
        handler as Handler,
        ttl,
        () => this.#store(),
        (digest) => this.#keys.handled(channel, group, name, digest),
        (message, error) => this.#reporter.log("error", message, error),
      ),
      concurrency,
      reporter: this.#reporter,
      host: this.#consumer,
    });
    const state = new KvSubscriptionState(runner);
    this.#subscriptions.set(key, state);
    this.#consumer.track(state);
    if (this.#publisher !== undefined) this.#startSubscription(state);
    return subscriptionHandle(channel, name, () => this.#unsubscribe(key, state), signal);
  }

  /** Registers the subscription and moves its parked messages back; arrivals wait meanwhile. */
  #startSubscription(state: KvSubscriptionState): void {
    if (this.#startedIn.get(state) === this.#generation) return;
    this.#startedIn.set(state, this.#generation);
    const key = subscriptionKey(state.channel, state.name);
    const predecessor = this.#closing.get(key);
    const target = { channel: state.channel, group: this.#options.group, name: state.name };
    state.held ??= [];
    const starting = (async () => {
      // The messages a closing predecessor gives back are parked first, then moved back here.
      await predecessor?.closed;
      await this.#registry!.register(target);
      const moved = await unpark(
        this.#store(),
        this.#keys,
        target,
        this.#writer,
        this.#options.backoff,
      );
      await state.awaitArrivals(moved, UNPARK_WAIT_MS);
    })().catch((error) => {
      this.#reporter.log(
        "error",
        `subscription "${state.name}" on "${state.channel}" could not start`,
        error,
      );
    }).finally(() => {
      if (state.starting === starting) state.starting = undefined;
      if (state.active) state.open();
    });
    state.starting = starting;
  }

  /** Resolves once the subscriptions being started are registered. */
  async #subscriptionsReady(): Promise<void> {
    for (;;) {
      const starting: Promise<void>[] = [];
      for (const state of this.#subscriptions.values()) {
        if (state.starting !== undefined) starting.push(state.starting);
      }
      if (starting.length === 0) return;
      await Promise.all(starting);
    }
  }

  #unsubscribe(key: string, state: KvSubscriptionState): Promise<void> {
    if (!state.active) return Promise.resolve();
    state.active = false;
    if (this.#subscriptions.get(key) === state) this.#subscriptions.delete(key);
    state.leftovers.push(...state.takeWaiting());
    const closed = (async () => {
      await state.starting;
      await state.runner.whenIdle();
      await this.#consumer.parkLeftovers(state);
    })();
    state.closed = closed;
    this.#closing.set(key, state);
    this.#closingAll.add(closed);
    closed.finally(() => {
      this.#closingAll.delete(closed);
      if (this.#closing.get(key) === state) this.#closing.delete(key);
      this.#consumer.untrack(state);
    });
    state.runner.abortWhenIdle("subscription closed");
    return Promise.resolve();
  }

  /**
   * Publishes a message (a `CloudEvent` or any JSON value) to a channel and
   * resolves once KV committed it, with one queue message for each
   * subscription registered on the channel. Rejects with `NotStartedError`
   * unless started, `InvalidArgumentError` for a message that is not
   * JSON-encodable or too large for a KV value (about 60 KiB), and
   * `BrokerError` when the commit fails.
   */
  publish(message: unknown, channel: string, options?: PublishOptions): Promise<void> {
    return this.#publish(message, channel, options).then(() => undefined);
  }

  /** Resolves with the number of subscriptions the message was enqueued for. */
  #publish(
    message: unknown,
    channel: string,
    options: PublishOptions | undefined,
  ): Promise<number> {
    if (this.#lifecycle.state !== "started") {
      return Promise.reject(new NotStartedError("KvBroker", this.#lifecycle.state, "publish"));
    }
    let encoded: PlannedPublish;
    try {
      checkChannel(channel);
      checkPublishOptions(options);
      if (isReplyChannel(channel)) return this.#reply(message, channel);
      encoded = this.#encode(message, channel, options);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#publisher!.publish(channel, encoded.record, encoded.bytes).then((targets) => {
      this.#counters.published++;
      return targets;
    });
  }

  /**
   * Publishes messages in order, all or nothing as far as KV allows. Every
   * message is checked and encoded first: a bad channel or option, or one
   * too large for a KV value, rejects with `InvalidArgumentError` naming the
   * entry (`entries[2].message`) and nothing is committed. Then the batch
   * goes into one atomic commit (with whatever else is waiting to be
   * published) when one holds it: KV's limits are 1000 mutations (one queue
   * message per subscription and per 256 messages or 64 KiB of a channel)
   * and 800 KiB; so it is committed whole or not at all. A larger batch is committed
   * in consecutive commits, in order, once every message was found to fit
   * one with its subscriptions (else it is refused whole, nothing
   * committed); a commit that fails then rejects the batch with the earlier
   * commits' messages published and the later ones not. Messages to a
   * request's reply channel are sent after the commit.
   *
   * @example
   * ```ts
   * import { KvBroker } from "@opensecflow/eventbus/kv";
   * await using broker = new KvBroker({ path: ":memory:" });
   * await broker.start();
   * await broker.publishBatch([
   *   { message: { sku: "A1" }, channel: "stock.reserved" },
   *   { message: { sku: "A1" }, channel: "stock.shipped" },
   * ]);
   * ```
   */
  override publishBatch(entries: readonly BatchEntry[], options?: PublishOptions): Promise<void> {
    if (this.#lifecycle.state !== "started") {
      return Promise.reject(new NotStartedError("KvBroker", this.#lifecycle.state, "publish"));
    }
    const publishes: PlannedPublish[] = [];
    const replies: BatchEntry[] = [];
    try {
      checkBatch(entries, options);
      for (let index = 0; index < entries.length; index++) {
        const { message, channel } = entries[index];
        try {
          if (isReplyChannel(channel)) replies.push(entries[index]);
          else publishes.push(this.#encode(message, channel, options));
        } catch (error) {
          throw entryError(error, index);
        }
      }
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#publisher!.publishAll(publishes).then(async () => {
      this.#counters.published += publishes.length;
      for (const { message, channel } of replies) await this.#reply(message, channel);
    });
  }

  /** A reply sent by hand to a request's replyTo. */
  #reply(message: unknown, channel: string): Promise<number> {
    return this.#requests.reply(channel, message).then(() => {
      this.#counters.published++;
      return 1;
    });
  }

  /** Encodes a message for `channel`, refusing one too large for a KV value. */
  #encode(message: unknown, channel: string, options: PublishOptions | undefined): PlannedPublish {
    checkKeyName(channel, "channel");
    const record = encodeRecord(message, `${this.#idPrefix}${++this.#sequence}`, options);
    const bytes = utf8Length(record);
    const limit = MAX_VALUE_BYTES -
      envelopeOverhead(this.#keys.prefix, channel, MAX_NAME_LENGTH_TEXT, MAX_NAME_LENGTH_TEXT);
    if (bytes > limit) {
      throw new InvalidArgumentError(
        "message",
        `encoded size ${bytes} bytes exceeds what one KV value holds with its routing (${limit} bytes)`,
      );
    }
    return { channel, record, bytes };
  }

  /**
   * Publishes a request and resolves with the first handler's return value.
   * The reply comes back through a KV key this broker watches (no polling).
   * Rejects with `NoSubscribersError` when no subscription is registered on
   * the channel, `RequestTimeoutError` after `timeout` ms (default 5000),
   * `RequestFailedError` when every subscription's handler gave up, and the
   * signal's reason when `signal` aborts. On a local database file shared
   * by several processes, only handlers in this process can answer (KV
   * notifies nothing across processes there).
   */
  request<R = unknown>(message: unknown, channel: string, options?: RequestOptions): Promise<R> {
    if (this.#lifecycle.state !== "started") {
      return Promise.reject(new NotStartedError("KvBroker", this.#lifecycle.state, "request"));
    }
    let timeout: number;
    try {
      timeout = checkRequestOptions(channel, options, DEFAULT_REQUEST_TIMEOUT);
    } catch (error) {
      return Promise.reject(error);
    }
    const correlationId = options?.correlationId ?? crypto.randomUUID();
    return this.#requests.request(
      channel,
      timeout,
      options?.signal,
      (replyTo) =>
        this.#publish(message, channel, { headers: options?.headers, correlationId, replyTo }),
    ) as Promise<R>;
  }

  /** A batch routed to this broker: hands it to its subscription, or declines. */
  #receive(envelope: Envelope): Promise<void> | undefined {
    if (!this.#accepting) return undefined;
    const state = this.#subscriptions.get(subscriptionKey(envelope.channel, envelope.subscription));
    if (state === undefined || !state.active) return undefined;
    return this.#consumer.receive(state, envelope);
  }

  // ---- watching ----------------------------------------------------------

  /** Watches the registry version (to refresh the fan-out) and the park counter (to unpark). */
  #startWatch(kv: KvStore): void {
    const reader = kv.watch([this.#keys.registry, this.#keys.parked]).getReader();
    this.#watch = reader;
    (async () => {
      let last: (string | null)[] | undefined;
      for (;;) {
        const next = await reader.read();
        if (next.done) return;
        const [registry, parked] = next.value;
        if (last !== undefined && registry.versionstamp !== last[0]) {
          this.#registry?.invalidate();
        }
        if (last === undefined || parked.versionstamp !== last[1]) this.#unparkAll();
        last = [registry.versionstamp, parked.versionstamp];
      }
    })().catch((error) => {
      if (this.#watch === reader) this.#reporter.log("error", "watching KV failed", error);
    });
  }

  /** Moves the parked messages of every running subscription back onto the queue. */
  #unparkAll(): void {
    if (this.#lifecycle.state !== "started") return;
    if (this.#unparking !== undefined) {
      this.#unparkAgain = true;
      return;
    }
    this.#unparking = (async () => {
      do {
        this.#unparkAgain = false;
        for (const state of [...this.#subscriptions.values()]) {
          if (!state.active || state.starting !== undefined) continue;
          if (this.#lifecycle.state !== "started") return;
          const target = { channel: state.channel, group: this.#options.group, name: state.name };
          await unpark(this.#store(), this.#keys, target, this.#writer, this.#options.backoff);
        }
      } while (this.#unparkAgain);
    })().catch((error) => {
      this.#reporter.log("error", "moving parked messages back failed", error);
    }).finally(() => (this.#unparking = undefined));
  }

  // ---- dead letters and stats -------------------------------------------

  /**
   * Lists a channel's dead letters, oldest first: the reason, the attempts,
   * the message id and the message (decoded when possible). Values found on
   * the queue that no `KvBroker` wrote are listed under `FOREIGN_CHANNEL`.
   *
   * @example
   * ```ts
   * import { KvBroker } from "@opensecflow/eventbus/kv";
   * await using broker = new KvBroker({ path: ":memory:" });
   * await broker.start();
   * for (const letter of await broker.deadLetters("orders")) {
   *   console.log(letter.entryId, letter.attempts, letter.error);
   * }
   * ```
   */
  async deadLetters(channel: string, options?: DeadLettersOptions): Promise<DeadLetter[]> {
    checkChannel(channel);
    if (options !== undefined && (options === null || typeof options !== "object")) {
      throw new InvalidArgumentError("options", "must be an object");
    }
    const count = options?.count ?? 100;
    if (!Number.isSafeInteger(count) || count < 1) {
      throw new InvalidArgumentError("count", `must be an integer >= 1, got ${String(count)}`);
    }
    if (this.#lifecycle.state !== "started") {
      throw new NotStartedError("KvBroker", this.#lifecycle.state, "list dead letters");
    }
    try {
      return await listDeadLetters(this.#store(), this.#keys, channel, count);
    } catch (error) {
      throw new BrokerError(
        `cannot list dead letters of "${channel}": ${describeError(error).message}`,
        { cause: error },
      );
    }
  }

  /**
   * Puts dead letters back on the queue, each for the subscription that gave
   * up on it (not the whole channel), as fresh messages with attempt 1, and
   * removes them from the dead letters. Without `ids`, replays all of the
   * channel's. Returns how many messages moved.
   *
   * @example
   * ```ts
   * import { KvBroker } from "@opensecflow/eventbus/kv";
   * await using broker = new KvBroker({ path: ":memory:" });
   * await broker.start();
   * const moved = await broker.replayDeadLetters("orders");
   * console.log(`${moved} dead letters replayed`);
   * ```
   */
  async replayDeadLetters(channel: string, options?: ReplayOptions): Promise<number> {
    checkChannel(channel);
    if (options !== undefined && (options === null || typeof options !== "object")) {
      throw new InvalidArgumentError("options", "must be an object");
    }
    const ids = options?.ids;
    if (ids !== undefined && (!Array.isArray(ids) || ids.some((id) => typeof id !== "string"))) {
      throw new InvalidArgumentError("ids", "must be an array of dead-letter ids");
    }
    if (this.#lifecycle.state !== "started") {
      throw new NotStartedError("KvBroker", this.#lifecycle.state, "replay dead letters");
    }
    try {
      return await moveDeadLetters(
        this.#store(),
        this.#keys,
        channel,
        ids,
        this.#options.maxDeliveries,
        this.#options.backoff,
      );
    } catch (error) {
      if (error instanceof InvalidArgumentError) throw error;
      throw new BrokerError(
        `cannot replay dead letters of "${channel}": ${describeError(error).message}`,
        { cause: error },
      );
    }
  }

  /**
   * Readiness for probes: `ok` while started and the database answers a
   * read; each subscription's waiting and running messages here, and the
   * dead letters of their channels (counted up to 1000 each). Never rejects.
   *
   * @example
   * ```ts
   * import { KvBroker } from "@opensecflow/eventbus/kv";
   * await using broker = new KvBroker({ path: ":memory:" });
   * broker.subscribe("jobs", function worker() {});
   * await broker.start();
   * const health = await broker.health();
   * console.log(health.ok, health.latencyMs, health.deadLetters); // true 0.2 { jobs: 0 }
   * ```
   */
  async health(): Promise<BrokerHealth> {
    const state = this.#lifecycle.state;
    const subscriptions: SubscriptionHealth[] = [...this.#subscriptions.values()].map((s) => ({
      channel: s.channel,
      subscription: s.name,
      queued: s.queued,
      running: s.runner.running,
    }));
    const kv = this.#kv;
    if (state !== "started" || kv === undefined) {
      return { ok: false, state, subscriptions, error: `KvBroker is ${state}` };
    }
    try {
      const start = performance.now();
      await kv.get(this.#keys.registry);
      const latencyMs = Math.round((performance.now() - start) * 1000) / 1000;
      const deadLetters: Record<string, number> = {};
      for (const { channel } of subscriptions) {
        if (channel in deadLetters) continue;
        deadLetters[channel] = (await listDeadLetters(kv, this.#keys, channel, 1000)).length;
      }
      return { ok: true, state, connected: true, latencyMs, subscriptions, deadLetters };
    } catch (error) {
      return {
        ok: false,
        state,
        connected: false,
        subscriptions,
        error: `the KV database did not answer: ${describeError(error).message}`,
      };
    }
  }

  /** Counters: `BrokerStats` plus retries, dead letters, parked batches and waiting requests. */
  stats(): KvBrokerStats {
    const channels = new Set<string>();
    let queued = 0;
    let running = 0;
    for (const state of this.#subscriptions.values()) {
      channels.add(state.channel);
      queued += state.queued;
      running += state.runner.running;
    }
    return {
      ...this.#counters,
      channels: channels.size,
      subscribers: this.#subscriptions.size,
      queued,
      running,
      pendingRequests: this.#requests.pending,
      publishing: this.#publisher?.waiting ?? 0,
    };
  }
}

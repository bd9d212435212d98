/**
 * Pub/sub mode: the transport rules around the shared
 * {@linkcode HandlerRunner}. Each channel is decoded once per message and
 * handed to every local subscription of it, each with a bounded queue.
 * At-most-once: a message published while this instance is disconnected is
 * never seen, and a message whose handler failed, refused it or gave it
 * back is dropped (counted and dispatched as a `drop` event), not retried.
 *
 * @module
 */

import type { Handler, MessageContext } from "../broker.ts";
import { BrokerError } from "../errors.ts";
import { CloudEvent } from "../event.ts";
import {
  HandlerRunner,
  type RunnerDelivery,
  type RunnerHost,
  type Unsettled,
} from "../handler_runner.ts";
import type { Reporter } from "../reporter.ts";
import { deadline } from "../timers.ts";
import { type DecodedEntry, decodePubSubText } from "./entry_codec.ts";
import type { ResolvedRedisOptions } from "./options.ts";
import type { Replier } from "./request_reply.ts";
import type { RedisCounters } from "./stats.ts";

/** What pub/sub subscriptions need from their broker. */
export interface PubSubHost {
  readonly options: ResolvedRedisOptions;
  readonly counters: RedisCounters;
  readonly reporter: Reporter;
  readonly replier: Replier;
}

/**
 * A request as this instance received it: every local subscription that took
 * it may answer; the requester learns of a failure only once all of them
 * gave up, so one failure reply stands for this whole instance.
 */
class ReceivedRequest {
  /** Subscriptions that took it and have not finished with it. */
  remaining = 0;
  #answered = false;

  constructor(readonly decoded: DecodedEntry) {}

  /** Whether this is the first answer (only the first is sent). */
  answer(): boolean {
    this.remaining--;
    if (this.#answered) return false;
    this.#answered = true;
    return true;
  }

  /** Whether every subscription has now given up without an answer. */
  gaveUp(): boolean {
    return --this.remaining === 0 && !this.#answered;
  }
}

/** One message on its way to one subscription; it is also the handler's context. */
class PubSubDelivery implements RunnerDelivery, MessageContext {
  readonly attempt = 1;
  readonly signal: AbortSignal;

  constructor(
    readonly owner: PubSubSubscription,
    readonly decoded: DecodedEntry,
    readonly sequence: number,
    readonly request: ReceivedRequest | undefined,
  ) {
    this.signal = owner.signal;
  }

  get message(): unknown {
    return this.decoded.message;
  }

  get context(): MessageContext {
    return this;
  }

  get channel(): string {
    return this.owner.channel;
  }

  get subscription(): string {
    return this.owner.name;
  }

  get headers(): Readonly<Record<string, string>> {
    return this.decoded.headers;
  }

  get correlationId(): string | undefined {
    return this.decoded.correlationId;
  }

  get replyTo(): string | undefined {
    return this.decoded.replyTo;
  }

  get messageId(): string {
    const message = this.decoded.message;
    if (message instanceof CloudEvent) return message.id;
    return this.decoded.correlationId ?? `${this.owner.idPrefix}${this.sequence}`;
  }
}

/**
 * The local subscriptions of one pub/sub channel: decodes each message once
 * and hands it to each of them.
 */
export class PubSubChannel {
  readonly channel: string;
  /** Redis pub/sub channel. */
  readonly key: string;
  /** Receives the raw messages of the channel. */
  readonly listener: (text: string) => void;
  readonly #host: PubSubHost;
  #subscriptions: PubSubSubscription[] = [];
  #sequence = 0;

  /** Creates the channel's fan-out; subscriptions join with {@linkcode PubSubChannel.add}. */
  constructor(channel: string, key: string, host: PubSubHost) {
    this.channel = channel;
    this.key = key;
    this.#host = host;
    this.listener = (text) => this.#receive(text);
  }

  /** Local subscriptions of the channel. */
  get size(): number {
    return this.#subscriptions.length;
  }

  /** Adds a subscription (once). */
  add(subscription: PubSubSubscription): void {
    if (this.#subscriptions.includes(subscription)) return;
    // Copy on write: a message being handed out keeps the list it started with.
    this.#subscriptions = [...this.#subscriptions, subscription];
  }

  /** Removes a subscription; returns how many are left. */
  remove(subscription: PubSubSubscription): number {
    this.#subscriptions = this.#subscriptions.filter((other) => other !== subscription);
    return this.#subscriptions.length;
  }

  #receive(text: string): void {
    const subscriptions = this.#subscriptions;
    let decoded: DecodedEntry;
    try {
      decoded = decodePubSubText(text);
    } catch (error) {
      this.#host.counters.dropped++;
      this.#host.reporter.drop(
        this.channel,
        undefined,
        1,
        `undecodable pub/sub message: ${error instanceof Error ? error.message : String(error)}`,
      );
      return;
    }
    const sequence = ++this.#sequence;
    if (decoded.replyTo === undefined || decoded.correlationId === undefined) {
      for (let i = 0; i < subscriptions.length; i++) {
        subscriptions[i].accept(decoded, sequence, undefined);
      }
      return;
    }
    const request = new ReceivedRequest(decoded);
    // Counted before any handler runs: the runner never calls one inside accept().
    for (const subscription of subscriptions) {
      if (subscription.accept(decoded, sequence, request)) request.remaining++;
    }
    if (request.remaining === 0) {
      this.#host.replier.fail(
        decoded,
        "(none)",
        new BrokerError(`no subscription of "${this.channel}" took the request`),
      );
    }
  }
}

/** One subscription in pub/sub mode: a bounded queue run by the shared runner. */
export class PubSubSubscription implements RunnerHost<PubSubDelivery> {
  readonly channel: string;
  readonly name: string;
  /** Prefix of the ids of messages that are neither events nor requests. */
  readonly idPrefix: string = `${crypto.randomUUID().slice(0, 8)}-`;
  readonly #host: PubSubHost;
  readonly #runner: HandlerRunner<PubSubDelivery>;
  #active = false;
  #closed = false;

  /** Creates the subscription; it takes messages once started. */
  constructor(
    channel: string,
    name: string,
    handler: Handler,
    concurrency: number,
    host: PubSubHost,
  ) {
    this.channel = channel;
    this.name = name;
    this.#host = host;
    this.#runner = new HandlerRunner<PubSubDelivery>({
      channel,
      subscription: name,
      handler,
      concurrency,
      reporter: host.reporter,
      host: this,
    });
  }

  /** Messages waiting for a handler slot. */
  get queued(): number {
    return this.#runner.queued;
  }

  /** Handler calls in flight. */
  get running(): number {
    return this.#runner.running;
  }

  /** The handlers' signal. */
  get signal(): AbortSignal {
    return this.#runner.signal;
  }

  /** Marks the subscription closed for good (unsubscribed): it never starts again. */
  close(): void {
    this.#closed = true;
    this.#active = false;
  }

  /** Starts taking messages (unless closed). */
  start(): void {
    if (this.#closed) return;
    this.#runner.renew();
    this.#active = true;
  }

  /**
   * Stops taking messages. With `drain` (a broker stop) the queue is handled
   * until `until`; without (an unsubscribe) it is dropped at once and only
   * the running calls are waited for. What is left then is dropped and the
   * running calls' signal fires.
   */
  async stop(until: number, drain = true): Promise<void> {
    this.#active = false;
    const runner = this.#runner;
    if (!drain) this.#dropQueued("its subscription was closed");
    const drained = await deadline(
      runner.whenIdle().then(() => true),
      until - Date.now(),
      () => false,
    );
    if (!drained) {
      this.#dropQueued("the broker stopped");
      const abandoned = runner.abandon("the broker stop timed out");
      if (abandoned > 0) {
        this.#host.counters.dropped += abandoned;
        this.#host.reporter.drop(
          this.channel,
          this.name,
          abandoned,
          "running handler calls abandoned: the stop timed out",
        );
      }
    } else if (!drain) {
      runner.abortWhenIdle("subscription closed");
    }
  }

  /** Takes a message unless stopped or full; returns whether it did. */
  accept(decoded: DecodedEntry, sequence: number, request: ReceivedRequest | undefined): boolean {
    if (!this.#active) return false;
    const runner = this.#runner;
    if (runner.queued >= this.#host.options.maxQueueSize) {
      this.#host.counters.dropped++;
      this.#host.reporter.drop(this.channel, this.name, 1, "its queue is full");
      return false;
    }
    runner.push(new PubSubDelivery(this, decoded, sequence, request));
    return true;
  }

  #dropQueued(why: string): void {
    const left = this.#runner.clear();
    if (left.length === 0) return;
    this.#host.counters.dropped += left.length;
    this.#host.reporter.drop(this.channel, this.name, left.length, why);
    const error = new BrokerError(`request dropped: ${why}`);
    for (const delivery of left) this.#gaveUp(delivery, error);
  }

  /** The handler succeeded: answer a request. */
  succeeded(delivery: PubSubDelivery, result: unknown): void | Promise<void> {
    this.#host.counters.consumed++;
    const decoded = delivery.decoded;
    if (decoded.replyTo === undefined) return;
    if (delivery.request !== undefined && !delivery.request.answer()) return;
    return this.#host.replier.reply(decoded, this.name, result);
  }

  /** At most once: whatever else happened, the message is dropped. */
  unsettled(delivery: PubSubDelivery, outcome: Unsettled): void {
    let reason: string;
    switch (outcome.kind) {
      case "error":
        this.#host.counters.errors++;
        reason = "its handler failed; pub/sub delivers at most once, so it is not retried";
        break;
      case "nack":
        reason = "refused (NackMessage); pub/sub delivers at most once, so it is not redelivered";
        break;
      case "reject":
        reason = `rejected: ${outcome.reason}`;
        break;
      case "release":
        reason = outcome.error.message;
        break;
    }
    this.#host.counters.dropped++;
    this.#host.reporter.drop(this.channel, this.name, 1, reason);
    this.#gaveUp(delivery, outcome.error);
  }

  #gaveUp(delivery: PubSubDelivery, error: unknown): void {
    const request = delivery.request;
    if (request !== undefined && request.gaveUp()) {
      this.#host.replier.fail(request.decoded, this.name, error);
    }
  }
}

/**
 * What every broker does the same way on top of its own `subscribe`,
 * `publish` and `stop`: the stream face of a subscription (`consume`), the
 * decorators, and `await using`.
 *
 * @module
 */

import type {
  BatchEntry,
  Broker,
  BrokerState,
  BrokerStats,
  ConsumeOptions,
  Handler,
  PublisherDecorator,
  PublishOptions,
  RequestOptions,
  StopOptions,
  SubscribeOptions,
  SubscriberDecorator,
  Subscription,
} from "./broker.ts";
import { checkBatch } from "./batch_entries.ts";
import { checkChannel, publisherDecorator, subscriberDecorator } from "./handler_support.ts";
import { GuardedEventTarget } from "./guarded_event_target.ts";
import { consumeStream } from "./subscription.ts";

/**
 * The base of every broker in this package: an `EventTarget` (whose listeners
 * are guarded: one that throws is logged, never crashes) that derives
 * `consume`, `subscriber`, `publisher` and `[Symbol.asyncDispose]` from the
 * transport methods a broker implements. A broker of your own can extend it
 * and run the shared contract suite.
 *
 * @example
 * ```ts
 * import { BrokerBase, MemoryBroker } from "@opensecflow/eventbus";
 * console.assert(new MemoryBroker() instanceof BrokerBase);
 * ```
 */
export abstract class BrokerBase extends GuardedEventTarget implements Broker {
  /** Current lifecycle state. */
  abstract get state(): BrokerState;
  /** Starts consuming; idempotent; a stopped broker can start again. */
  abstract start(): Promise<void>;
  /** Stops taking publishes, drains within the timeout, then closes. Idempotent. */
  abstract stop(options?: StopOptions): Promise<void>;
  /** Registers a handler; works before and after `start()`. */
  abstract subscribe<T = unknown>(
    channel: string,
    handler: Handler<T>,
    options?: SubscribeOptions,
  ): Subscription;
  /** Publishes; resolves once the broker has accepted the message. */
  abstract publish(message: unknown, channel: string, options?: PublishOptions): Promise<void>;
  /** Publishes a request and resolves with the first handler's return value. */
  abstract request<R = unknown>(
    message: unknown,
    channel: string,
    options?: RequestOptions,
  ): Promise<R>;
  /** Counters. */
  abstract stats(): BrokerStats;

  /**
   * Publishes messages in order. This default checks the entries and the
   * options, then publishes one message at a time, each once the one before
   * was accepted: a message the broker refuses rejects the batch with the
   * ones before it published. The brokers of this package override it to
   * check every message before writing any; a broker of your own can too.
   *
   * @example
   * ```ts
   * import { MemoryBroker } from "@opensecflow/eventbus";
   * await using broker = new MemoryBroker();
   * await broker.start();
   * await broker.publishBatch([
   *   { message: { sku: "A1" }, channel: "stock.reserved" },
   *   { message: { sku: "A1" }, channel: "stock.shipped" },
   * ]);
   * ```
   */
  async publishBatch(entries: readonly BatchEntry[], options?: PublishOptions): Promise<void> {
    for (const { message, channel } of checkBatch(entries, options)) {
      await this.publish(message, channel, options);
    }
  }

  /**
   * The messages of `channel` as a `ReadableStream`, acknowledged when the
   * reader asks for the next one. Leaving the loop unsubscribes; the message
   * in hand is not acknowledged (a durable broker delivers it again).
   *
   * @example
   * ```ts
   * import { MemoryBroker } from "@opensecflow/eventbus";
   * await using broker = new MemoryBroker();
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

  /** Stops the broker at the end of an `await using` scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

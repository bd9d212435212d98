/**
 * Pub/sub mode: one subscriber connection per broker shared by every
 * channel it listens to (and by the reply channel of requests), and a
 * bounded queue per subscription that runs the handler with its concurrency.
 * At-most-once: a message published while this instance is disconnected is
 * never seen, a failed handler is reported and not retried.
 *
 * @module
 */

import type { Redis } from "ioredis";
import type { Handler, MessageContext } from "../broker.ts";
import { describeMessage, reportFailure } from "../handler_support.ts";
import { closeConnection, connectWithin, createConnection } from "./connection.ts";
import { type DecodedEntry, decodePubSubText } from "./entry_codec.ts";
import type { ResolvedRedisOptions } from "./options.ts";
import type { RedisCounters } from "./stats.ts";

type Listener = (text: string) => void;

/** One ioredis connection in subscriber mode, shared by listeners of many channels. */
export class SubscriberConnection {
  readonly #options: ResolvedRedisOptions;
  readonly #listeners = new Map<string, Set<Listener>>();
  #client: Redis | undefined;
  #connecting: Promise<Redis> | undefined;

  /** Creates the holder; the connection opens on the first subscription. */
  constructor(options: ResolvedRedisOptions) {
    this.#options = options;
  }

  #connect(): Promise<Redis> {
    this.#connecting ??= (async () => {
      const client = createConnection(this.#options, "subscriber", { enableAutoPipelining: false });
      client.on("message", (channel: string, text: string) => {
        const listeners = this.#listeners.get(channel);
        if (listeners === undefined) return;
        for (const listener of listeners) listener(text);
      });
      try {
        await connectWithin(client, this.#options, "subscriber");
      } catch (error) {
        this.#connecting = undefined;
        throw error;
      }
      this.#client = client;
      return client;
    })();
    return this.#connecting;
  }

  /** Adds a listener; resolves once Redis confirmed the subscription. */
  async listen(key: string, listener: Listener): Promise<void> {
    let listeners = this.#listeners.get(key);
    const first = listeners === undefined;
    if (listeners === undefined) {
      listeners = new Set();
      this.#listeners.set(key, listeners);
    }
    listeners.add(listener);
    const client = await this.#connect();
    if (first) await client.subscribe(key);
  }

  /** Removes a listener; unsubscribes the channel when it was the last. */
  async unlisten(key: string, listener: Listener): Promise<void> {
    const listeners = this.#listeners.get(key);
    if (listeners === undefined || !listeners.delete(listener) || listeners.size > 0) return;
    this.#listeners.delete(key);
    if (this.#client?.status === "ready") await this.#client.unsubscribe(key).catch(() => {});
  }

  /** Channels with at least one listener. */
  get channels(): number {
    return this.#listeners.size;
  }

  /** Closes the connection; every listener is dropped. */
  async close(): Promise<void> {
    this.#listeners.clear();
    const connecting = this.#connecting;
    this.#connecting = undefined;
    this.#client = undefined;
    if (connecting === undefined) return;
    const client = await connecting.catch(() => undefined);
    if (client) await closeConnection(client);
  }
}

/** What a pub/sub subscription needs from its broker. */
export interface PubSubHost {
  readonly options: ResolvedRedisOptions;
  readonly counters: RedisCounters;
  reply(decoded: DecodedEntry, result: unknown): Promise<void> | void;
  replyFailure(decoded: DecodedEntry, error: string): void;
}

interface Queued {
  readonly decoded: DecodedEntry;
}

/** One subscription in pub/sub mode: a bounded queue drained with the subscription's concurrency. */
export class PubSubSubscription {
  readonly channel: string;
  readonly name: string;
  readonly #handler: Handler;
  readonly #concurrency: number;
  readonly #host: PubSubHost;
  #queue: Queued[] = [];
  #head = 0;
  #running = 0;
  /** Bumped when a stop abandons running calls; their late results are ignored. */
  #generation = 0;
  #active = false;
  #controller = new AbortController();
  #idle: (() => void) | undefined;
  #pumping = false;
  #closed = false;
  #sequence = 0;
  readonly #idPrefix = `${crypto.randomUUID().slice(0, 8)}-`;
  /** Receives the raw messages of the subscription's pub/sub channel. */
  readonly listener: Listener;

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
    this.#handler = handler;
    this.#concurrency = concurrency;
    this.#host = host;
    this.listener = (text) => this.#receive(text);
  }

  /** Messages waiting for a handler slot. */
  get queued(): number {
    return this.#queue.length - this.#head;
  }

  /** Marks the subscription closed for good (unsubscribed): it never starts again. */
  close(): void {
    this.#closed = true;
    this.#active = false;
  }

  /** Starts taking messages (unless closed). */
  start(): void {
    if (this.#closed) return;
    this.#active = true;
    this.#controller = new AbortController();
  }

  /** Stops taking messages, drains the queue until `deadline`, then counts the rest as dropped. */
  /**
   * Stops taking messages. With `drain` (a broker stop) the queue is handled
   * until `deadline`; without (an unsubscribe) it is dropped at once and only
   * the running calls are waited for. What is left is counted as dropped.
   */
  async stop(deadline: number, drain = true): Promise<void> {
    this.#active = false;
    if (!drain) this.#dropQueued("its subscription was closed");
    if (this.#running > 0 || this.queued > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#idle = resolve;
        timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
      });
      clearTimeout(timer);
      this.#idle = undefined;
    }
    if (this.#running > 0 || this.queued > 0) this.#controller.abort();
    if (this.#running > 0) {
      // Given up on: counted as dropped, their late results ignored, their slots freed.
      this.#host.counters.dropped += this.#running;
      this.#host.options.logger.warn(
        `${this.#running} running handler call(s) of "${this.name}" abandoned: the stop timed out`,
      );
      this.#running = 0;
      this.#generation++;
    }
    this.#dropQueued("the broker stopped");
    if (!drain) this.#controller.abort();
  }

  #dropQueued(why: string): void {
    const left = this.queued;
    this.#queue = [];
    this.#head = 0;
    if (left === 0) return;
    this.#host.counters.dropped += left;
    this.#host.options.logger.warn(
      `${left} pub/sub messages of "${this.name}" on "${this.channel}" dropped: ${why}`,
    );
  }

  #receive(text: string): void {
    if (!this.#active) return;
    let decoded: DecodedEntry;
    try {
      decoded = decodePubSubText(text);
    } catch (error) {
      this.#host.counters.dropped++;
      this.#host.options.logger.error(
        `undecodable pub/sub message on "${this.channel}" dropped: ${
          error instanceof Error ? error.message : String(error)
        }`,
      );
      return;
    }
    if (this.queued >= this.#host.options.maxQueueSize) {
      this.#host.counters.dropped++;
      this.#host.options.logger.warn(
        `queue of "${this.name}" on "${this.channel}" is full; pub/sub message dropped`,
      );
      return;
    }
    this.#queue.push({ decoded });
    this.#pump();
  }

  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (this.#running < this.#concurrency && this.#head < this.#queue.length) {
        const item = this.#queue[this.#head++];
        if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
          this.#queue = this.#queue.slice(this.#head);
          this.#head = 0;
        }
        this.#running++;
        this.#run(item.decoded);
      }
    } finally {
      this.#pumping = false;
    }
    if (this.#running === 0 && this.queued === 0) this.#idle?.();
  }

  #finish(): void {
    this.#running--;
    this.#pump();
  }

  /** Runs the handler; a synchronous handler costs no promise. */
  #run(decoded: DecodedEntry): void {
    const described = describeMessage(decoded.message);
    const context: MessageContext = {
      channel: this.channel,
      subscription: this.name,
      messageId: described.id ?? decoded.correlationId ?? `${this.#idPrefix}${++this.#sequence}`,
      headers: decoded.headers,
      correlationId: decoded.correlationId,
      replyTo: decoded.replyTo,
      attempt: 1,
      signal: this.#controller.signal,
    };
    let result: unknown;
    try {
      result = this.#handler(decoded.message, context);
    } catch (error) {
      this.#failed(decoded, context, described.type, error);
      return;
    }
    if (result !== null && typeof (result as Promise<unknown>)?.then === "function") {
      const generation = this.#generation;
      (result as Promise<unknown>).then(
        (value) => {
          if (generation === this.#generation) this.#succeeded(decoded, value);
        },
        (error) => {
          if (generation === this.#generation) {
            this.#failed(decoded, context, described.type, error);
          }
        },
      );
    } else {
      this.#succeeded(decoded, result);
    }
  }

  #failed(
    decoded: DecodedEntry,
    context: MessageContext,
    eventType: string | undefined,
    error: unknown,
  ): void {
    this.#host.counters.errors++;
    reportFailure(this.#host.options.logger, this.#host.options.onError, {
      error,
      channel: this.channel,
      subscription: this.name,
      messageId: context.messageId,
      eventType,
      attempt: 1,
    });
    if (decoded.replyTo !== undefined) {
      this.#host.replyFailure(decoded, error instanceof Error ? error.message : String(error));
    }
    this.#finish();
  }

  #succeeded(decoded: DecodedEntry, result: unknown): void {
    this.#host.counters.consumed++;
    if (decoded.replyTo === undefined) return this.#finish();
    let replied: Promise<void> | void = undefined;
    try {
      replied = this.#host.reply(decoded, result);
    } catch (error) {
      this.#logReplyFailure(decoded, error);
    }
    if (!replied) return this.#finish();
    replied.then(undefined, (error) => this.#logReplyFailure(decoded, error)).finally(() =>
      this.#finish()
    );
  }

  #logReplyFailure(decoded: DecodedEntry, error: unknown): void {
    this.#host.options.logger.error(
      `reply to ${decoded.replyTo} failed: ${error instanceof Error ? error.message : error}`,
    );
  }
}

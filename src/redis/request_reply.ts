/**
 * Request/reply over Redis, both sides.
 *
 * Requesting: each broker instance listens on one reply channel
 * (`${keyPrefix}reply:${consumer}`, pub/sub) from its first request until it
 * stops, so requests never add subscriptions; a request carries that
 * channel and a correlation id, and the first reply with the id settles it.
 *
 * Replying: a handler's result goes back to the requester as the result's
 * entry fields plus `correlationid`, in the pub/sub form. A failure reply
 * has `error`, `errorname` and `subscription` fields instead, so the
 * requester rejects with `RequestFailedError` naming the handler's error.
 *
 * @module
 */

import type { PublishOptions } from "../broker.ts";
import {
  describeError,
  InvalidArgumentError,
  RequestFailedError,
  RequestTimeoutError,
} from "../errors.ts";
import type { Reporter } from "../reporter.ts";
import {
  decodePubSubMessage,
  encodeEntry,
  parsePubSubText,
  type PubSubMessage,
  toPubSubText,
} from "./entry_codec.ts";
import type { SubscriberConnection } from "./subscriber_connection.ts";
import type { RedisCounters } from "./stats.ts";
import { safeError } from "./secrets.ts";

interface Pending {
  readonly channel: string;
  resolve(value: unknown): void;
  reject(error: unknown): void;
  /** Handlers that may still answer; the request fails once all of them failed. */
  outstanding: number;
  cleanup(): void;
}

/** The JSON text of a successful reply. */
export function replyText(correlationId: string, result: unknown): string {
  return toPubSubText(encodeEntry(result, { correlationId }));
}

/** The JSON text of a failure reply: the handler's error name and message, and its subscription. */
export function failureReplyText(
  correlationId: string,
  subscription: string,
  error: unknown,
): string {
  const { name, message } = describeError(error);
  return toPubSubText([
    "correlationid",
    correlationId,
    "error",
    message,
    "errorname",
    name,
    "subscription",
    subscription,
  ]);
}

/** Requests of one broker instance waiting for replies on its reply channel. */
export class RequestReply {
  /** Pub/sub channel replies come to. */
  readonly channel: string;
  readonly #subscriber: () => SubscriberConnection;
  readonly #pending = new Map<string, Pending>();
  readonly #listener = (text: string) => this.#receive(text);
  #listening: Promise<void> | undefined;

  /** Creates the reply side for a reply channel. */
  constructor(channel: string, subscriber: () => SubscriberConnection) {
    this.channel = channel;
    this.#subscriber = subscriber;
  }

  /** Requests waiting for a reply. */
  get pending(): number {
    return this.#pending.size;
  }

  /**
   * Runs one request: listens on the reply channel, calls `send`, and settles
   * with the first reply, a timeout, an abort or a failed send. `send`
   * resolves with how many handlers are expected to answer (failure replies
   * count down; the request fails when every one of them failed).
   */
  async request(
    channel: string,
    correlationId: string,
    timeout: number,
    signal: AbortSignal | undefined,
    send: () => Promise<number>,
  ): Promise<unknown> {
    if (this.#pending.has(correlationId)) {
      throw new InvalidArgumentError("correlationId", "a request with this id is already waiting");
    }
    await this.#listen();
    if (signal?.aborted) throw signal.reason;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let onAbort: (() => void) | undefined;
    const result = new Promise<unknown>((resolve, reject) => {
      const pending: Pending = {
        channel,
        resolve,
        reject,
        outstanding: Infinity,
        cleanup: () => {
          clearTimeout(timer);
          if (onAbort) signal?.removeEventListener("abort", onAbort);
          this.#pending.delete(correlationId);
        },
      };
      this.#pending.set(correlationId, pending);
      timer = setTimeout(() => {
        pending.cleanup();
        reject(new RequestTimeoutError(channel, timeout));
      }, timeout);
      if (signal) {
        onAbort = () => {
          pending.cleanup();
          reject(signal.reason);
        };
        signal.addEventListener("abort", onAbort, { once: true });
      }
    });
    send().then((handlers) => {
      const pending = this.#pending.get(correlationId);
      if (pending !== undefined && handlers > 0) pending.outstanding = handlers;
    }, (error) => {
      const pending = this.#pending.get(correlationId);
      if (pending === undefined) return;
      pending.cleanup();
      pending.reject(error);
    });
    return await result;
  }

  /** Rejects every waiting request and stops listening (the subscriber connection closes with the broker). */
  close(error: Error): void {
    for (const pending of [...this.#pending.values()]) {
      pending.cleanup();
      pending.reject(error);
    }
    this.#listening = undefined;
  }

  #listen(): Promise<void> {
    this.#listening ??= this.#subscriber().listen(this.channel, this.#listener).catch((error) => {
      this.#listening = undefined;
      throw error;
    });
    return this.#listening;
  }

  #receive(text: string): void {
    let reply: PubSubMessage;
    try {
      reply = parsePubSubText(text);
    } catch {
      return;
    }
    const fields = reply.fields;
    let correlationId: string | undefined;
    let error: string | undefined;
    let errorName: string | undefined;
    let subscription: string | undefined;
    for (let i = 0; i < fields.length; i += 2) {
      switch (fields[i]) {
        case "correlationid":
          correlationId = fields[i + 1];
          break;
        case "error":
          error = fields[i + 1];
          break;
        case "errorname":
          errorName = fields[i + 1];
          break;
        case "subscription":
          subscription = fields[i + 1];
      }
    }
    const pending = correlationId === undefined ? undefined : this.#pending.get(correlationId);
    if (pending === undefined) return;
    if (error !== undefined) {
      if (--pending.outstanding > 0) return;
      pending.cleanup();
      pending.reject(
        new RequestFailedError(
          pending.channel,
          subscription ?? "(unknown)",
          errorName ?? "Error",
          error,
        ),
      );
      return;
    }
    try {
      const value = decodePubSubMessage(reply).message;
      pending.cleanup();
      pending.resolve(value);
    } catch (decodeError) {
      pending.cleanup();
      pending.reject(decodeError);
    }
  }
}

/** Where a handled message's reply goes. */
export interface ReplyTarget {
  /** Reply channel of the message, when it has one. */
  readonly replyTo: string | undefined;
  /** Correlation id of the message. */
  readonly correlationId: string | undefined;
}

/** What the replying side needs from its broker. */
export interface ReplierHost {
  /** Publishes a reply's text on a reply channel; `undefined` when the broker holds no connection. */
  send(replyTo: string, text: string): Promise<unknown> | undefined;
  /** Whether the broker takes publishes. */
  started(): boolean;
  /** Publishes a result to a channel given by hand as `replyTo`. */
  publish(message: unknown, channel: string, options: PublishOptions): Promise<void>;
}

/**
 * The replying side: sends a handler's result (or failure) back to the
 * requester, or publishes a result to a `replyTo` channel given by hand.
 */
export class Replier {
  readonly #replyPrefix: string;
  readonly #host: ReplierHost;
  readonly #counters: RedisCounters;
  readonly #reporter: Reporter;
  readonly #secrets: readonly string[];

  /** Creates the replying side; reply channels of requests start with `replyPrefix`. */
  constructor(
    replyPrefix: string,
    host: ReplierHost,
    counters: RedisCounters,
    reporter: Reporter,
    secrets: readonly string[],
  ) {
    this.#replyPrefix = replyPrefix;
    this.#host = host;
    this.#counters = counters;
    this.#reporter = reporter;
    this.#secrets = secrets;
  }

  /**
   * Sends `result` where `target` wants it. Resolves once sent; never
   * rejects (a failure is logged). A result that cannot be encoded answers
   * the request with that error instead.
   */
  reply(target: ReplyTarget, subscription: string, result: unknown): Promise<void> | undefined {
    const replyTo = target.replyTo!;
    if (replyTo.startsWith(this.#replyPrefix)) {
      if (target.correlationId === undefined) return undefined;
      let text: string;
      try {
        text = replyText(target.correlationId, result);
      } catch (error) {
        this.#reporter.log("error", `the result of "${subscription}" cannot be sent back`, error);
        this.fail(target, subscription, error);
        return undefined;
      }
      // Sent even while stopping: the handler that finished during the drain still answers.
      return this.#host.send(replyTo, text)?.then(
        () => undefined,
        (error: unknown) => this.#logFailure(replyTo, error),
      );
    }
    if (result === undefined) return undefined;
    if (!this.#host.started()) {
      this.#counters.dropped++;
      this.#reporter.drop(
        replyTo,
        subscription,
        1,
        `the result of "${subscription}" for replyTo "${replyTo}" was not published: the broker is not started`,
      );
      return undefined;
    }
    return this.#host.publish(result, replyTo, { correlationId: target.correlationId }).catch(
      (error: unknown) => this.#logFailure(replyTo, error),
    );
  }

  /** Tells the requester its handler gave up on the request (a failure, a refusal, a drop). */
  fail(target: ReplyTarget, subscription: string, error: unknown): void {
    const replyTo = target.replyTo;
    if (
      replyTo === undefined || !replyTo.startsWith(this.#replyPrefix) ||
      target.correlationId === undefined
    ) return;
    this.#host.send(replyTo, failureReplyText(target.correlationId, subscription, error))?.catch(
      (failure: unknown) => this.#logFailure(replyTo, failure),
    );
  }

  #logFailure(replyTo: string, error: unknown): void {
    this.#reporter.log(
      "warn",
      `reply to ${replyTo} was not sent: ${safeError(error, this.#secrets).message}`,
    );
  }
}

/**
 * Request/reply over Redis: each broker instance listens on one reply
 * channel (`${keyPrefix}reply:${consumer}`, pub/sub) from its first request
 * until it stops, so requests never add subscriptions; a request carries that channel and a correlation id; the first
 * reply with the id settles it. A reply is the result's entry fields plus
 * `correlationid`, in the pub/sub form; a failure reply has an `error` field.
 *
 * @module
 */

import { BrokerError, InvalidArgumentError, RequestTimeoutError } from "../errors.ts";
import {
  decodePubSubMessage,
  encodeEntry,
  parsePubSubText,
  type PubSubMessage,
  toPubSubText,
} from "./entry_codec.ts";
import type { SubscriberConnection } from "./pubsub.ts";

interface Pending {
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

/** The JSON text of a failure reply. */
export function failureReplyText(correlationId: string, error: string): string {
  return toPubSubText(["correlationid", correlationId, "error", error]);
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
   * with the first reply, a timeout, an abort or a failed send. `handlers` is
   * how many handlers are expected to answer (failure replies count down).
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

  /** Rejects every waiting request, e.g. on stop. */
  rejectAll(error: Error): void {
    for (const pending of [...this.#pending.values()]) {
      pending.cleanup();
      pending.reject(error);
    }
  }

  #listen(): Promise<void> {
    this.#listening ??= this.#subscriber().listen(this.channel, this.#listener).catch((error) => {
      this.#listening = undefined;
      throw error;
    });
    return this.#listening;
  }

  /** Rejects what waits and stops listening (the subscriber connection closes with the broker). */
  close(error: Error): void {
    this.rejectAll(error);
    this.#listening = undefined;
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
    for (let i = 0; i < fields.length; i += 2) {
      if (fields[i] === "correlationid") correlationId = fields[i + 1];
      else if (fields[i] === "error") error = fields[i + 1];
    }
    const pending = correlationId === undefined ? undefined : this.#pending.get(correlationId);
    if (pending === undefined) return;
    if (error !== undefined) {
      if (--pending.outstanding > 0) return;
      pending.cleanup();
      pending.reject(new BrokerError(`the handler failed: ${error}`));
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

/**
 * The publish path of the Redis broker: checks the channel and options,
 * encodes the message, refuses oversize ones, writes it (XADD, or PUBLISH in
 * pub/sub mode and for replies sent by hand) and bounds the wait for Redis
 * with `publishTimeout`.
 *
 * @module
 */

import type { Redis } from "ioredis";
import type { PublishOptions } from "../broker.ts";
import { BrokerError, InvalidArgumentError } from "../errors.ts";
import { checkChannel, checkPublishOptions } from "../handler_support.ts";
import { DeadlineQueue } from "./deadline_queue.ts";
import { encodeEntry, entryBytes, toPubSubText } from "./entry_codec.ts";
import { pubsubKey, replyKey, streamKey } from "./keys.ts";
import type { ResolvedRedisOptions } from "./options.ts";
import { safeError } from "./secrets.ts";
import type { RedisCounters } from "./stats.ts";

/** Channels whose key is remembered; beyond it keys are built per call. */
const MAX_CACHED_CHANNELS = 10_000;

/** Writes messages to Redis for one broker. */
export class Publisher {
  readonly #options: ResolvedRedisOptions;
  readonly #counters: RedisCounters;
  readonly #deadlines: DeadlineQueue<(error: Error) => void>;
  readonly #replyPrefix: string;
  /** Validated channels and the key each publishes to. */
  readonly #keys = new Map<string, string>();
  readonly #trim: readonly (string | number)[];

  /** Creates the publish path of a broker. */
  constructor(options: ResolvedRedisOptions, counters: RedisCounters) {
    this.#options = options;
    this.#counters = counters;
    this.#replyPrefix = replyKey(options.keyPrefix, "");
    this.#trim = options.maxLen > 0 ? ["MAXLEN", "~", options.maxLen] : [];
    const { publishTimeout, maskedUrl } = options;
    this.#deadlines = new DeadlineQueue(publishTimeout, (reject, channel) =>
      reject(
        new BrokerError(
          `publish to "${channel}" was not accepted by Redis at ${maskedUrl} within ${publishTimeout} ms`,
        ),
      ));
  }

  /** Publishes sent and not yet confirmed by Redis. */
  get inFlight(): number {
    return this.#deadlines.size;
  }

  /** Resolves once no publish waits for Redis. */
  whenSettled(): Promise<void> {
    return this.#deadlines.whenEmpty();
  }

  /** Rejects every publish still waiting (the connection is closing). */
  expireAll(): void {
    this.#deadlines.expireAll();
  }

  /**
   * Writes `message` to `channel` on `command`. Resolves with the number of
   * receivers (1 for a stream) when `count`, else with `undefined`; rejects
   * with `InvalidArgumentError` before sending anything when the channel,
   * options or message are wrong, and with `BrokerError` when Redis refuses
   * it or does not accept it within `publishTimeout`.
   */
  publish(
    command: Redis,
    message: unknown,
    channel: string,
    options: PublishOptions | undefined,
    count: boolean,
  ): Promise<number | undefined> {
    let fields: string[];
    let key: string;
    try {
      key = this.#keys.get(channel) ?? this.#keyOf(channel);
      if (options !== undefined) checkPublishOptions(options);
      fields = encodeEntry(message, options);
      this.#checkSize(fields);
    } catch (error) {
      return Promise.reject(error);
    }
    let sent: Promise<unknown>;
    if (this.#options.mode === "pubsub" || key === channel) {
      // Pub/sub mode, or a reply sent by hand to a request's replyTo: straight to the listener.
      sent = command.publish(key, toPubSubText(fields));
    } else if (fields.length === 2) {
      sent = command.xadd(key, ...this.#trim, "*", fields[0], fields[1]);
    } else {
      sent = command.xadd(key, ...this.#trim, "*", ...fields);
    }
    return new Promise<number | undefined>((resolve, reject) => {
      const deadlines = this.#deadlines;
      const ticket = deadlines.add(reject, channel);
      sent.then((reply) => {
        if (!deadlines.settle(ticket)) return;
        this.#counters.published++;
        resolve(count ? (typeof reply === "number" ? reply : 1) : undefined);
      }, (error) => {
        if (!deadlines.settle(ticket)) return;
        const safe = safeError(error, this.#options.secrets);
        reject(new BrokerError(`publish to "${channel}" failed: ${safe.message}`, { cause: safe }));
      });
    });
  }

  /** Checks a channel seen for the first time and remembers its key. */
  #keyOf(channel: string): string {
    checkChannel(channel);
    const { keyPrefix, mode } = this.#options;
    const key = channel.startsWith(this.#replyPrefix)
      ? channel
      : mode === "pubsub"
      ? pubsubKey(keyPrefix, channel)
      : streamKey(keyPrefix, channel);
    if (this.#keys.size < MAX_CACHED_CHANNELS) this.#keys.set(channel, key);
    return key;
  }

  #checkSize(fields: string[]): void {
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
  }
}

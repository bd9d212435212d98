/**
 * Where the broker keeps its data, every key under `keyPrefix`:
 *
 * | key                                           | holds                                               |
 * | --------------------------------------------- | --------------------------------------------------- |
 * | `[...prefix, "registry"]`                     | a counter bumped on each new subscription           |
 * | `[...prefix, "sub", channel, group, name]`    | one registered (durable) subscription               |
 * | `[...prefix, "parked"]`                       | a counter bumped each time messages are parked      |
 * | `[...prefix, "park", channel, group, name, id]` | messages waiting for their subscription to run    |
 * | `[...prefix, "dlq", channel, id]`             | a dead letter (or a batch KV gave up delivering)    |
 * | `[...prefix, "reply", id, "ok" \| "failed"]`  | a request's reply, with an expiry                   |
 * | `[...prefix, "done", channel, group, name, digest]` | a CloudEvent an idempotent subscription handled, with an expiry |
 *
 * @module
 */

import type { KvKey } from "./kv_store.ts";
import type { KvPrefixPart } from "./options.ts";

/** The key builders of one prefix. */
export class KvKeys {
  /** Version of the subscription registry. */
  readonly registry: KvKey;
  /** Bumped each time messages are parked. */
  readonly parked: KvKey;
  /** Prefix of every registered subscription. */
  readonly subscriptions: KvKey;

  /** Builds the keys under `prefix`. */
  constructor(readonly prefix: readonly KvPrefixPart[]) {
    this.registry = [...prefix, "registry"];
    this.parked = [...prefix, "parked"];
    this.subscriptions = [...prefix, "sub"];
  }

  /** One registered subscription. */
  subscription(channel: string, group: string, name: string): KvKey {
    return [...this.prefix, "sub", channel, group, name];
  }

  /** Prefix of the parked messages of one subscription. */
  parkedOf(channel: string, group: string, name: string): KvKey {
    return [...this.prefix, "park", channel, group, name];
  }

  /** One parked entry. */
  parkedEntry(channel: string, group: string, name: string, id: string): KvKey {
    return [...this.prefix, "park", channel, group, name, id];
  }

  /** Prefix of a channel's dead letters. */
  deadLetters(channel: string): KvKey {
    return [...this.prefix, "dlq", channel];
  }

  /** One dead letter. */
  deadLetter(channel: string, id: string): KvKey {
    return [...this.prefix, "dlq", channel, id];
  }

  /** The record that an idempotent subscription handled an event (by digest). */
  handled(channel: string, group: string, name: string, digest: string): KvKey {
    return [...this.prefix, "done", channel, group, name, digest];
  }

  /** The reply of a request, or its failures. */
  reply(id: string, part: "ok" | "failed"): KvKey {
    return [...this.prefix, "reply", id, part];
  }
}

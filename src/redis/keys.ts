/**
 * Names of the Redis keys, consumer groups and pub/sub channels the broker
 * uses. Every key starts with the broker's `keyPrefix`, and every key of one
 * channel carries the channel as a hash tag (`{channel}`), so all of them
 * hash to one slot: the scripts and transactions the broker runs on a
 * channel's keys (dead letter + ack, replay, de-duplication) stay on one
 * node of a Redis Cluster, while different channels spread over the
 * masters. A single node uses the same names, so moving to a cluster needs
 * no rename.
 *
 * | key                                         | holds                                   |
 * | ------------------------------------------- | --------------------------------------- |
 * | `${keyPrefix}{${channel}}:stream`           | the channel's stream                    |
 * | `${keyPrefix}{${channel}}:dlq`              | its dead letters                        |
 * | `${keyPrefix}{${channel}}:pubsub`           | its pub/sub channel (pub/sub mode)      |
 * | `${keyPrefix}{${channel}}:attempts:${group}` | handler starts per entry of one group  |
 * | `${keyPrefix}{${channel}}:seen:${id}`       | a published event, for `dedupeWindow`   |
 * | `${keyPrefix}{${channel}}:done:${group}:${id}` | an event handled, for `idempotent`   |
 * | `${keyPrefix}{reply:${consumer}}`           | the reply channel of one instance       |
 *
 * Redis takes the tag from the first `{` to the next `}`: a channel holding
 * braces still maps every key of its own to one slot. A `keyPrefix` holding a
 * `{...}` pair puts every key on one slot (fine on one node, no spread on a
 * cluster).
 *
 * @module
 */

/** The part every key of a channel starts with: `${keyPrefix}{${channel}}:`. */
export function channelKeys(keyPrefix: string, channel: string): string {
  return `${keyPrefix}{${channel}}:`;
}

/** Stream of a channel: `${keyPrefix}{${channel}}:stream`. */
export function streamKey(keyPrefix: string, channel: string): string {
  return `${channelKeys(keyPrefix, channel)}stream`;
}

/** Dead-letter stream of a channel: `${keyPrefix}{${channel}}:dlq`. */
export function deadLetterKey(keyPrefix: string, channel: string): string {
  return `${channelKeys(keyPrefix, channel)}dlq`;
}

/** Pub/sub channel of a channel in pub/sub mode: `${keyPrefix}{${channel}}:pubsub`. */
export function pubsubKey(keyPrefix: string, channel: string): string {
  return `${channelKeys(keyPrefix, channel)}pubsub`;
}

/** Reply channel (pub/sub) of one broker instance: `${keyPrefix}{reply:${consumer}}`. */
export function replyKey(keyPrefix: string, consumer: string): string {
  return `${keyPrefix}{reply:${consumer}}`;
}

/** What every reply channel starts with: `${keyPrefix}{reply:`. */
export function replyKeyPrefix(keyPrefix: string): string {
  return `${keyPrefix}{reply:`;
}

/**
 * Consumer group of a subscription: `${group}:${subscription}` for delivery
 * "group", `${group}:${subscription}:${consumer}` for "broadcast".
 */
export function groupName(
  group: string,
  subscription: string,
  broadcastConsumer?: string,
): string {
  return broadcastConsumer === undefined
    ? `${group}:${subscription}`
    : `${group}:${subscription}:${broadcastConsumer}`;
}

/** Handler starts per entry of one consumer group: `${keyPrefix}{${channel}}:attempts:${group}`. */
export function attemptsKey(keyPrefix: string, channel: string, group: string): string {
  return `${channelKeys(keyPrefix, channel)}attempts:${group}`;
}

/** A published event, for `dedupeWindow`: `${keyPrefix}{${channel}}:seen:${digest}`. */
export function seenKey(keyPrefix: string, channel: string, digest: string): string {
  return `${channelKeys(keyPrefix, channel)}seen:${digest}`;
}

/** What every handled-event key of a group starts with: `${keyPrefix}{${channel}}:done:${group}:`. */
export function doneKeyPrefix(keyPrefix: string, channel: string, group: string): string {
  return `${channelKeys(keyPrefix, channel)}done:${group}:`;
}

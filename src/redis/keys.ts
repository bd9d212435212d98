/**
 * Names of the Redis keys, consumer groups and pub/sub channels the broker
 * uses. Every key starts with the broker's `keyPrefix`.
 *
 * @module
 */

/** Stream of a channel: `${keyPrefix}stream:${channel}`. */
export function streamKey(keyPrefix: string, channel: string): string {
  return `${keyPrefix}stream:${channel}`;
}

/** Dead-letter stream of a channel: `${keyPrefix}dlq:${channel}`. */
export function deadLetterKey(keyPrefix: string, channel: string): string {
  return `${keyPrefix}dlq:${channel}`;
}

/** Pub/sub channel of a channel in pub/sub mode: `${keyPrefix}pubsub:${channel}`. */
export function pubsubKey(keyPrefix: string, channel: string): string {
  return `${keyPrefix}pubsub:${channel}`;
}

/** Reply channel (pub/sub) of one broker instance: `${keyPrefix}reply:${consumer}`. */
export function replyKey(keyPrefix: string, consumer: string): string {
  return `${keyPrefix}reply:${consumer}`;
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

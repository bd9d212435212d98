/**
 * Counters of the Redis broker.
 *
 * @module
 */

import type { BrokerStats } from "../broker.ts";

/** Mutable counters shared by the broker's parts. */
export interface RedisCounters {
  published: number;
  consumed: number;
  errors: number;
  dropped: number;
  retried: number;
  deadLettered: number;
  claimed: number;
}

/** Fresh counters, all zero. */
export function newCounters(): RedisCounters {
  return {
    published: 0,
    consumed: 0,
    errors: 0,
    dropped: 0,
    retried: 0,
    deadLettered: 0,
    claimed: 0,
  };
}

/**
 * `BrokerStats` plus what only the Redis broker knows. Holds no URL and no
 * credentials.
 *
 * @example
 * ```ts
 * import { RedisBroker, type RedisBrokerStats } from "@opensecflow/eventbus/redis";
 * const stats: RedisBrokerStats = new RedisBroker().stats();
 * console.log(stats.mode, stats.retried, stats.deadLettered, stats.claimed);
 * ```
 */
export interface RedisBrokerStats extends BrokerStats {
  /** `"stream"` or `"pubsub"`. */
  mode: "stream" | "pubsub";
  /** Deliveries scheduled again after a failure or a `NackMessage` (stream mode). */
  retried: number;
  /** Entries moved to a dead-letter stream. */
  deadLettered: number;
  /** Entries claimed from consumers that stopped answering. */
  claimed: number;
  /** Requests waiting for their reply. */
  pendingRequests: number;
  /** Publishes sent and not yet confirmed by Redis. */
  publishing: number;
}

/**
 * Counters of the KV broker.
 *
 * @module
 */

import type { BrokerStats } from "../broker.ts";

/** Mutable counters shared by the broker's parts. */
export interface KvCounters {
  published: number;
  consumed: number;
  errors: number;
  dropped: number;
  retried: number;
  deadLettered: number;
  parked: number;
}

/** Fresh counters, all zero. */
export function newKvCounters(): KvCounters {
  return {
    published: 0,
    consumed: 0,
    errors: 0,
    dropped: 0,
    retried: 0,
    deadLettered: 0,
    parked: 0,
  };
}

/**
 * `BrokerStats` plus what only the KV broker knows.
 *
 * @example
 * ```ts
 * import { KvBroker, type KvBrokerStats } from "@opensecflow/eventbus/kv";
 * const stats: KvBrokerStats = new KvBroker({ path: ":memory:" }).stats();
 * console.log(stats.retried, stats.deadLettered, stats.parked, stats.publishing);
 * ```
 */
export interface KvBrokerStats extends BrokerStats {
  /** Handler calls in flight. */
  running: number;
  /** Failed or refused messages enqueued again for another attempt. */
  retried: number;
  /** Messages written to dead letters by this instance. */
  deadLettered: number;
  /** Messages parked by this instance: their subscription was not running here. */
  parked: number;
  /** Requests waiting for their reply. */
  pendingRequests: number;
  /** Publishes waiting for their commit. */
  publishing: number;
}

/**
 * What a broker guarantees, read off the broker object itself, so the
 * contract says what the running configuration does rather than what a
 * comment claims.
 *
 * @module
 */

import type { Broker } from "../broker.ts";
import { MemoryBroker } from "../memory_broker.ts";
import type { DeliveryGuarantee } from "./types.ts";

/** A broker's kind, guarantee, and both in words. */
export interface BrokerDelivery {
  /** `"memory"`, `"redis-stream"`, `"redis-pubsub"`, or the broker's class name. */
  readonly broker: string;
  /** The guarantee. */
  readonly delivery: DeliveryGuarantee;
  /** One sentence for descriptions. */
  readonly text: string;
}

const MEMORY: BrokerDelivery = {
  broker: "memory",
  delivery: "at-most-once",
  text: "In memory (MemoryBroker): reaches the handlers of this process only; " +
    "at most once, since queued events are lost if the process ends.",
};

const REDIS_STREAM: BrokerDelivery = {
  broker: "redis-stream",
  delivery: "at-least-once",
  text: "Redis stream with consumer groups (RedisBroker): at least once; an entry is " +
    "acknowledged only after its handler succeeded, retried on failure, then dead-lettered.",
};

const REDIS_PUBSUB: BrokerDelivery = {
  broker: "redis-pubsub",
  delivery: "at-most-once",
  text: "Redis pub/sub (RedisBroker): at most once, to the instances subscribed at that moment.",
};

/**
 * The delivery of a broker. A RedisBroker is recognized by its `mode` getter
 * rather than by `instanceof`: importing it would load ioredis into every
 * program that only wants a contract document.
 */
export function deliveryOf(broker: Broker): BrokerDelivery {
  if (broker instanceof MemoryBroker) return MEMORY;
  const mode = (broker as { mode?: unknown }).mode;
  if (mode === "stream") return REDIS_STREAM;
  if (mode === "pubsub") return REDIS_PUBSUB;
  const name = broker.constructor?.name || "custom broker";
  return {
    broker: name,
    delivery: "unspecified",
    text: `${name}: a broker whose delivery guarantee this document does not know.`,
  };
}

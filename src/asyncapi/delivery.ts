/**
 * What a broker guarantees, read off the broker object itself (its
 * `delivery`), so the contract says what the running configuration does
 * rather than what a comment claims, and this module needs no broker's code.
 *
 * @module
 */

import type { Broker, BrokerDelivery } from "../broker.ts";
import { excerpt, InvalidArgumentError } from "../errors.ts";
import type { DeliveryGuarantee } from "./types.ts";

/** A channel's broker, guarantee, and both in words. */
export interface ChannelDelivery {
  /** The broker's transport (`"memory"`, `"redis-stream"`...), or its class name. */
  readonly broker: string;
  /** The guarantee. */
  readonly delivery: DeliveryGuarantee;
  /** One sentence for descriptions. */
  readonly text: string;
}

const GUARANTEES: ReadonlySet<unknown> = new Set(["at-most-once", "at-least-once"]);

/**
 * The delivery of a broker, as it describes itself; `unspecified` for a
 * broker that does not. `role` names the broker in errors (`appBroker`).
 */
export function deliveryOf(broker: Broker, role: string): ChannelDelivery {
  const described: unknown = broker.delivery;
  if (described === undefined) {
    const name = broker.constructor?.name || "custom broker";
    return {
      broker: name,
      delivery: "unspecified",
      text: `${name}: a broker whose delivery guarantee this document does not know.`,
    };
  }
  if (!isBrokerDelivery(described)) {
    throw new InvalidArgumentError(
      `bus.${role}.delivery`,
      'must be { transport: string, guarantee: "at-most-once" | "at-least-once", ' +
        `description: string } or undefined, got ${excerpt(described)}`,
    );
  }
  return {
    broker: described.transport,
    delivery: described.guarantee,
    text: described.description,
  };
}

function isBrokerDelivery(value: unknown): value is BrokerDelivery {
  if (value === null || typeof value !== "object") return false;
  const { transport, guarantee, description } = value as Record<string, unknown>;
  return typeof transport === "string" && transport !== "" && GUARANTEES.has(guarantee) &&
    typeof description === "string";
}

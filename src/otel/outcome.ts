/**
 * How a handler call ended, for telemetry: the explicit outcomes a handler
 * may throw (`AckMessage`, `NackMessage`, `RejectMessage`) are not failures
 * like any other error.
 *
 * @module
 */

import { AckMessage, NackMessage, RejectMessage } from "../outcomes.ts";

/**
 * `ack`: handled (returned, or threw `AckMessage`); `nack`: another delivery
 * asked for; `reject`: refused for good; `error`: the handler failed.
 */
export type Outcome = "ack" | "nack" | "reject" | "error";

/** The outcome a handler call that threw `error` has. */
export function outcomeOf(error: unknown): Outcome {
  if (error instanceof AckMessage) return "ack";
  if (error instanceof NackMessage) return "nack";
  if (error instanceof RejectMessage) return "reject";
  return "error";
}

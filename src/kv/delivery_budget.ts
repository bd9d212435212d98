/**
 * How a batch is enqueued so that no message is lost when its handler never
 * returns (the process died): KV redelivers it after each step of
 * `backoffSchedule`, one step for each delivery left in the message's
 * `maxDeliveries` budget (at most 5, KV's limit), and when none is left it
 * writes the batch to its dead-letter key (`keysIfUndelivered`).
 *
 * @module
 */

import { backoffDelay, type ResolvedBackoff } from "../retry.ts";
import type { Envelope } from "./envelope.ts";
import type { KvKeys } from "./keys.ts";
import type { KvEnqueueOptions } from "./kv_store.ts";

/** Most steps KV accepts in a `backoffSchedule`. */
const MAX_STEPS = 5;
/** Longest step KV accepts. */
const MAX_STEP_MS = 3_600_000;

/** Redelivery waits after a crash, for the deliveries left after `attempt`. */
export function crashSchedule(
  attempt: number,
  deliveries: number,
  backoff: ResolvedBackoff,
): number[] {
  const steps = Math.min(MAX_STEPS, Math.max(0, deliveries - attempt));
  return Array.from(
    { length: steps },
    (_, i) => Math.min(MAX_STEP_MS, Math.round(backoffDelay(backoff, attempt + i))),
  );
}

/** The enqueue options of a batch; `delay` in milliseconds. */
export function enqueueOptions(
  keys: KvKeys,
  envelope: Envelope,
  backoff: ResolvedBackoff,
  delay: number,
): KvEnqueueOptions {
  return {
    delay,
    keysIfUndelivered: [keys.deadLetter(envelope.channel, envelope.batch)],
    backoffSchedule: crashSchedule(envelope.attempt, envelope.deliveries, backoff),
  };
}

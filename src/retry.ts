/**
 * Delivery budgets shared by every broker: `maxDeliveries` and the
 * exponential retry backoff.
 *
 * @module
 */

import type { RetryBackoff } from "./broker.ts";
import { InvalidArgumentError } from "./errors.ts";

/** Backoff with every field set. */
export type ResolvedBackoff = Readonly<Required<RetryBackoff>>;

/** 100 ms doubling up to 30 s. */
export const DEFAULT_BACKOFF: ResolvedBackoff = Object.freeze({
  initial: 100,
  max: 30_000,
  factor: 2,
});

function number(value: unknown, name: string, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < min) {
    throw new InvalidArgumentError(name, `must be a number >= ${min}, got ${String(value)}`);
  }
  return value;
}

/** Checks `retryBackoff` and fills in the defaults. */
export function resolveBackoff(value: RetryBackoff | undefined): ResolvedBackoff {
  if (value === undefined) return DEFAULT_BACKOFF;
  if (value === null || typeof value !== "object") {
    throw new InvalidArgumentError("retryBackoff", "must be an object");
  }
  const initial = number(value.initial, "retryBackoff.initial", DEFAULT_BACKOFF.initial, 0);
  const max = number(value.max, "retryBackoff.max", DEFAULT_BACKOFF.max, 0);
  const factor = number(value.factor, "retryBackoff.factor", DEFAULT_BACKOFF.factor, 1);
  if (max < initial) {
    throw new InvalidArgumentError("retryBackoff.max", "must be >= retryBackoff.initial");
  }
  return Object.freeze({ initial, max, factor });
}

/** Checks `maxDeliveries`: a whole number from 1. */
export function resolveMaxDeliveries(value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
    throw new InvalidArgumentError(
      "maxDeliveries",
      `must be an integer >= 1, got ${String(value)}`,
    );
  }
  return value;
}

/** Milliseconds to wait before the attempt after `attempt` (1-based). */
export function backoffDelay(backoff: ResolvedBackoff, attempt: number): number {
  return Math.min(backoff.max, backoff.initial * backoff.factor ** (attempt - 1));
}

/**
 * Effectively-once handling in memory: a subscription with `idempotent` skips
 * (acknowledges without running) a CloudEvent whose (`source`, `id`) it
 * already handled successfully within the time to live.
 *
 * @module
 */

import type { Handler } from "./broker.ts";
import { InvalidArgumentError } from "./errors.ts";
import { CloudEvent } from "./event.ts";

/** Default time an event stays marked as handled: one day. */
export const DEFAULT_IDEMPOTENCY_TTL = 86_400_000;
/** Most events one in-memory subscription remembers; the oldest are forgotten first. */
export const MAX_REMEMBERED = 100_000;

/** Checks the `idempotent` subscribe option; returns the ttl, or `undefined` when off. */
export function checkIdempotent(value: unknown): number | undefined {
  if (value === undefined || value === false) return undefined;
  if (value === true) return DEFAULT_IDEMPOTENCY_TTL;
  if (value !== null && typeof value === "object") {
    const ttl = (value as { ttl?: unknown }).ttl;
    if (ttl === undefined) return DEFAULT_IDEMPOTENCY_TTL;
    if (typeof ttl === "number" && Number.isSafeInteger(ttl) && ttl > 0) return ttl;
    throw new InvalidArgumentError(
      "idempotent.ttl",
      `must be a whole number of milliseconds > 0, got ${String(ttl)}`,
    );
  }
  throw new InvalidArgumentError("idempotent", "must be true, false or { ttl }");
}

/** The identity of an event for de-duplication: its source and id. */
export function idempotencyKey(event: CloudEvent): string {
  return `${event.source}\u0000${event.id}`;
}

/**
 * A bounded set of keys, each remembered for `ttl` ms. Keys expire in the
 * order they were added (one ttl for all), so a sweep from the oldest end
 * is enough.
 *
 * @example
 * ```ts
 * import { RememberedKeys } from "./idempotency.ts";
 * const seen = new RememberedKeys(1_000, 10);
 * seen.add("a", 0);
 * console.assert(seen.has("a", 500) && !seen.has("a", 1_500));
 * ```
 */
export class RememberedKeys {
  readonly #expiry = new Map<string, number>();

  /** Creates an empty set. */
  constructor(readonly ttl: number, readonly max: number = MAX_REMEMBERED) {}

  /** Whether `key` was added less than `ttl` ms before `now`. */
  has(key: string, now: number): boolean {
    const expires = this.#expiry.get(key);
    return expires !== undefined && expires > now;
  }

  /** Remembers `key` from `now`. */
  add(key: string, now: number): void {
    this.#expiry.delete(key);
    this.#expiry.set(key, now + this.ttl);
    for (const [oldest, expires] of this.#expiry) {
      if (expires > now && this.#expiry.size <= this.max) break;
      this.#expiry.delete(oldest);
    }
  }

  /** Keys remembered now (some may have expired but not been swept yet). */
  get size(): number {
    return this.#expiry.size;
  }
}

/**
 * Wraps a handler so it runs at most once per (`source`, `id`) within `ttl`:
 * a CloudEvent already handled successfully is acknowledged without running.
 * A copy that arrives while the event runs waits for that run: it is skipped
 * when the run succeeds and runs when it fails. Messages that are not
 * CloudEvents pass through.
 */
export function idempotentHandler(handler: Handler, ttl: number): Handler {
  const seen = new RememberedKeys(ttl);
  /** Per event running now: settles (never rejects) when its run ends. */
  const running = new Map<string, Promise<void>>();
  const wrapped: Handler = (message, context) => {
    if (!(message instanceof CloudEvent)) return handler(message, context);
    const key = idempotencyKey(message);
    if (seen.has(key, Date.now())) return undefined;
    const earlier = running.get(key);
    if (earlier !== undefined) return earlier.then(() => wrapped(message, context));
    const result = handler(message, context);
    if (result === null || typeof (result as Promise<unknown>)?.then !== "function") {
      seen.add(key, Date.now());
      return result;
    }
    const succeeded = Promise.resolve(result).then((value) => {
      seen.add(key, Date.now());
      return value;
    });
    const ended = succeeded.then(() => {}, () => {});
    running.set(key, ended);
    ended.then(() => {
      if (running.get(key) === ended) running.delete(key);
    });
    return succeeded;
  };
  Object.defineProperty(wrapped, "name", { value: handler.name });
  return wrapped;
}

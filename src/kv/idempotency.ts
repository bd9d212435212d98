/**
 * Effectively-once handling shared by every instance: a subscription with
 * `idempotent` records each CloudEvent it handled successfully under a key
 * that expires after the time to live, and acknowledges without running a
 * CloudEvent whose (`source`, `id`) is recorded, whichever instance handled
 * it and whoever published it twice. Copies that meet in one instance run
 * one after the other (the second is skipped when the first succeeded); two
 * copies running at the same moment in two instances may both run: the
 * record is written once the handler succeeded.
 *
 * @module
 */

import type { Handler } from "../broker.ts";
import { CloudEvent } from "../event.ts";
import { idempotencyKey } from "../idempotency.ts";
import { commit } from "./commit.ts";
import type { KvKey, KvStore } from "./kv_store.ts";

const encoder = new TextEncoder();

/** A fixed-length name for an event's (`source`, `id`): they may be long, keys may not. */
export async function eventDigest(event: CloudEvent): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", encoder.encode(idempotencyKey(event)));
  return Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/**
 * Wraps a handler so it runs at most once per CloudEvent (`source`, `id`)
 * within `ttl` ms, recorded under `keyOf(digest)` in `kv()`. Messages that are
 * not CloudEvents pass through. A record that cannot be written is reported;
 * the message still counts as handled.
 *
 * @example
 * ```ts
 * import { CloudEvent } from "../event.ts";
 * import { kvIdempotentHandler } from "./idempotency.ts";
 * const kv = await Deno.openKv(":memory:");
 * let runs = 0;
 * const once = kvIdempotentHandler(() => void runs++, 60_000, () => kv, (d) => ["done", d], console.error);
 * const event = new CloudEvent({ type: "t", source: "/s" });
 * const context = {} as Parameters<typeof once>[1];
 * await once(event, context);
 * await once(event, context);
 * console.assert(runs === 1);
 * kv.close();
 * ```
 */
export function kvIdempotentHandler(
  handler: Handler,
  ttl: number,
  kv: () => KvStore,
  keyOf: (digest: string) => KvKey,
  report: (message: string, error: unknown) => void,
): Handler {
  /** Per event running in this instance: copies wait for its outcome. */
  const running = new Map<string, Promise<void>>();
  const wrapped: Handler = async (message, context) => {
    if (!(message instanceof CloudEvent)) return await handler(message, context);
    const store = kv();
    const digest = await eventDigest(message);
    for (let earlier = running.get(digest); earlier !== undefined; earlier = running.get(digest)) {
      await earlier;
    }
    const { promise: ended, resolve: end } = Promise.withResolvers<void>();
    running.set(digest, ended);
    try {
      const key = keyOf(digest);
      if ((await store.get(key)).versionstamp !== null) return undefined;
      const result = await handler(message, context);
      try {
        await commit(() => store.atomic().set(key, true, { expireIn: ttl }));
      } catch (error) {
        report(`recording event ${message.id} as handled failed`, error);
      }
      return result;
    } finally {
      running.delete(digest);
      end();
    }
  };
  Object.defineProperty(wrapped, "name", { value: handler.name });
  return wrapped;
}

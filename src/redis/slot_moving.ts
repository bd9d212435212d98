/**
 * Refusals a Redis Cluster answers while a hash slot moves between masters
 * (resharding), to a command that therefore did not run and can be sent
 * again: `TRYAGAIN` (a command over several keys of the slot, of which some
 * moved and some did not, or a key it would create), `ASK` and `MOVED` (the
 * keys are, or are going, elsewhere), and the `NOSCRIPT` that follows a
 * script refused so: ioredis takes a script sent whole to a node as loaded
 * there even when the node refused it unrun, and sends only its SHA next.
 *
 * ioredis sends a pipeline again on the first three only when every command
 * in it got the same answer, and gives up after 16 redirections (100 ms
 * apart for `TRYAGAIN`). Moving a slot with many keys takes longer, and a
 * script over a channel's stream and a key it creates (a `dedupeWindow`
 * publish, an `idempotent` ack) gets `TRYAGAIN` until the slot's last key
 * moved; so the broker sends such a script again itself, after
 * {@linkcode movingRetryDelay}.
 *
 * @module
 */

/** The refusals, alone or as the last error of ioredis's "Too many Cluster redirections". */
const MOVING_REFUSAL =
  /^(?:Too many Cluster redirections\. Last error: (?:ReplyError: )?)?(?:TRYAGAIN|ASK|MOVED|NOSCRIPT)\b/;

/**
 * Whether `error` is a refusal of a command while its slot moves: the
 * command did not run.
 *
 * @example
 * ```ts
 * import { movingRefusal } from "./slot_moving.ts";
 * console.assert(movingRefusal(new Error("TRYAGAIN Multiple keys request during rehashing of slot")));
 * console.assert(movingRefusal(new Error("ASK 3999 127.0.0.1:7001")));
 * console.assert(!movingRefusal(new Error("ERR wrong number of arguments")));
 * console.assert(!movingRefusal("TRYAGAIN"));
 * ```
 */
export function movingRefusal(error: unknown): boolean {
  return error instanceof Error && MOVING_REFUSAL.test(error.message);
}

/** First wait before sending a refused command again, ms; it doubles each time. */
const FIRST_DELAY = 50;
/** Longest wait between two sends, ms. */
const MAX_DELAY = 800;

/**
 * Milliseconds to wait before sending a command refused as
 * {@linkcode movingRefusal} says again, for its `resends`-th resend (0
 * first): doubling from 50 ms up to 800 ms, so a short move costs little
 * and a long one is not hammered.
 *
 * @example
 * ```ts
 * import { movingRetryDelay } from "./slot_moving.ts";
 * console.assert(movingRetryDelay(0) === 50);
 * console.assert(movingRetryDelay(1) === 100);
 * console.assert(movingRetryDelay(10) === 800);
 * ```
 */
export function movingRetryDelay(resends: number): number {
  return Math.min(FIRST_DELAY * 2 ** resends, MAX_DELAY);
}

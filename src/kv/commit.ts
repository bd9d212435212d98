/**
 * Committing through a local database file that other handles write too.
 * SQLite lets one writer at a time; a commit with a check reads first and
 * then writes, and when another handle wrote in between, Deno KV gives up at
 * once with "database is locked" instead of waiting. Such a commit changed
 * nothing, so it is safe to build and try again after a short random pause.
 *
 * @module
 */

import { delay } from "../timers.ts";
import type { KvStoreAtomic } from "./kv_store.ts";

/** Longest time spent retrying one commit. */
const RETRY_FOR_MS = 10_000;

/** Tells the transient lock conflict of a local database file from real failures. */
export function isLockConflict(error: unknown): boolean {
  return error instanceof Error && /database is locked/i.test(error.message);
}

/**
 * Commits the operation `build` makes, building and committing again while
 * the file is locked by another handle.
 *
 * @example
 * ```ts
 * import { commit } from "./commit.ts";
 * const kv = await Deno.openKv(":memory:");
 * const result = await commit(() => kv.atomic().check({ key: ["k"], versionstamp: null }).set(["k"], 1));
 * console.log(result.ok); // true
 * kv.close();
 * ```
 */
export async function commit(
  build: () => KvStoreAtomic,
): Promise<{ ok: boolean; versionstamp?: string }> {
  const giveUpAt = Date.now() + RETRY_FOR_MS;
  for (let attempt = 1;; attempt++) {
    const atomic = build();
    try {
      return await atomic.commit();
    } catch (error) {
      if (!isLockConflict(error) || Date.now() > giveUpAt) throw error;
      await delay(1 + Math.random() * Math.min(20, 2 * attempt));
    }
  }
}

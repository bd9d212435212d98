/**
 * Small helpers shared by the Redis fault tests: unique key prefixes, key
 * cleanup, deferred promises and bounded waits (a wait that runs out fails
 * the test instead of hanging it).
 *
 * @module
 */

import { Redis } from "ioredis";

/** URL of the shared Redis every non-destructive test uses. */
export const SHARED_REDIS_URL = "redis://127.0.0.1:6379";

/** A key prefix no other test run uses, e.g. `test:crash:1a2b3c4d:`. */
export function uniquePrefix(label: string): string {
  return `test:${label}:${crypto.randomUUID().slice(0, 8)}:`;
}

import { withDeadline } from "../_deferred.ts";
export { type Deferred, deferred, withDeadline } from "../_deferred.ts";

/**
 * Polls `condition` every `intervalMs` until it holds; fails with `what` (and
 * the optional `detail()`) after `ms`.
 */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  ms: number,
  what: string,
  detail?: () => string,
  intervalMs = 20,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) {
      throw new Error(`${what}: not true within ${ms} ms${detail ? ` (${detail()})` : ""}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** An ioredis client for assertions and cleanup, connected before it is returned. */
export async function adminClient(url = SHARED_REDIS_URL): Promise<Redis> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await client.connect();
  return client;
}

/** Deletes every key starting with `prefix` (SCAN, never KEYS). */
export async function deleteKeys(client: Redis, prefix: string): Promise<number> {
  let cursor = "0";
  let deleted = 0;
  do {
    const [next, keys] = await client.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
    cursor = next;
    if (keys.length > 0) deleted += await client.unlink(...keys);
  } while (cursor !== "0");
  return deleted;
}

/** Parses `CLIENT LIST` into one record per connection. */
export async function clientList(client: Redis): Promise<Record<string, string>[]> {
  const text = await client.client("LIST") as string;
  return text.trim().split("\n").filter(Boolean).map((line) =>
    Object.fromEntries(
      line.trim().split(" ").map((pair) => {
        const at = pair.indexOf("=");
        return [pair.slice(0, at), pair.slice(at + 1)];
      }),
    )
  );
}

/** Anything with a `stop({ timeout })`, such as a broker. */
export interface Stoppable {
  stop(options?: { timeout?: number }): Promise<void>;
}

/**
 * Stops every broker (each given `timeout` to drain) and fails with `what`
 * if stopping them takes longer than `ms`: a hung stop fails the test rather
 * than hanging it.
 */
export async function stopAll(brokers: Stoppable[], timeout = 1_000, ms = 20_000): Promise<void> {
  const results = await withDeadline(
    Promise.allSettled(brokers.map((broker) => broker.stop({ timeout }))),
    ms,
    "stopping the brokers",
  );
  const failed = results.find((result) => result.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
}

/**
 * Waits until one of `addrs()`'s connections blocks in XREADGROUP, then kills
 * it from Redis' side (CLIENT KILL ID), as a dropped network path would.
 */
export async function killBlockedRead(
  admin: Redis,
  addrs: () => Set<string>,
  ms: number,
  what: string,
): Promise<void> {
  let blocked: Record<string, string> | undefined;
  await waitUntil(
    async () => {
      const mine = addrs();
      blocked = (await clientList(admin)).find((client) =>
        mine.has(client.addr) && client.cmd === "xreadgroup" && client.flags.includes("b")
      );
      return blocked !== undefined;
    },
    ms,
    what,
  );
  await admin.client("KILL", "ID", blocked!.id);
}

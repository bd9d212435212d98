/**
 * Attempts count handler starts, kept per group in Redis: claims by
 * consumers that never ran an entry do not count, the counts go with the
 * acknowledgement, and an entry whose consumer died while running it runs
 * alone, then is dead-lettered with that reason once its starts run out.
 */

import assert from "node:assert/strict";
import { RedisBroker } from "../../redis.ts";
import { type MessageContext, silentLogger } from "../../mod.ts";
import { attemptsKey, groupName, streamKey } from "../../src/redis/keys.ts";
import {
  adminClient,
  deferred,
  deleteKeys,
  stopAll,
  uniquePrefix,
  waitUntil,
  withDeadline,
} from "./_fault_util.ts";

const DEADLINE = 20_000;
const GROUP = groupName("eventbus", "work");

type Admin = Awaited<ReturnType<typeof adminClient>>;

/** Writes `payloads` and has a consumer that will never come back take them. */
async function takenByGhost(
  admin: Admin,
  keyPrefix: string,
  payloads: unknown[],
): Promise<string[]> {
  const stream = streamKey(keyPrefix, "jobs");
  await admin.xgroup("CREATE", stream, GROUP, "$", "MKSTREAM");
  const ids: string[] = [];
  for (const payload of payloads) {
    ids.push(await admin.xadd(stream, "*", "payload", JSON.stringify(payload)) as string);
  }
  await admin.xreadgroup("GROUP", GROUP, "ghost", "COUNT", payloads.length, "STREAMS", stream, ">");
  // Claimed over and over by consumers that died before running it: Redis counts 4 deliveries.
  await admin.xclaim(stream, GROUP, "ghost", 0, ...ids, "RETRYCOUNT", 4, "JUSTID");
  return ids;
}

/**
 * The ghost's entries are claimed this soon. Long enough that a stall between a
 * handler's end and its XACK does not let the consumer claim back the entry it
 * just handled and run it again.
 */
const CLAIM_IDLE_MS = 500;

Deno.test("attempts: claims without a run do not count; a failing handler counts 1, 2, 3; nothing is left after", async () => {
  const keyPrefix = uniquePrefix("attempts");
  const admin = await adminClient();
  const broker = new RedisBroker({
    keyPrefix,
    claimIdleMs: CLAIM_IDLE_MS,
    blockMs: 200,
    maxDeliveries: 3,
    retryBackoff: { initial: 5, max: 5 },
    logger: silentLogger,
  });
  const seen: { n: number; attempt: number }[] = [];
  const lettered = deferred();
  broker.subscribe("jobs", async function work(message: { n: number }, context: MessageContext) {
    await Promise.resolve();
    seen.push({ n: message.n, attempt: context.attempt });
    if (message.n === 1) {
      if (context.attempt === 3) lettered.resolve();
      throw new Error("always fails");
    }
  });
  try {
    await takenByGhost(admin, keyPrefix, [{ n: 0 }, { n: 1 }]);
    await broker.start();
    await lettered.promise;
    await waitUntil(
      () => broker.stats().deadLettered === 1,
      DEADLINE,
      "the failing entry dead-lettered",
    );
    assert.deepEqual(
      seen.filter((s) => s.n === 0).map((s) => s.attempt),
      [1],
      "never run before: attempt 1",
    );
    assert.deepEqual(seen.filter((s) => s.n === 1).map((s) => s.attempt), [1, 2, 3]);
    const [letter] = await broker.deadLetters("jobs");
    assert.equal(letter.attempts, 3);
    assert.equal(letter.error, "always fails");
    let left: Record<string, string> = {};
    await waitUntil(
      async () => {
        left = await admin.hgetall(attemptsKey(keyPrefix, "jobs", GROUP));
        return Object.keys(left).length === 0;
      },
      DEADLINE,
      "the counts went with the acknowledgement and the dead letter",
      () => JSON.stringify(left),
    );
  } finally {
    await stopAll([broker]);
    await deleteKeys(admin, keyPrefix);
    admin.disconnect();
  }
});

Deno.test("attempts: an entry whose consumer died while running it runs alone, and is dead-lettered once its starts run out", async () => {
  const keyPrefix = uniquePrefix("attempts-crash");
  const admin = await adminClient();
  const broker = new RedisBroker({
    keyPrefix,
    claimIdleMs: CLAIM_IDLE_MS,
    blockMs: 200,
    maxDeliveries: 5,
    logger: silentLogger,
  });
  let running = 0;
  const overlaps: string[] = [];
  const calls: { n: number; attempt: number }[] = [];
  const handled = deferred();
  broker.subscribe("jobs", async function work(message: { n: number }, context: MessageContext) {
    running++;
    if (running > 1 && (message.n === 1 || calls.some((c) => c.n === 1 && c.attempt === -1))) {
      overlaps.push(`n=${message.n} ran beside ${running - 1} other call(s)`);
    }
    calls.push({ n: message.n, attempt: context.attempt });
    // Work that gives the other calls a chance to overlap.
    await new Promise((resolve) => setTimeout(resolve, 5));
    running--;
    if (calls.length === 3) handled.resolve();
  }, { concurrency: 4 });
  try {
    const [healthy, suspect, exhausted] = await takenByGhost(admin, keyPrefix, [
      { n: 0 },
      { n: 1 },
      { n: 2 },
      { n: 3 },
    ]);
    const attempts = attemptsKey(keyPrefix, "jobs", GROUP);
    // n=1: started twice, failed once: its consumer died once while running it.
    // n=2: started 5 times, failed twice: its consumer died 3 times; no start left.
    await admin.hset(attempts, suspect, 2, `${suspect}:f`, 1, exhausted, 5, `${exhausted}:f`, 2);
    assert.ok(healthy);
    await broker.start();
    await handled.promise;
    await waitUntil(() => broker.stats().deadLettered === 1, DEADLINE, "n=2 dead-lettered");
    const [letter] = await broker.deadLetters("jobs");
    assert.deepEqual(letter.message, { n: 2 });
    assert.equal(letter.error, "its consumer died 3 times while running it (and failed 2 times)");
    assert.equal(letter.attempts, 5);
    assert.deepEqual(calls.find((c) => c.n === 1), { n: 1, attempt: 3 });
    assert.deepEqual(
      calls.filter((c) => c.n !== 1).map((c) => c.attempt),
      [1, 1],
      "n=0 and n=3 never ran before",
    );
    assert.deepEqual(overlaps, [], "the suspect ran alone");
  } finally {
    await stopAll([broker]);
    await deleteKeys(admin, keyPrefix);
    admin.disconnect();
  }
});

Deno.test("attempts: a suspect that hangs is given up by stop(); after a restart the subscription runs again", async () => {
  const keyPrefix = uniquePrefix("attempts-hang");
  const admin = await adminClient();
  const broker = new RedisBroker({
    keyPrefix,
    claimIdleMs: 50,
    blockMs: 200,
    logger: silentLogger,
  });
  const hung = deferred();
  const after = deferred();
  let hangOnce = true;
  broker.subscribe("jobs", function work(message: { n: number }) {
    if (message.n === 0 && hangOnce) {
      hangOnce = false;
      hung.resolve();
      return new Promise(() => {}); // never settles
    }
    if (message.n === 9) after.resolve();
  }, { concurrency: 4 });
  try {
    const [suspect] = await takenByGhost(admin, keyPrefix, [{ n: 0 }]);
    await admin.hset(attemptsKey(keyPrefix, "jobs", GROUP), suspect, 1);
    await broker.start();
    await hung.promise;
    await broker.stop({ timeout: 50 });
    await broker.start();
    await broker.publish({ n: 9 }, "jobs");
    await withDeadline(after.promise, DEADLINE, "an event handled after the restart");
  } finally {
    await stopAll([broker]);
    await deleteKeys(admin, keyPrefix);
    admin.disconnect();
  }
});

/**
 * `idempotent` subscriptions in stream mode: an event is marked handled (by
 * `source` + `id`) with its acknowledgement, and a copy delivered later, to
 * this instance or another one of the service, is acknowledged without
 * running.
 */

import assert from "node:assert/strict";
import { RedisBroker } from "../../redis.ts";
import { CloudEvent, InvalidArgumentError, silentLogger } from "../../mod.ts";
import { eventDigest } from "../../src/redis/dedupe.ts";
import { encodeEntry } from "../../src/redis/entry_codec.ts";
import { attemptsKey, doneKeyPrefix, groupName, streamKey } from "../../src/redis/keys.ts";
import {
  adminClient,
  deferred,
  deleteKeys,
  stopAll,
  uniquePrefix,
  waitUntil,
} from "./_fault_util.ts";

const DEADLINE = 20_000;

async function pendingOf(
  admin: Awaited<ReturnType<typeof adminClient>>,
  stream: string,
  group: string,
) {
  const [count] = await admin.xpending(stream, group) as [number];
  return count;
}

Deno.test("idempotent: the same event published twice, by two publishers, to two instances: one run", async () => {
  const keyPrefix = uniquePrefix("idempotent");
  const admin = await adminClient();
  const common = { keyPrefix, group: "billing", logger: silentLogger, blockMs: 200 };
  const first = new RedisBroker({ ...common, consumer: "first" });
  const second = new RedisBroker({ ...common, consumer: "second" });
  const runs: string[] = [];
  const sentinel = deferred();
  for (const [label, broker] of [["first", first], ["second", second]] as const) {
    broker.subscribe("payments", (event: CloudEvent) => {
      runs.push(`${label}:${event.subject}`);
      if (event.subject === "end") sentinel.resolve();
    }, { name: "charge", idempotent: { ttl: 60_000 }, concurrency: 4 });
  }
  try {
    await first.start();
    await second.start();
    const charge = new CloudEvent({ type: "test.charge", source: "/pay", subject: "charge" });
    await first.publish(charge, "payments");
    const stream = streamKey(keyPrefix, "payments");
    const group = groupName("billing", "charge");
    await waitUntil(
      async () => runs.length === 1 && (await pendingOf(admin, stream, group)) === 0,
      DEADLINE,
      "the first copy handled and acknowledged",
    );
    const mark = `${doneKeyPrefix(keyPrefix, "payments", group)}${eventDigest(charge)}`;
    const ttl = await admin.pttl(mark);
    assert.ok(ttl > 0 && ttl <= 60_000, `marked handled for the ttl, pttl ${ttl}`);
    // Copies sent again by either publisher, several at once.
    for (let i = 0; i < 3; i++) await second.publish(charge, "payments");
    await first.publish(CloudEvent.fromJSON(JSON.stringify(charge)), "payments");
    await first.publish(
      new CloudEvent({ type: "test.charge", source: "/pay", subject: "end" }),
      "payments",
    );
    await sentinel.promise;
    await waitUntil(
      async () => (await pendingOf(admin, stream, group)) === 0,
      DEADLINE,
      "every copy acknowledged",
    );
    assert.equal(runs.filter((run) => run.endsWith(":charge")).length, 1, JSON.stringify(runs));
    assert.equal(await admin.xlen(stream), 6, "six entries, one run of the charge");
  } finally {
    await stopAll([first, second]);
    await deleteKeys(admin, keyPrefix);
    admin.disconnect();
  }
});

Deno.test("idempotent: copies read in one batch by a concurrent subscription run once", async () => {
  const keyPrefix = uniquePrefix("idempotent-batch");
  const admin = await adminClient();
  const broker = new RedisBroker({ keyPrefix, logger: silentLogger, blockMs: 200 });
  const runs = new Map<string, number>();
  const all = deferred();
  broker.subscribe("jobs", async (event: CloudEvent) => {
    await Promise.resolve();
    runs.set(event.id, (runs.get(event.id) ?? 0) + 1);
    if (runs.size === 10) all.resolve();
  }, { name: "work", idempotent: true, concurrency: 8 });
  const publisher = new RedisBroker({ keyPrefix, logger: silentLogger });
  try {
    await publisher.start();
    // Written before the subscription reads: one read takes every copy.
    await broker.start();
    await broker.stop();
    const events = Array.from(
      { length: 10 },
      (_, n) => new CloudEvent({ type: "test.job", source: "/jobs", data: { n } }),
    );
    await Promise.all(
      events.flatMap((event) => [1, 2, 3].map(() => publisher.publish(event, "jobs"))),
    );
    await broker.start();
    await all.promise;
    const stream = streamKey(keyPrefix, "jobs");
    await waitUntil(
      async () => (await pendingOf(admin, stream, groupName("eventbus", "work"))) === 0,
      DEADLINE,
      "every copy acknowledged",
    );
    assert.deepEqual([...runs.values()], Array(10).fill(1));
  } finally {
    await stopAll([broker, publisher]);
    await deleteKeys(admin, keyPrefix);
    admin.disconnect();
  }
});

Deno.test("idempotent: a wrong ttl is refused", () => {
  const broker = new RedisBroker({ logger: silentLogger });
  for (const idempotent of [{ ttl: 0 }, { ttl: -5 }, { ttl: 1.5 }, "yes"]) {
    assert.throws(
      () => broker.subscribe("jobs", function once() {}, { idempotent } as never),
      (error: unknown) =>
        error instanceof InvalidArgumentError && error.argument.startsWith("idempotent"),
    );
  }
  assert.equal(broker.stats().subscribers, 0);
});

Deno.test("idempotent: a claimed copy of a handled event is acknowledged and its recorded runs removed", async () => {
  const keyPrefix = uniquePrefix("idempotent-claimed");
  const admin = await adminClient();
  const group = groupName("eventbus", "work");
  const stream = streamKey(keyPrefix, "jobs");
  const attempts = attemptsKey(keyPrefix, "jobs", group);
  const broker = new RedisBroker({
    keyPrefix,
    claimIdleMs: 50,
    blockMs: 100,
    logger: silentLogger,
  });
  let runs = 0;
  try {
    await admin.xgroup("CREATE", stream, group, "$", "MKSTREAM");
    const event = new CloudEvent({ type: "test.claimed", source: "/s", id: "dup-1" });
    const id = await admin.xadd(stream, "*", ...encodeEntry(event, undefined)) as string;
    // A consumer read it, recorded its start and died; another copy was handled meanwhile.
    await admin.xreadgroup("GROUP", group, "ghost", "COUNT", 10, "STREAMS", stream, ">");
    await admin.hset(attempts, id, 1);
    await admin.set(`${doneKeyPrefix(keyPrefix, "jobs", group)}${eventDigest(event)}`, "1");
    broker.subscribe("jobs", function work() {
      runs++;
    }, { idempotent: true });
    await broker.start();
    await waitUntil(
      async () => (await pendingOf(admin, stream, group)) === 0,
      DEADLINE,
      "the claimed copy acknowledged",
    );
    assert.equal(runs, 0);
    await waitUntil(
      async () => (await admin.hlen(attempts)) === 0,
      DEADLINE,
      "its recorded runs removed",
    );
  } finally {
    await stopAll([broker]);
    await deleteKeys(admin, keyPrefix);
    admin.disconnect();
  }
});

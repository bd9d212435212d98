/**
 * `dedupeWindow`: a CloudEvent whose (`source`, `id`) was written within the
 * window is accepted again without a second stream entry, whether the
 * caller retried or the client resent a command after Redis came back.
 */

import assert from "node:assert/strict";
import { RedisBroker } from "../../redis.ts";
import { BrokerError, CloudEvent, InvalidArgumentError, silentLogger } from "../../mod.ts";
import { seenKey, streamKey } from "../../src/redis/keys.ts";
import { eventDigest } from "../../src/redis/dedupe.ts";
import { RedisServer } from "./_redis_server.ts";
import {
  adminClient,
  deferred,
  deleteKeys,
  stopAll,
  uniquePrefix,
  withDeadline,
} from "./_fault_util.ts";

/** Event ids of a stream's entries, with how many entries each has. */
async function entriesPerId(
  admin: Awaited<ReturnType<typeof adminClient>>,
  key: string,
): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  let from = "-";
  for (;;) {
    const entries = await admin.xrange(key, from, "+", "COUNT", 1000) as [string, string[]][];
    for (const [, fields] of entries) {
      const id = fields[fields.indexOf("id") + 1];
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    if (entries.length < 1000) return counts;
    from = `(${entries[entries.length - 1][0]}`;
  }
}

Deno.test("dedupeWindow: the same event published twice is written once; other messages are not touched", async () => {
  const keyPrefix = uniquePrefix("dedupe");
  const admin = await adminClient();
  const broker = new RedisBroker({ keyPrefix, dedupeWindow: 60_000, logger: silentLogger });
  try {
    await broker.start();
    const event = new CloudEvent({ type: "test.dedupe", source: "/orders", data: { n: 1 } });
    await broker.publish(event, "orders");
    await broker.publish(event, "orders"); // a caller's retry
    await broker.publish(CloudEvent.fromJSON(JSON.stringify(event)), "orders"); // a copy
    // Same id, other source: another event.
    await broker.publish(new CloudEvent({ ...event.toJSON(), source: "/billing" }), "orders");
    // Plain JSON has no identity: written every time.
    await broker.publish({ n: 2 }, "orders");
    await broker.publish({ n: 2 }, "orders");
    assert.equal(await admin.xlen(streamKey(keyPrefix, "orders")), 4);
    // One key per event written, living for the window.
    for (const source of ["/orders", "/billing"]) {
      const copy = new CloudEvent({ ...event.toJSON(), source });
      const ttl = await admin.pttl(seenKey(keyPrefix, "orders", eventDigest(copy)));
      assert.ok(ttl > 0 && ttl <= 60_000, `the key of ${source} lives for the window, pttl ${ttl}`);
    }
  } finally {
    await stopAll([broker]);
    await deleteKeys(admin, keyPrefix);
    admin.disconnect();
  }
});

Deno.test("dedupeWindow: publishes of one turn keep their order, across channels and kinds", async () => {
  const keyPrefix = uniquePrefix("dedupe-order");
  const admin = await adminClient();
  const broker = new RedisBroker({ keyPrefix, dedupeWindow: 60_000, logger: silentLogger });
  try {
    await broker.start();
    const event = (n: number) =>
      new CloudEvent({ type: "test.order", source: "/o", id: `o-${n}`, data: { n } });
    // One turn of the event loop: one pipeline, with script calls and plain XADDs mixed.
    await Promise.all([
      broker.publish(event(1), "a"),
      broker.publish(event(2), "a"),
      broker.publish({ n: 3 }, "a"),
      broker.publish(event(4), "a"),
      broker.publish(event(2), "a"), // written already
      broker.publish(event(5), "b"),
      broker.publish(event(6), "a"),
    ]);
    const order = async (channel: string) =>
      (await admin.xrange(streamKey(keyPrefix, channel), "-", "+") as [string, string[]][])
        .map(([, fields]) =>
          JSON.parse(fields[fields.indexOf(fields.includes("data") ? "data" : "payload") + 1]).n
        );
    assert.deepEqual(await order("a"), [1, 2, 3, 4, 6]);
    assert.deepEqual(await order("b"), [5]);
  } finally {
    await stopAll([broker]);
    await deleteKeys(admin, keyPrefix);
    admin.disconnect();
  }
});

Deno.test("dedupeWindow: a request is always written, so asking twice gets two answers", async () => {
  const keyPrefix = uniquePrefix("dedupe-request");
  const admin = await adminClient();
  const broker = new RedisBroker({ keyPrefix, dedupeWindow: 60_000, logger: silentLogger });
  broker.subscribe("quotes", function quote(event: CloudEvent<{ n: number }>) {
    return event.data!.n * 2;
  });
  try {
    await broker.start();
    const ask = new CloudEvent({ type: "test.quote", source: "/q", data: { n: 21 } });
    assert.equal(await broker.request(ask, "quotes", { timeout: 5_000 }), 42);
    assert.equal(await broker.request(ask, "quotes", { timeout: 5_000 }), 42);
  } finally {
    await stopAll([broker]);
    await deleteKeys(admin, keyPrefix);
    admin.disconnect();
  }
});

Deno.test("dedupeWindow: wrong values and pub/sub mode are refused", () => {
  for (const dedupeWindow of [-1, 1.5, "60000", Number.NaN]) {
    assert.throws(
      () => new RedisBroker({ dedupeWindow: dedupeWindow as number }),
      (error: unknown) =>
        error instanceof InvalidArgumentError && error.argument === "dedupeWindow",
    );
  }
  assert.throws(
    () => new RedisBroker({ mode: "pubsub", dedupeWindow: 1_000 }),
    (error: unknown) => error instanceof InvalidArgumentError && error.argument === "dedupeWindow",
  );
  new RedisBroker({ mode: "pubsub", dedupeWindow: 0, logger: silentLogger });
});

Deno.test("dedupeWindow: Redis killed and restarted (AOF) while publishing: no event written twice", async () => {
  const EVENTS = 10_000;
  const WINDOW = 64;
  const KILL_AT = EVENTS / 2;
  await using server = await RedisServer.start({
    args: ["--appendonly", "yes", "--appendfsync", "always"],
  });
  const keyPrefix = "dedupe-restart:";
  const broker = new RedisBroker({
    url: server.url(),
    keyPrefix,
    dedupeWindow: 600_000,
    publishTimeout: 1_000,
    connectTimeout: 2_000,
    logger: silentLogger,
  });
  const events = Array.from(
    { length: EVENTS },
    (_, n) => new CloudEvent({ type: "test.ledger", source: "/ledger", id: `e-${n}`, data: { n } }),
  );
  const resolved = new Set<number>();
  const rejected = new Set<number>();
  let restarted: Promise<void> | undefined;
  const someRejected = deferred();
  try {
    await broker.start();
    const inFlight = new Set<Promise<void>>();
    for (let n = 0; n < EVENTS; n++) {
      if (n === KILL_AT) {
        await server.stop("kill");
        restarted = someRejected.promise.then(() => server.restart());
      }
      while (inFlight.size >= WINDOW) {
        await withDeadline(Promise.race(inFlight), 30_000, `a publish settles (event ${n})`);
      }
      const tracked: Promise<void> = broker.publish(events[n], "ledger").then(
        () => void resolved.add(n),
        (error) => {
          assert.ok(error instanceof BrokerError, String(error));
          rejected.add(n);
          someRejected.resolve();
        },
      ).finally(() => inFlight.delete(tracked));
      inFlight.add(tracked);
    }
    await withDeadline(Promise.all(inFlight), 30_000, "every publish settles");
    await withDeadline(restarted ?? Promise.resolve(), 30_000, "server restarted");
    const admin = await adminClient(server.url());
    try {
      const firstPass = await entriesPerId(admin, streamKey(keyPrefix, "ledger"));
      const twice = [...firstPass.values()].filter((count) => count > 1).length;
      // The caller retries what was rejected: written at most once more.
      let retried = 0;
      for (const n of rejected) {
        await withDeadline(broker.publish(events[n], "ledger"), 30_000, `retry of event ${n}`);
        retried++;
      }
      const counts = await entriesPerId(admin, streamKey(keyPrefix, "ledger"));
      const duplicates = [...counts.values()].filter((count) => count > 1).length;
      console.log(
        `${EVENTS} publishes: ${resolved.size} resolved, ${rejected.size} rejected and retried; ` +
          `${firstPass.size} entries before the retries (${twice} written twice), ` +
          `${counts.size} distinct events after, ${duplicates} duplicates`,
      );
      assert.ok(rejected.size > 0, "the outage rejected publishes");
      assert.equal(retried, rejected.size);
      assert.equal(twice, 0, "no event written twice by a resend");
      assert.equal(duplicates, 0, "no event written twice by a caller's retry");
      assert.equal(counts.size, EVENTS, "every event written once");
    } finally {
      admin.disconnect();
    }
  } finally {
    someRejected.resolve();
    await restarted?.catch(() => {});
    await stopAll([broker]);
  }
});

Deno.test("dedupe: short identities name keys as they are, long ones by their digest", () => {
  const short = new CloudEvent({ id: "A1", type: "t", source: "/s" });
  assert.equal(eventDigest(short), "r:/s\u0000A1");
  const long = new CloudEvent({ id: "x".repeat(5_000), type: "t", source: "/s" });
  assert.match(eventDigest(long), /^h:[0-9a-f]{40}$/);
  const other = new CloudEvent({ id: "x".repeat(4_999) + "y", type: "t", source: "/s" });
  assert.notEqual(eventDigest(long), eventDigest(other));
});

/**
 * RedisBroker on Redis Cluster beyond the shared contract: option checks,
 * channels spread over several masters with events flowing on each, dead
 * letters and replay, broadcast, and `replicas` (WAIT) on a cluster and on a
 * single primary with a replica. Clusters and servers are private, on free
 * loopback ports.
 */

import assert from "node:assert/strict";
import {
  BrokerError,
  CloudEvent,
  InvalidArgumentError,
  RejectMessage,
  silentLogger,
} from "../../mod.ts";
import { RedisBroker } from "../../redis.ts";
import { withDeadline } from "../_deferred.ts";
import { RedisCluster } from "./_redis_cluster.ts";
import { RedisServer } from "./_redis_server.ts";

const DEADLINE = 20_000;

Deno.test("RedisBroker cluster option: validated, and exclusive with url", () => {
  const bad: [unknown, RegExp][] = [
    [
      { cluster: ["redis://127.0.0.1:7000"], url: "redis://127.0.0.1:6379" },
      /cluster.*mutually exclusive/,
    ],
    [{ cluster: [] }, /cluster.*non-empty array/],
    [{ cluster: "redis://127.0.0.1:7000" }, /cluster.*non-empty array/],
    [{ cluster: [7000] }, /cluster\[0\].*must be a string/],
    [{ cluster: ["http://127.0.0.1:7000"] }, /url.*redis:\/\//],
    [{ replicas: -1 }, /replicas.*integer >= 0/],
    [{ replicas: 1.5 }, /replicas.*integer >= 0/],
    [{ replicas: 1, mode: "pubsub" }, /replicas.*stream mode only/],
  ];
  for (const [options, message] of bad) {
    assert.throws(
      () => new RedisBroker(options as never),
      (error: unknown) => error instanceof InvalidArgumentError && message.test(error.message),
      JSON.stringify(options),
    );
  }
});

Deno.test("RedisBroker cluster: a password in a node URL is masked in the connection error", async () => {
  const broker = new RedisBroker({
    cluster: ["redis://:s3cret@127.0.0.1:1"],
    connectTimeout: 500,
    logger: silentLogger,
  });
  await assert.rejects(broker.start(), (error: unknown) => {
    assert.ok(error instanceof BrokerError);
    assert.doesNotMatch(error.message, /s3cret/);
    assert.match(error.message, /redis:\/\/:\*\*\*@127\.0\.0\.1:1/);
    return true;
  });
});

Deno.test("RedisBroker cluster: channels land on several masters and events flow on each", async () => {
  await using cluster = await RedisCluster.start();
  const keyPrefix = `test:cluster:${crypto.randomUUID().slice(0, 8)}:`;
  const channels = Array.from({ length: 8 }, (_, i) => `spread-${i}`);
  const owners = new Set<number>();
  for (const channel of channels) {
    owners.add((await cluster.ownerOf(`${keyPrefix}{${channel}}:stream`)).port);
  }
  assert.ok(owners.size >= 2, `8 channels on ${owners.size} master(s)`);
  await using broker = new RedisBroker({
    cluster: cluster.urls(),
    keyPrefix,
    blockMs: 200,
    logger: silentLogger,
  });
  const got = new Map<string, number[]>(channels.map((channel) => [channel, []]));
  const all = Promise.withResolvers<void>();
  let total = 0;
  for (const channel of channels) {
    broker.subscribe(channel, (event: { n: number }) => {
      got.get(channel)!.push(event.n);
      if (++total === channels.length * 50) all.resolve();
    }, { name: "spread" });
  }
  await broker.start();
  await Promise.all(
    channels.flatMap((channel) =>
      Array.from({ length: 50 }, (_, n) => broker.publish({ n }, channel))
    ),
  );
  await withDeadline(all.promise, DEADLINE, "every event on every channel");
  for (const channel of channels) {
    assert.deepEqual(got.get(channel), Array.from({ length: 50 }, (_, n) => n), channel);
  }
  await broker.stop();
  await cluster.deleteKeys(keyPrefix);
});

Deno.test("RedisBroker cluster: dead letters, replay and broadcast work per channel slot", async () => {
  await using cluster = await RedisCluster.start();
  const keyPrefix = `test:cluster:${crypto.randomUUID().slice(0, 8)}:`;
  const options = { cluster: cluster.urls(), keyPrefix, blockMs: 200, logger: silentLogger };
  await using worker = new RedisBroker(options);
  let refuse = true;
  const handled = Promise.withResolvers<string>();
  worker.subscribe("invoices", (event: { id: string }) => {
    if (refuse) throw new RejectMessage("not yet");
    handled.resolve(event.id);
  }, { name: "book" });
  await using one = new RedisBroker({ ...options, delivery: "broadcast", consumer: "one" });
  await using two = new RedisBroker({ ...options, delivery: "broadcast", consumer: "two" });
  const heard = [Promise.withResolvers<string>(), Promise.withResolvers<string>()];
  one.subscribe("cache", (key: string) => heard[0].resolve(key), { name: "evict" });
  two.subscribe("cache", (key: string) => heard[1].resolve(key), { name: "evict" });
  await Promise.all([worker.start(), one.start(), two.start()]);

  await worker.publish({ id: "INV-1" }, "invoices");
  const letters = await withDeadline(
    (async () => {
      for (;;) {
        const found = await worker.deadLetters("invoices");
        if (found.length > 0) return found;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })(),
    DEADLINE,
    "the dead letter",
  );
  assert.equal(letters.length, 1);
  refuse = false;
  assert.equal(await worker.replayDeadLetters("invoices"), 1);
  assert.equal(await withDeadline(handled.promise, DEADLINE, "the replayed event"), "INV-1");
  assert.equal((await worker.deadLetters("invoices")).length, 0);

  await one.publish("user:7", "cache");
  assert.deepEqual(
    await withDeadline(Promise.all(heard.map((h) => h.promise)), DEADLINE, "both instances"),
    ["user:7", "user:7"],
  );
  await Promise.all([worker.stop(), one.stop(), two.stop()]);
  await cluster.deleteKeys(keyPrefix);
});

Deno.test("RedisBroker replicas on a cluster: publish resolves once a replica holds the entry", async () => {
  await using cluster = await RedisCluster.start();
  const keyPrefix = `test:cluster:${crypto.randomUUID().slice(0, 8)}:`;
  await using broker = new RedisBroker({
    cluster: cluster.urls(),
    keyPrefix,
    replicas: 1,
    logger: silentLogger,
  });
  await broker.start();
  await Promise.all(["a", "b", "c"].map((channel) => broker.publish({ channel }, channel)));
  // A batch over channels of several slots: one MULTI/EXEC and one WAIT per channel.
  await broker.publishBatch(
    ["a", "b", "c", "a"].map((channel, n) => ({ message: { channel, n }, channel })),
  );
  // More replicas than the cluster has: WAIT cannot be satisfied.
  await using greedy = new RedisBroker({
    cluster: cluster.urls(),
    keyPrefix,
    replicas: 2,
    publishTimeout: 300,
    logger: silentLogger,
  });
  await greedy.start();
  await assert.rejects(
    greedy.publish({ n: 1 }, "a"),
    (error: unknown) => error instanceof BrokerError && /replica|within 300 ms/.test(error.message),
  );
  await assert.rejects(
    greedy.publishBatch([{ message: { n: 2 }, channel: "a" }, { message: { n: 3 }, channel: "b" }]),
    (error: unknown) => error instanceof BrokerError && /replica|within 300 ms/.test(error.message),
  );
  await Promise.all([broker.stop(), greedy.stop()]);
  await cluster.deleteKeys(keyPrefix);
});

Deno.test("RedisBroker replicas on one primary with a replica: WAIT holds each publish", async () => {
  // No 5 s pause before the replica's first (diskless) sync.
  await using primary = await RedisServer.start({ args: ["--repl-diskless-sync-delay", "0"] });
  await using replica = await RedisServer.start({
    args: ["--replicaof", "127.0.0.1", String(primary.port)],
  });
  const linked = (async () => {
    for (;;) {
      const info = await new Deno.Command("redis-cli", {
        args: ["-p", String(replica.port), "info", "replication"],
        stdout: "piped",
      }).output();
      if (new TextDecoder().decode(info.stdout).includes("master_link_status:up")) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  await withDeadline(linked, DEADLINE, "the replica's link to its primary");
  await using broker = new RedisBroker({ url: primary.url(), replicas: 1, logger: silentLogger });
  const got = Promise.withResolvers<number>();
  broker.subscribe("orders", (event: { n: number }) => got.resolve(event.n), { name: "ship" });
  await broker.start();
  await broker.publish({ n: 1 }, "orders");
  assert.equal(await withDeadline(got.promise, DEADLINE, "the event"), 1);
  // The replica holds the entry: read it there.
  const onReplica = await new Deno.Command("redis-cli", {
    args: ["-p", String(replica.port), "xlen", "eventbus:{orders}:stream"],
    stdout: "piped",
  }).output();
  assert.equal(new TextDecoder().decode(onReplica.stdout).trim(), "1");
  // A batch is one MULTI/EXEC, then the WAIT: resolved, the replica holds all of it.
  await broker.publishBatch([2, 3, 4].map((n) => ({ message: { n }, channel: "orders" })));
  const batchOnReplica = await new Deno.Command("redis-cli", {
    args: ["-p", String(replica.port), "xlen", "eventbus:{orders}:stream"],
    stdout: "piped",
  }).output();
  assert.equal(new TextDecoder().decode(batchOnReplica.stdout).trim(), "4");
  await replica.stop();
  await using lonely = new RedisBroker({
    url: primary.url(),
    replicas: 1,
    publishTimeout: 300,
    logger: silentLogger,
  });
  await lonely.start();
  await assert.rejects(
    lonely.publish({ n: 2 }, "orders"),
    (error: unknown) => error instanceof BrokerError && /replica|within 300 ms/.test(error.message),
  );
  await assert.rejects(
    lonely.publishBatch([{ message: { n: 3 }, channel: "orders" }]),
    (error: unknown) => error instanceof BrokerError && /replica|within 300 ms/.test(error.message),
  );
});

Deno.test("RedisBroker cluster: health reads lag and dead letters of channels on several masters", async () => {
  await using cluster = await RedisCluster.start();
  const keyPrefix = `test:cluster:${crypto.randomUUID().slice(0, 8)}:`;
  const channels = Array.from({ length: 6 }, (_, i) => `health-${i}`);
  const owners = new Set<number>();
  for (const channel of channels) {
    owners.add((await cluster.ownerOf(`${keyPrefix}{${channel}}:stream`)).port);
  }
  assert.ok(owners.size >= 2, `6 channels on ${owners.size} master(s)`);
  await using broker = new RedisBroker({
    cluster: cluster.urls(),
    keyPrefix,
    blockMs: 200,
    logger: silentLogger,
  });
  for (const channel of channels) broker.subscribe(channel, () => {}, { name: "watch" });
  await broker.start();
  const health = await broker.health();
  assert.equal(health.connected, true);
  assert.equal(health.subscriptions.length, channels.length);
  for (const sub of health.subscriptions) assert.equal(sub.lag, 0, sub.channel);
  await broker.stop();
  await cluster.deleteKeys(keyPrefix);
});

Deno.test("RedisBroker cluster: dedupeWindow and idempotent keep to each channel's slot", async () => {
  await using cluster = await RedisCluster.start();
  const keyPrefix = `test:cluster:${crypto.randomUUID().slice(0, 8)}:`;
  await using broker = new RedisBroker({
    cluster: cluster.urls(),
    keyPrefix,
    blockMs: 200,
    dedupeWindow: 60_000,
    logger: silentLogger,
  });
  const channels = ["orders", "payments", "refunds"];
  const runs: string[] = [];
  const sentinels = channels.map(() => Promise.withResolvers<void>());
  channels.forEach((channel, i) => {
    broker.subscribe(channel, (event: CloudEvent) => {
      if (event.subject === "last") sentinels[i].resolve();
      else runs.push(`${channel}:${event.id}`);
    }, { name: "once", idempotent: true });
  });
  await broker.start();
  for (const channel of channels) {
    const event = new CloudEvent({ id: `${channel}-1`, type: "t", source: "/c" });
    // Twice in one turn, then again: one entry per channel (dedupeWindow), one run (idempotent).
    await Promise.all([broker.publish(event, channel), broker.publish(event, channel)]);
    await broker.publish(event, channel);
    await broker.publish(new CloudEvent({ type: "t", source: "/c", subject: "last" }), channel);
  }
  await withDeadline(Promise.all(sentinels.map((s) => s.promise)), DEADLINE, "the sentinels");
  assert.deepEqual(runs.sort(), ["orders:orders-1", "payments:payments-1", "refunds:refunds-1"]);
  await broker.stop();
  await cluster.deleteKeys(keyPrefix);
});

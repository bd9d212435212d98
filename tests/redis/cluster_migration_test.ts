/**
 * A channel's hash slot migrates to another master (resharding) while a
 * publisher publishes and a consumer handles its events: `IMPORTING` /
 * `MIGRATING`, `MIGRATE` of its keys ten at a time, `SETSLOT NODE` on every
 * master. The slot stays half-moved for a while, longer than ioredis's own
 * retries of `TRYAGAIN` last, and some handlers finish within that time.
 * Every publish that resolved is handled, nothing stays pending, and the
 * consumer's blocking reads end up on the new owner. Run once with plain
 * publishes and acks, once with `dedupeWindow` and `idempotent`, whose
 * scripts span several keys and get `TRYAGAIN` until every key of the slot
 * moved: they must be sent again, not rejected.
 */

import assert from "node:assert/strict";
import { CloudEvent, silentLogger } from "../../mod.ts";
import { RedisBroker } from "../../redis.ts";
import { delay } from "../../src/timers.ts";
import { deferred } from "../_deferred.ts";
import { waitFor, waitForAsync } from "../broker_contract.ts";
import { RedisCluster } from "./_redis_cluster.ts";
import type { RedisServer } from "./_redis_server.ts";

const CHANNEL = "moving";
/** Publishes in flight at once. */
const LANES = 20;
/** Published before the move starts... */
const BEFORE = 600;
/** ...at most this many while the slot is half-moved... */
const DURING_AT_MOST = 2_000;
/** ...and this many once it moved. */
const AFTER = 200;
const DEADLINE = 20_000;
/** Events just before the move wait in their handler until it started: their acks meet it. */
const HELD = 100;
/**
 * How long the slot stays half-moved after its first keys moved: past
 * ioredis's own retries of TRYAGAIN (16 redirections, 100 ms apart), within
 * the publisher's `publishTimeout`. The shape of the load, not a wait for
 * something to happen.
 */
const HALF_MOVED_MS = 2_500;
/**
 * A publish sent as the slot goes half-moved waits through HALF_MOVED_MS, then
 * the remaining MIGRATE rounds and a `redis-cli` per SETSLOT: far more than
 * 2.5 s on a loaded machine. A rejection then means the library gave up on
 * the slot, not that the machine was slow.
 */
const PUBLISH_TIMEOUT_MS = 30_000;

interface MigrationRun {
  resolved: number;
  rejected: string[];
  /** Publishes sent while the slot was half-moved. */
  during: number;
  keysMoved: number;
  /** TRYAGAIN answers of the two nodes: multi-key commands that met the half-moved slot. */
  tryAgain: number;
  /** Acknowledgements that failed (their entries stayed pending, to be claimed). */
  failedAcks: string[];
  /** Successful handler runs beyond the first of an event (at least once allows them). */
  duplicates: number;
}

/** TRYAGAIN errors `node` answered so far. */
async function tryAgainCount(cluster: RedisCluster, node: RedisServer): Promise<number> {
  const stats = await cluster.cli(node, "info", "errorstats");
  return Number(/errorstat_TRYAGAIN:count=(\d+)/.exec(stats)?.[1] ?? 0);
}

async function migrate(options: { dedupe: boolean }): Promise<MigrationRun> {
  await using cluster = await RedisCluster.start({ replicas: 0 });
  const keyPrefix = `test:migration:${crypto.randomUUID().slice(0, 8)}:`;
  const stream = `${keyPrefix}{${CHANNEL}}:stream`;
  const source = await cluster.ownerOf(stream);
  const target = (await cluster.masters()).find((node) => node.port !== source.port)!;

  const common = {
    cluster: cluster.urls(),
    keyPrefix,
    logger: silentLogger,
    dedupeWindow: options.dedupe ? 60_000 : 0,
  };
  const failedAcks: string[] = [];
  await using consumer = new RedisBroker({
    ...common,
    blockMs: 200,
    claimIdleMs: 2_000,
    logger: {
      ...silentLogger,
      warn: (message) => {
        if (message.startsWith("XACK of")) failedAcks.push(message);
      },
    },
  });
  await using publisher = new RedisBroker({ ...common, publishTimeout: PUBLISH_TIMEOUT_MS });
  /** Successful runs per event number. */
  const runs = new Map<number, number>();
  const failedOnce = new Set<number>();
  const moveStarted = deferred();
  consumer.subscribe(CHANNEL, async (event: CloudEvent<{ n: number }>) => {
    const n = event.data!.n;
    if (n >= BEFORE - HELD && n < BEFORE) await moveStarted.promise;
    // Every 50th event fails once: its retry and its recorded runs cross the migration too.
    if (n % 50 === 0 && !failedOnce.has(n)) {
      failedOnce.add(n);
      throw new Error("fails once");
    }
    runs.set(n, (runs.get(n) ?? 0) + 1);
  }, { name: "count", idempotent: options.dedupe });
  await consumer.start();
  await publisher.start();

  const readersOn = async (port: number) => {
    const node = cluster.nodes.find((n) => n.port === port)!;
    const clients = await cluster.cli(node, "client", "list");
    return clients.split("\n").filter((line) => line.includes("cmd=xreadgroup")).length;
  };
  assert.equal(await readersOn(target.port), 0, "no read goes to the new owner before the move");

  let sent = 0;
  const resolved = new Set<number>();
  const rejected: string[] = [];
  const eventOf = (n: number) =>
    new CloudEvent({ type: "moving.t", source: "/migration", id: `m-${n}`, data: { n } });
  /** Publishes event `n`, or events `n` to `n + size - 1` as one batch (one transaction). */
  const publish = async (n: number, size = 1) => {
    const numbers = Array.from({ length: size }, (_, i) => n + i);
    try {
      if (size === 1) await publisher.publish(eventOf(n), CHANNEL);
      else {
        await publisher.publishBatch(
          numbers.map((k) => ({ message: eventOf(k), channel: CHANNEL })),
        );
      }
      for (const k of numbers) resolved.add(k);
    } catch (error) {
      for (const k of numbers) rejected.push(`${k}: ${(error as Error).message}`);
    }
  };
  /** Publishes `count` events, `LANES` at a time, stopping early once `more()` is false. */
  const publishMany = async (count: number, more: () => boolean = () => true) => {
    const last = sent + count;
    const lane = async () => {
      while (sent < last && more()) {
        // One publish in ten is a batch of three.
        const size = sent % 10 === 0 ? Math.min(3, last - sent) : 1;
        const n = sent;
        sent += size;
        await publish(n, size);
      }
    };
    await Promise.all(Array.from({ length: LANES }, lane));
  };

  await publishMany(BEFORE);
  let halfMoved = false;
  const migration = cluster.migrateSlot(stream, target, {
    between: async () => {
      if (halfMoved) return;
      halfMoved = true;
      moveStarted.resolve();
      await delay(HALF_MOVED_MS);
    },
  });
  let moving = true;
  void migration.finally(() => moving = false).catch(() => {});
  await moveStarted.promise;
  const before = sent;
  await publishMany(DURING_AT_MOST, () => moving);
  const during = sent - before;
  const keysMoved = await migration;
  assert.equal((await cluster.ownerOf(stream)).port, target.port, "the slot moved");
  await publishMany(AFTER);

  await waitFor(() => [...resolved].every((n) => runs.has(n)), {
    deadline: DEADLINE,
    what: "every resolved publish handled",
  });
  await waitForAsync(async () => {
    const summary = await cluster.cli(target, "xpending", stream, "eventbus:count");
    return summary.trim().split("\n")[0] === "0";
  }, { deadline: DEADLINE, what: "nothing pending on the new owner" });
  await waitForAsync(async () => (await readersOn(target.port)) > 0, {
    deadline: DEADLINE,
    what: "the consumer's blocking read on the new owner",
  });
  assert.equal(consumer.stats().errors, failedOnce.size, "only the planned failures");

  let duplicates = 0;
  for (const count of runs.values()) duplicates += count - 1;
  const tryAgain = (await tryAgainCount(cluster, source)) + (await tryAgainCount(cluster, target));
  return {
    resolved: resolved.size,
    rejected,
    during,
    keysMoved,
    tryAgain,
    failedAcks,
    duplicates,
  };
}

Deno.test("RedisBroker cluster: a slot migrating under plain publishes and acks", async () => {
  const run = await migrate({ dedupe: false });
  console.log(
    `plain: ${run.keysMoved} keys moved, ${run.during} publishes during the move, ` +
      `${run.resolved} resolved, ${run.rejected.length} rejected, ${run.failedAcks.length} acks failed, ` +
      `${run.duplicates} handled twice`,
  );
  assert.deepEqual(run.rejected, []);
  assert.deepEqual(run.failedAcks, []);
  assert.ok(run.during > 0, "publishes overlapped the migration");
  assert.equal(run.tryAgain, 0, "no multi-key command");
});

Deno.test("RedisBroker cluster: a slot migrating under dedupeWindow publishes and idempotent acks", async () => {
  const run = await migrate({ dedupe: true });
  console.log(
    `dedupe + idempotent: ${run.keysMoved} keys moved, ${run.during} publishes during the move, ` +
      `${run.resolved} resolved, ${run.rejected.length} rejected, ${run.failedAcks.length} acks failed, ` +
      `${run.duplicates} handled twice, ` +
      `${run.tryAgain} TRYAGAIN answers`,
  );
  assert.ok(run.tryAgain > 0, "the scripts met the half-moved slot");
  assert.deepEqual(run.rejected.slice(0, 5), []);
  assert.deepEqual(run.failedAcks.slice(0, 5), []);
  assert.ok(run.during > 0, "publishes overlapped the migration");
  // The handled mark goes with each XACK: no event of an idempotent subscription runs twice.
  assert.equal(run.duplicates, 0);
});

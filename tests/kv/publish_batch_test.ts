/**
 * `publishBatch` on KV: a batch within KV's limits is one atomic commit
 * (with as many queue messages as its channels' subscriptions and chunks
 * need); a larger one goes in several commits, in order; a message no commit
 * holds with its subscriptions refuses the whole batch before any commit.
 * The commits are observed on a real database through a wrapper that counts
 * them.
 */

import assert from "node:assert/strict";
import { InvalidArgumentError, silentLogger } from "../../mod.ts";
import { KvBroker, type KvStore, type KvStoreAtomic } from "../../kv.ts";
import { Collector, withDeadline } from "../broker_contract.ts";

const DEADLINE = 20_000;
const wait = <T>(promise: Promise<T>, what: string): Promise<T> =>
  withDeadline(promise, DEADLINE, what);

/** A real database whose commits holding enqueues are counted (their enqueues each). */
function countingKv(kv: Deno.Kv): { store: KvStore; commits: number[] } {
  const commits: number[] = [];
  const store: KvStore = {
    atomic(): KvStoreAtomic {
      const atomic = kv.atomic();
      let enqueues = 0;
      const wrapped: KvStoreAtomic = {
        check: (...checks) => (atomic.check(...checks), wrapped),
        set: (key, value, options) => (atomic.set(key, value, options), wrapped),
        delete: (key) => (atomic.delete(key), wrapped),
        sum: (key, n) => (atomic.sum(key, n), wrapped),
        enqueue: (value, options) => (enqueues++, atomic.enqueue(value, options), wrapped),
        commit: async () => {
          const result = await atomic.commit();
          if (result.ok && enqueues > 0) commits.push(enqueues);
          return result;
        },
      };
      return wrapped;
    },
    get: (key) => kv.get(key),
    list: (selector, options) => kv.list(selector, options),
    delete: (key) => kv.delete(key),
    watch: (keys) => kv.watch(keys),
    listenQueue: (handler) => kv.listenQueue(handler),
    close: () => kv.close(),
  };
  return { store, commits };
}

/** A started broker on a counting in-memory database, `names` subscribed to "batch". */
async function withBroker(
  names: string[],
  body: (broker: KvBroker, got: Map<string, Collector<string>>, commits: number[]) => Promise<void>,
): Promise<void> {
  const kv = await Deno.openKv(":memory:");
  const { store, commits } = countingKv(kv);
  const broker = new KvBroker({ kv: store, logger: silentLogger });
  const got = new Map<string, Collector<string>>();
  for (const name of names) {
    const collector = new Collector<string>();
    got.set(name, collector);
    broker.subscribe("batch", (message: string) => collector.add(message), { name });
  }
  try {
    await broker.start();
    await body(broker, got, commits);
  } finally {
    await broker.stop({ timeout: 1_000 });
    kv.close();
  }
}

const entries = (messages: string[]) => messages.map((message) => ({ message, channel: "batch" }));

Deno.test("KvBroker batch: 600 messages to two subscriptions are one commit, delivered in order", async () => {
  await withBroker(["first", "second"], async (broker, got, commits) => {
    const messages = Array.from({ length: 600 }, (_, i) => `m${i}`);
    await broker.publishBatch(entries(messages));
    // 256 messages per queue message: 3 chunks for each of the 2 subscriptions.
    assert.deepEqual(commits, [6]);
    for (const collector of got.values()) {
      await wait(collector.reached(messages.length), "every message");
      assert.deepEqual(collector.items, messages);
    }
  });
});

Deno.test("KvBroker batch: one too large for a commit goes in several, in order", async () => {
  await withBroker(["reader"], async (broker, got, commits) => {
    // 20 x 50 KB: more than the 800 KiB of one commit.
    const messages = Array.from({ length: 20 }, (_, i) => `${i}:${"x".repeat(50_000)}`);
    await broker.publishBatch(entries(messages));
    assert.ok(commits.length >= 2, `committed in ${commits.length} commit(s)`);
    assert.equal(commits.reduce((a, b) => a + b, 0), messages.length);
    const reader = got.get("reader")!;
    await wait(reader.reached(messages.length), "every message");
    assert.deepEqual(reader.items.map((m) => m.slice(0, 3)), messages.map((m) => m.slice(0, 3)));
  });
});

Deno.test("KvBroker batch: a message no commit holds with its subscriptions refuses the batch", async () => {
  const names = Array.from({ length: 15 }, (_, i) => `sub${i}`);
  await withBroker(names, async (broker, got, commits) => {
    // 55 KB for each of 15 subscriptions: more than one commit holds.
    const batch = entries(["small", "y".repeat(55_000), "after"]);
    await assert.rejects(broker.publishBatch(batch), (error: unknown) => {
      assert.ok(error instanceof InvalidArgumentError, String(error));
      assert.equal(error.argument, "entries[1].message");
      assert.match(error.message, /exceeds what one KV commit holds/);
      return true;
    });
    assert.deepEqual(commits, []);
    await broker.publish("sentinel", "batch");
    for (const collector of got.values()) {
      await wait(collector.reached(1), "the sentinel");
      assert.deepEqual(collector.items, ["sentinel"]);
    }
  });
});

/**
 * Several KvBroker instances in one process, each on its own handle of one
 * database file, as the isolates of a deployment: they share a group's
 * work, and thousands of events reach every subscription exactly once
 * (no process dies here, so nothing is delivered twice).
 */

import assert from "node:assert/strict";
import { CloudEvent, type MessageContext, silentLogger } from "../../mod.ts";
import { KvBroker } from "../../kv.ts";
import { deferred, withDeadline } from "../broker_contract.ts";
import { tempKvPath } from "./_kv_temp.ts";

const DEADLINE = 60_000;

function instance(path: string): KvBroker {
  return new KvBroker({
    path,
    group: "workers",
    logger: silentLogger,
    retryBackoff: { initial: 5, max: 50 },
  });
}

Deno.test("KvBroker: instances on separate handles of one file share a group's work", async () => {
  const temp = await tempKvPath("share");
  const brokers = [instance(temp.path), instance(temp.path)];
  const received = [new Set<number>(), new Set<number>()];
  // Every call waits until both instances got work: one instance alone cannot take it all.
  const bothBusy = deferred();
  const total = 150;
  const done = deferred();
  let handled = 0;
  brokers.forEach((broker, i) => {
    broker.subscribe("jobs", async function worker(n: number) {
      received[i].add(n);
      if (received[0].size > 0 && received[1].size > 0) bothBusy.resolve();
      await bothBusy.promise;
      if (++handled === total) done.resolve();
    }, { concurrency: total });
  });
  try {
    await Promise.all(brokers.map((broker) => broker.start()));
    for (let n = 0; n < total; n++) await brokers[n % 2].publish(n, "jobs");
    await withDeadline(done.promise, DEADLINE, "all jobs handled");
    assert.ok(received[0].size > 0 && received[1].size > 0, "both instances worked");
    assert.equal(received[0].size + received[1].size, total, "each job went to one instance");
    const all = new Set([...received[0], ...received[1]]);
    assert.equal(all.size, total);
    console.log(`work shared: ${received[0].size} and ${received[1].size} of ${total} jobs`);
  } finally {
    bothBusy.resolve();
    await Promise.all(brokers.map((broker) => broker.stop()));
    await temp.remove();
  }
});

Deno.test("KvBroker: 2,500 events reach each subscription exactly once across three instances", async () => {
  const temp = await tempKvPath("many");
  const brokers = [instance(temp.path), instance(temp.path), instance(temp.path)];
  const total = 2_500;
  const handled = { billing: new Map<string, number>(), audit: new Map<string, number>() };
  const failedOnce = new Set<string>();
  const done = deferred();
  const check = () => {
    if (handled.billing.size === total && handled.audit.size === total) done.resolve();
  };
  for (const broker of brokers) {
    broker.subscribe("orders", function billing(e: CloudEvent<number>, ctx: MessageContext) {
      // Every tenth event fails on its first delivery and succeeds on the retry.
      if (e.data! % 10 === 0 && ctx.attempt === 1) {
        failedOnce.add(e.id);
        throw new Error("transient");
      }
      handled.billing.set(e.id, (handled.billing.get(e.id) ?? 0) + 1);
      check();
    }, { concurrency: 4 });
    broker.subscribe("orders", async function audit(e: CloudEvent<number>) {
      await Promise.resolve();
      handled.audit.set(e.id, (handled.audit.get(e.id) ?? 0) + 1);
      check();
    });
  }
  try {
    await Promise.all(brokers.map((broker) => broker.start()));
    const events = Array.from(
      { length: total },
      (_, n) => new CloudEvent({ type: "order.created", source: "/shop", data: n }),
    );
    // Two publishers, 100 publishes in flight each.
    const publishers = [brokers[0], brokers[1]];
    await Promise.all(publishers.map(async (publisher, p) => {
      const mine = events.filter((_, n) => n % 2 === p);
      for (let i = 0; i < mine.length; i += 100) {
        await Promise.all(mine.slice(i, i + 100).map((e) => publisher.publish(e, "orders")));
      }
    }));
    await withDeadline(done.promise, DEADLINE, "every event handled by both subscriptions");
    for (const [name, counts] of Object.entries(handled)) {
      assert.equal(counts.size, total, `${name} got every event`);
      const twice = [...counts.values()].filter((count) => count !== 1).length;
      assert.equal(twice, 0, `${name}: no event handled twice`);
    }
    assert.equal(failedOnce.size, total / 10);
    const stats = brokers.map((broker) => broker.stats());
    assert.equal(stats.reduce((sum, s) => sum + s.retried, 0), total / 10);
    assert.equal(stats.reduce((sum, s) => sum + s.deadLettered, 0), 0);
    console.log(
      `events handled per instance (billing + audit): ${stats.map((s) => s.consumed).join(", ")}`,
    );
  } finally {
    await Promise.all(brokers.map((broker) => broker.stop()));
    await temp.remove();
  }
});

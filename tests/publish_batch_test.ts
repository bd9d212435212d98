/**
 * `bus.publishBatch` end to end: each broker gets its part in one
 * `publishBatch` call, checked whole before anything is written; publish
 * middleware runs per event and a refusal by a hook publishes nothing; an
 * error names the event of the caller's batch; a broker without
 * `publishBatch` gets one publish at a time.
 */

import assert from "node:assert/strict";
import { z } from "zod";
import {
  type BatchEntry,
  type Broker,
  CloudEvent,
  defineEvent,
  EventBus,
  EventScope,
  InvalidArgumentError,
  MemoryBroker,
  type PublishOptions,
  silentLogger,
} from "../mod.ts";
import { KvBroker } from "../kv.ts";
import { Collector, withDeadline } from "./broker_contract.ts";

const DEADLINE = 20_000;
const wait = <T>(promise: Promise<T>, what: string): Promise<T> =>
  withDeadline(promise, DEADLINE, what);

/** A MemoryBroker that counts its `publishBatch` calls. */
class CountingBroker extends MemoryBroker {
  batches = 0;
  override publishBatch(entries: readonly BatchEntry[], options?: PublishOptions): Promise<void> {
    this.batches++;
    return super.publishBatch(entries, options);
  }
}

const event = (id: string, type = "t", data?: unknown) =>
  new CloudEvent({ id, type, source: "/batch", data });

Deno.test("bus.publishBatch: one broker call for the batch, delivered in order", async () => {
  const app = new CountingBroker({ logger: silentLogger });
  await using bus = new EventBus({ app, logger: silentLogger });
  const got = new Collector<string>();
  bus.subscribe("t", function record(e) {
    got.add(e.id);
  });
  await bus.start();
  const ids = Array.from({ length: 50 }, (_, i) => `e${i}`);
  await bus.publishBatch(ids.map((id) => event(id)));
  assert.equal(app.batches, 1);
  await wait(got.reached(ids.length), "the batch");
  assert.deepEqual(got.items, ids);
});

Deno.test("bus.publishBatch: a publish hook refusing one event publishes none", async () => {
  const app = new CountingBroker({ logger: silentLogger });
  await using bus = new EventBus({ app, logger: silentLogger });
  const got = new Collector<string>();
  bus.subscribe("t", function record(e) {
    got.add(e.id);
  });
  const refusal = new Error("event 2 is not allowed out");
  const seenByHooks: string[] = [];
  const nextFailures: unknown[] = [];
  bus.use({
    async publish(call, next) {
      seenByHooks.push(call.event.id);
      if (call.event.id === "2") throw refusal;
      try {
        await next();
      } catch (error) {
        nextFailures.push(error);
        throw error;
      }
    },
  });
  await bus.start();
  await assert.rejects(bus.publishBatch(["1", "2", "3"].map((id) => event(id))), refusal);
  assert.deepEqual(seenByHooks, ["1", "2", "3"]);
  assert.deepEqual(nextFailures, [refusal, refusal], "the other events' next() rejected too");
  assert.equal(app.batches, 0, "nothing reached the broker");
  await bus.publish(event("sentinel"));
  await wait(got.reached(1), "the sentinel");
  assert.deepEqual(got.items, ["sentinel"]);
});

Deno.test("bus.publishBatch: hooks' replacements are what the broker gets", async () => {
  const app = new CountingBroker({ logger: silentLogger });
  await using bus = new EventBus({ app, logger: silentLogger });
  const got = new Collector<CloudEvent>();
  bus.subscribe("t", function record(e) {
    got.add(e);
  });
  bus.use({
    publish: (call, next) =>
      next(new CloudEvent({ ...call.event.toJSON(), extensions: { stamped: "yes" } } as never)),
  });
  await bus.start();
  await bus.publishBatch([event("1"), event("2")]);
  assert.equal(app.batches, 1);
  await wait(got.reached(2), "both events");
  assert.deepEqual(got.items.map((e) => [e.id, e.extensions.stamped]), [["1", "yes"], [
    "2",
    "yes",
  ]]);
});

Deno.test("bus.publishBatch on KvBroker: an oversize event publishes nothing in either scope", async () => {
  const Local = defineEvent({
    type: "local.noted",
    scope: EventScope.PROCESS,
    source: "/batch",
    data: z.object({ n: z.number() }),
  });
  await using bus = new EventBus({
    app: new KvBroker({ path: ":memory:", logger: silentLogger }),
    logger: silentLogger,
  });
  const local = new Collector<string>();
  const remote = new Collector<string>();
  bus.subscribe(Local, function noteLocal(e) {
    local.add(e.id);
  });
  bus.subscribe("t", function noteRemote(e) {
    remote.add(e.id);
  });
  await bus.start();
  const batch = [
    new Local({ id: "l1", data: { n: 1 } }),
    event("r1"),
    event("big", "t", "x".repeat(70_000)),
    new Local({ id: "l2", data: { n: 2 } }),
  ];
  await assert.rejects(bus.publishBatch(batch), (error: unknown) => {
    assert.ok(error instanceof InvalidArgumentError, String(error));
    assert.equal(error.argument, "events[2].message");
    return true;
  });
  await bus.publishBatch([
    new Local({ id: "l3", data: { n: 3 } }),
    event("r2"),
    event("r3"),
    new Local({ id: "l4", data: { n: 4 } }),
  ]);
  await wait(Promise.all([local.reached(2), remote.reached(2)]), "the batch after");
  assert.deepEqual(local.items, ["l3", "l4"]);
  assert.deepEqual(remote.items, ["r2", "r3"]);
});

Deno.test("bus.publishBatch: a broker without publishBatch gets one publish at a time", async () => {
  const inner = new MemoryBroker({ logger: silentLogger });
  const published: unknown[] = [];
  // The Broker contract without the optional method.
  const plain = new Proxy(inner, {
    get(target, property) {
      if (property === "publishBatch") return undefined;
      if (property === "publish") {
        return (message: unknown, channel: string, options?: PublishOptions) => {
          published.push((message as CloudEvent).id);
          return target.publish(message, channel, options);
        };
      }
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  }) as Broker;
  await using bus = new EventBus({ app: plain, logger: silentLogger });
  await bus.start();
  await bus.publishBatch([event("1"), event("2"), event("3")]);
  assert.deepEqual(published, ["1", "2", "3"]);
});

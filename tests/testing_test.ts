import assert from "node:assert/strict";
import { z } from "zod";
import {
  type CloudEvent,
  defineEvent,
  EventBus,
  EventScope,
  InvalidArgumentError,
  type MemoryBroker,
  RejectMessage,
  silentLogger,
} from "../mod.ts";
import { RedisBroker } from "../redis.ts";
import {
  adminClient,
  deferred,
  deleteKeys,
  uniquePrefix,
  withDeadline,
} from "./redis/_fault_util.ts";
import {
  DroppedMessageError,
  recordPublished,
  testBus,
  waitFor,
  WaitTimeoutError,
} from "../testing.ts";

const OrderCreated = defineEvent({
  type: "test.order.created",
  source: "/orders",
  data: z.object({ orderId: z.string(), amount: z.number() }),
});
const OrderCharged = defineEvent({
  type: "test.order.charged",
  scope: EventScope.PROCESS,
  source: "/billing",
  data: z.object({ orderId: z.string() }),
});

/** The application's bus, wired to a Redis nobody runs: the tests must never need it. */
function applicationBus(): { bus: EventBus; redis: RedisBroker; charged: string[] } {
  const redis = new RedisBroker({ url: "redis://127.0.0.1:1", logger: silentLogger });
  const bus = new EventBus({ app: redis, logger: silentLogger });
  const charged: string[] = [];
  bus.subscribe(OrderCreated, async function charge(e) {
    if (e.data.amount <= 0) throw new RangeError(`nothing to charge for ${e.data.orderId}`);
    await bus.publish(new OrderCharged({ data: { orderId: e.data.orderId } }));
  });
  bus.subscribe(OrderCharged, function record(e) {
    charged.push(e.data.orderId);
  });
  return { bus, redis, charged };
}

Deno.test("testBus: a bus wired to Redis runs in memory; publish waits for the whole chain", async () => {
  const { bus, redis, charged } = applicationBus();
  {
    await using harness = await testBus(bus);
    assert.notEqual(bus.appBroker, redis);
    await harness.publish(new OrderCreated({ data: { orderId: "A1", amount: 5 } }));
    assert.deepEqual(charged, ["A1"], "the handler chain finished before publish resolved");
    assert.equal(redis.state, "stopped", "Redis was never touched");
  }
  assert.equal(bus.state, "stopped");
  assert.equal(bus.appBroker, redis, "disposing gives the bus its own brokers back");
});

Deno.test("testBus: a handler's failure rejects the publish with the handler's error", async () => {
  const { bus } = applicationBus();
  await using harness = await testBus(bus);
  await assert.rejects(
    harness.publish(new OrderCreated({ data: { orderId: "Z", amount: 0 } })),
    (error: unknown) =>
      error instanceof RangeError && /nothing to charge for Z/.test(error.message),
  );
  // Reported once: the next publish is clean.
  await harness.publish(new OrderCreated({ data: { orderId: "B", amount: 1 } }));
});

Deno.test("testBus: a message that never reached its handler surfaces as DroppedMessageError", async () => {
  const bus = new EventBus({ logger: silentLogger });
  bus.subscribe(OrderCreated, function refuse() {
    throw new RejectMessage("orders are closed");
  });
  await using harness = await testBus(bus);
  await assert.rejects(
    harness.publish(new OrderCreated({ data: { orderId: "C", amount: 1 } })),
    (error: unknown) =>
      error instanceof DroppedMessageError && error.subscription === "refuse" &&
      /orders are closed/.test(error.message),
  );
});

Deno.test("testBus: requests get the reply; a bus runs under one harness at a time", async () => {
  const bus = new EventBus({ logger: silentLogger });
  bus.subscribe(OrderCreated, function quote(e) {
    return e.data.amount * 2;
  });
  await using harness = await testBus(bus);
  assert.equal(await harness.request(new OrderCreated({ data: { orderId: "Q", amount: 4 } })), 8);
  await assert.rejects(
    testBus(bus),
    (error: unknown) =>
      error instanceof InvalidArgumentError && /already runs under testBus/.test(error.message),
  );
});

Deno.test("waitFor: the first matching event, typed; published or handled", async () => {
  const { bus } = applicationBus();
  await using harness = await testBus(bus);
  const charged = waitFor(bus, OrderCharged, { where: (e) => e.data.orderId === "W2" });
  const anyCreated = waitFor(bus, "test.order.created");
  await harness.publish(new OrderCreated({ data: { orderId: "W1", amount: 1 } }));
  await harness.publish(new OrderCreated({ data: { orderId: "W2", amount: 1 } }));
  const event = await charged;
  assert.ok(event instanceof OrderCharged);
  assert.equal(event.data.orderId, "W2");
  assert.equal(((await anyCreated) as CloudEvent).type, "test.order.created");
});

Deno.test("waitFor: rejects with WaitTimeoutError, and on a bad target at once", async () => {
  await using bus = new EventBus({ logger: silentLogger });
  await bus.start();
  await assert.rejects(
    waitFor(bus, OrderCharged, { timeout: 10 }),
    (error: unknown) =>
      error instanceof WaitTimeoutError && error.type === "test.order.charged" &&
      error.timeout === 10,
  );
  await assert.rejects(waitFor(bus, 42 as unknown as string), /definition.*or an event type/);
  // The timed-out wait removed its middleware: a later publish is not slowed or seen by it.
  const seen = waitFor(bus, OrderCharged, { timeout: 1_000 });
  await bus.publish(new OrderCharged({ data: { orderId: "late" } }));
  assert.equal((await seen).data.orderId, "late");
});

Deno.test("recordPublished: every accepted publish, typed per definition, until disposed", async () => {
  const { bus } = applicationBus();
  await using harness = await testBus(bus);
  const recorder = recordPublished(bus);
  await harness.publish(new OrderCreated({ data: { orderId: "R1", amount: 3 } }));
  assert.deepEqual(recorder.events.map((e) => e.type), [
    "test.order.created",
    "test.order.charged",
  ]);
  assert.deepEqual(recorder.of(OrderCharged).map((e) => e.data.orderId), ["R1"]);
  recorder[Symbol.dispose]();
  await harness.publish(new OrderCreated({ data: { orderId: "R2", amount: 3 } }));
  assert.equal(recorder.events.length, 2, "nothing recorded after dispose");
});

Deno.test("testBus: taking over a bus again and again forwards each broker's events once", async () => {
  const bus = new EventBus({ logger: silentLogger });
  bus.subscribe(OrderCharged, function fail() {
    throw new Error("ledger closed");
  });
  for (let run = 0; run < 3; run++) {
    const harness = await testBus(bus);
    await harness.stop();
  }
  let errors = 0;
  const firstError = new Promise<void>((resolve) =>
    bus.addEventListener("error", () => {
      errors++;
      resolve();
    })
  );
  await bus.start();
  try {
    await bus.publish(new OrderCharged({ data: { orderId: "E1" } }));
    await firstError;
    // The broker dispatches to all its listeners at once: every copy has run by now.
    assert.equal(errors, 1, "one failed handler call, one error event on the bus");
  } finally {
    await bus.stop();
  }
});

Deno.test("testBus: a started bus is stopped for the test and started again on its own brokers", async () => {
  const bus = new EventBus({ logger: silentLogger });
  const charged: string[] = [];
  bus.subscribe(OrderCharged, function record(e) {
    charged.push(e.data.orderId);
  });
  await bus.start();
  const own = { process: bus.processBroker, app: bus.appBroker };
  try {
    {
      await using harness = await testBus(bus);
      assert.notEqual(bus.processBroker, own.process);
      assert.equal(own.process.state, "stopped", "the bus's own broker consumes nothing meanwhile");
      assert.equal(own.app.state, "stopped");
      await harness.publish(new OrderCharged({ data: { orderId: "T1" } }));
      assert.deepEqual(charged, ["T1"]);
    }
    assert.equal(bus.state, "started", "started again, as the application left it");
    assert.equal(bus.processBroker, own.process);
    assert.equal(bus.appBroker, own.app);
    await bus.publish(new OrderCharged({ data: { orderId: "T2" } }));
    await (own.process as MemoryBroker).idle();
    assert.deepEqual(charged, ["T1", "T2"], "the handler is back on the bus's own broker");
  } finally {
    await bus.stop();
  }
});

Deno.test("testBus: a started bus on Redis leaves Redis alone during the test and catches up after", async () => {
  const keyPrefix = uniquePrefix("testbus");
  const admin = await adminClient();
  const redis = new RedisBroker({ keyPrefix, group: "billing", logger: silentLogger });
  // Another instance of the application, publishing while the test runs.
  const other = new RedisBroker({ keyPrefix, group: "other", logger: silentLogger });
  const bus = new EventBus({ app: redis, logger: silentLogger });
  const seen: string[] = [];
  let later = deferred<void>();
  bus.subscribe(OrderCreated, function charge(e) {
    seen.push(e.data.orderId);
    if (e.data.orderId === "from-redis") later.resolve();
  });
  try {
    await bus.start();
    await other.start();
    await bus.publish(new OrderCreated({ data: { orderId: "from-redis", amount: 1 } }));
    await withDeadline(later.promise, 10_000, "the event through Redis before the test");
    later = deferred<void>();

    const harness = await testBus(bus);
    assert.equal(redis.state, "stopped", "Redis consumption stopped for the test");
    await harness.publish(new OrderCreated({ data: { orderId: "in-memory", amount: 1 } }));
    await other.publish(
      new OrderCreated({ data: { orderId: "from-redis", amount: 2 } }),
      bus.channelFor(OrderCreated.type),
    );
    assert.deepEqual(seen, ["from-redis", "in-memory"], "the Redis event waits for the bus");
    await harness.stop();

    assert.equal(bus.state, "started");
    assert.equal(bus.appBroker, redis);
    await withDeadline(later.promise, 10_000, "the event sent to Redis during the test");
    assert.deepEqual(seen, ["from-redis", "in-memory", "from-redis"]);
  } finally {
    await Promise.allSettled([bus.stop(), other.stop()]);
    await deleteKeys(admin, keyPrefix);
    admin.disconnect();
  }
});

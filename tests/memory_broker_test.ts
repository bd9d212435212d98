import assert from "node:assert/strict";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import {
  AsyncQueueBroker,
  BrokerError,
  CloudEvent,
  type DropEvent,
  type HandlerFailure,
  InvalidArgumentError,
  MemoryBroker,
  type MessageContext,
  NoSubscribersError,
  NotStartedError,
  QueueFullError,
  RequestTimeoutError,
  silentLogger,
} from "../mod.ts";
import { brokerContractSuite, Collector, deferred, withDeadline } from "./broker_contract.ts";
import { recordingLogger } from "./_logger.ts";

brokerContractSuite({
  name: "MemoryBroker",
  features: {
    retries: true,
    deadLetters: false,
    redeliversUnacknowledged: false,
    inProcess: true,
    idempotent: true,
    persistent: false,
    sharedConsumers: false,
  },
  create: (options) => new MemoryBroker(options),
});

const DEADLINE = 20_000;
const wait = <T>(promise: Promise<T>, what: string): Promise<T> =>
  withDeadline(promise, DEADLINE, what);

/**
 * A full garbage collection, so heap figures show live objects only. The
 * flag set at run time exposes `gc` to contexts created afterwards.
 */
function collectGarbage(): void {
  setFlagsFromString("--expose-gc");
  (runInNewContext("gc") as () => void)();
}

/** Lets every pending microtask and timer callback of this turn run. */
function nextMacrotask(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** A subscription whose handler blocks on a gate; `started` resolves per call. */
function gatedHandler(): {
  handler: (n: number, ctx: MessageContext) => Promise<void>;
  firstStarted: Promise<void>;
  release: () => void;
  done: Collector<number>;
} {
  const gate = deferred();
  const started = deferred();
  const done = new Collector<number>();
  return {
    handler: async (n: number) => {
      started.resolve();
      await gate.promise;
      done.add(n);
    },
    firstStarted: started.promise,
    release: () => gate.resolve(),
    done,
  };
}

Deno.test("MemoryBroker: publish waits for room when a queue is full (backpressure)", async () => {
  const broker = new MemoryBroker({ logger: silentLogger, maxQueueSize: 2 });
  const gated = gatedHandler();
  broker.subscribe("bp", gated.handler, { name: "gated" });
  await broker.start();
  try {
    await broker.publish(1, "bp");
    await wait(gated.firstStarted, "first call started");
    await broker.publish(2, "bp");
    await broker.publish(3, "bp"); // the queue is now full
    let accepted = false;
    const fourth = broker.publish(4, "bp").then(() => (accepted = true));
    await nextMacrotask();
    assert.equal(accepted, false, "publish resolved although the queue was full");
    const stats = broker.stats();
    assert.equal(stats.queued, 2);
    assert.equal(stats.waiting, 1);
    assert.deepEqual(stats.subscriptions.map((s) => [s.name, s.queued, s.waiting, s.running]), [
      ["gated", 2, 1, 1],
    ]);
    gated.release();
    await wait(fourth, "the waiting publish was accepted");
    await wait(gated.done.reached(4), "all handled");
    assert.deepEqual(gated.done.items, [1, 2, 3, 4]);
    assert.equal(broker.stats().dropped, 0);
  } finally {
    gated.release();
    await broker.stop();
  }
});

Deno.test("MemoryBroker: overflow reject throws QueueFullError and delivers to nobody", async () => {
  const broker = new MemoryBroker({ logger: silentLogger, maxQueueSize: 1, overflow: "reject" });
  const gated = gatedHandler();
  const other = new Collector<number>();
  broker.subscribe("full", gated.handler, { name: "gated" });
  broker.subscribe("full", (n: number) => other.add(n), { name: "roomy" });
  await broker.start();
  try {
    await broker.publish(1, "full");
    await wait(gated.firstStarted, "first call started");
    await broker.publish(2, "full");
    await assert.rejects(broker.publish(3, "full"), (error: unknown) => {
      assert.ok(error instanceof QueueFullError);
      assert.equal(error.channel, "full");
      assert.equal(error.subscription, "gated");
      return true;
    });
    assert.equal(broker.stats().published, 2);
    gated.release();
    await wait(gated.done.reached(2), "queued messages handled");
    await wait(other.reached(2), "the other subscriber got both");
    assert.deepEqual(other.items, [1, 2], "the rejected message reached a subscriber");
  } finally {
    gated.release();
    await broker.stop();
  }
});

Deno.test("MemoryBroker: under overflow reject a batch needs room for all of it, or none is queued", async () => {
  const broker = new MemoryBroker({ logger: silentLogger, maxQueueSize: 3, overflow: "reject" });
  const gated = gatedHandler();
  const other = new Collector<number>();
  broker.subscribe("batch", gated.handler, { name: "gated" });
  broker.subscribe("side", (n: number) => other.add(n), { name: "side" });
  await broker.start();
  try {
    await broker.publish(1, "batch");
    await wait(gated.firstStarted, "first call started");
    await broker.publish(2, "batch"); // the gated queue holds 1 of 3
    // Three more for "gated" exceed its room by one: no queue gets anything.
    const entries = [3, 4, 5].flatMap((n) => [
      { message: n, channel: "batch" },
      { message: n, channel: "side" },
    ]);
    await assert.rejects(broker.publishBatch(entries), (error: unknown) => {
      assert.ok(error instanceof QueueFullError, String(error));
      assert.equal(error.subscription, "gated");
      return true;
    });
    assert.equal(broker.stats().published, 2);
    assert.equal(broker.stats().queued, 1);
    await broker.publishBatch(entries.slice(0, 4)); // two more fit
    gated.release();
    await wait(gated.done.reached(4), "the batch that fit");
    await wait(other.reached(2), "the side channel's part");
    assert.deepEqual(gated.done.items, [1, 2, 3, 4]);
    assert.deepEqual(other.items, [3, 4]);
  } finally {
    gated.release();
    await broker.stop();
  }
});

Deno.test("MemoryBroker: a batch waiting for room is accepted whole, in order", async () => {
  const broker = new MemoryBroker({ logger: silentLogger, maxQueueSize: 2 });
  const gated = gatedHandler();
  broker.subscribe("wait", gated.handler, { name: "gated" });
  await broker.start();
  try {
    await broker.publish(1, "wait");
    await wait(gated.firstStarted, "first call started");
    let accepted = false;
    const batch = broker.publishBatch([2, 3, 4, 5].map((n) => ({ message: n, channel: "wait" })))
      .then(() => (accepted = true));
    await nextMacrotask();
    assert.equal(accepted, false, "the batch resolved although the queue was full");
    assert.deepEqual([broker.stats().queued, broker.stats().waiting], [2, 2]);
    const sixth = broker.publish(6, "wait"); // behind the batch, never before it
    gated.release();
    await wait(Promise.all([batch, sixth]), "the batch and the publish after it were accepted");
    await wait(gated.done.reached(6), "all handled");
    assert.deepEqual(gated.done.items, [1, 2, 3, 4, 5, 6]);
  } finally {
    gated.release();
    await broker.stop();
  }
});

Deno.test("MemoryBroker: graceful stop drains queued messages too", async () => {
  const broker = new MemoryBroker({ logger: silentLogger });
  const gated = gatedHandler();
  broker.subscribe("drain", gated.handler, { name: "gated" });
  await broker.start();
  for (let i = 1; i <= 3; i++) await broker.publish(i, "drain");
  await wait(gated.firstStarted, "first call started");
  const stopping = broker.stop({ timeout: DEADLINE });
  await assert.rejects(broker.publish(4, "drain"), NotStartedError);
  gated.release();
  await wait(stopping, "stop");
  assert.deepEqual(gated.done.items, [1, 2, 3]);
  const stats = broker.stats();
  assert.equal(stats.dropped, 0);
  assert.equal(stats.consumed, 3);
  assert.equal(stats.queued, 0);
});

Deno.test("MemoryBroker: stop timeout aborts the signal, counts and logs drops", async () => {
  const logger = recordingLogger();
  const broker = new MemoryBroker({ logger });
  const drops: DropEvent[] = [];
  broker.addEventListener("drop", (event) => drops.push(event as DropEvent));
  const signals: AbortSignal[] = [];
  const started = deferred();
  const handled = new Collector<number>();
  broker.subscribe("stuck", (n: number, ctx: MessageContext) => {
    signals.push(ctx.signal);
    if (n === 99) return handled.add(n);
    started.resolve();
    // Ends only when the stop gives up and aborts.
    return new Promise<void>((_, reject) => {
      ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason), { once: true });
    });
  }, { name: "stuck" });
  await broker.start();
  for (let i = 1; i <= 3; i++) await broker.publish(i, "stuck");
  await wait(started.promise, "the stuck call started");
  await wait(broker.stop({ timeout: 20 }), "stop");
  assert.equal(signals[0].aborted, true);
  const stats = broker.stats();
  assert.equal(stats.dropped, 3, "1 running + 2 queued");
  // Every drop counted is a drop event too, with the same count.
  assert.deepEqual(
    drops.map((drop) => [drop.channel, drop.subscription, drop.count]).sort(),
    [["stuck", "stuck", 1], ["stuck", "stuck", 2]],
  );
  assert.equal(drops.reduce((sum, drop) => sum + drop.count, 0), stats.dropped);
  assert.match(drops.find((drop) => drop.count === 1)!.reason, /abandoned: the stop timed out/);
  assert.equal(stats.queued, 0);
  assert.equal(stats.running, 0);
  assert.equal(stats.errors, 0, "the abandoned call's rejection is not a handler error");
  assert.ok(logger.lines.some((line) => line.startsWith("warn") && line.includes("dropped 2")));
  // A restart consumes again, with a fresh signal.
  await broker.start();
  await broker.publish(99, "stuck");
  await wait(handled.reached(1), "the message after restart");
  assert.equal(signals.at(-1)!.aborted, false);
  await broker.stop();
});

Deno.test("MemoryBroker: 100,000 requests leave nothing behind", async () => {
  const broker = new MemoryBroker({ logger: silentLogger });
  broker.subscribe("inc", (n: number) => n + 1, { name: "inc" });
  await broker.start();
  const run = async (total: number) => {
    const batch = 1_000;
    for (let i = 0; i < total; i += batch) {
      const replies = await Promise.all(
        Array.from({ length: batch }, (_, j) => broker.request<number>(i + j, "inc")),
      );
      assert.equal(replies[batch - 1], i + batch);
    }
  };
  try {
    await run(10_000); // warm up
    collectGarbage();
    const before = Deno.memoryUsage().heapUsed;
    await run(100_000);
    collectGarbage();
    const growth = Deno.memoryUsage().heapUsed - before;
    const stats = broker.stats();
    assert.equal(stats.pendingRequests, 0);
    assert.equal(stats.channels, 1);
    assert.equal(stats.subscribers, 1);
    assert.equal(stats.queued, 0);
    assert.equal(stats.waiting, 0);
    assert.equal(stats.consumed, 110_000);
    // A leak of even 50 bytes a request would exceed this bound.
    assert.ok(growth < 5_000_000, `heap grew by ${growth} bytes over 100,000 requests`);
  } finally {
    await broker.stop();
  }
});

Deno.test("MemoryBroker: timed-out and aborted requests clean up", async () => {
  const broker = new MemoryBroker({ logger: silentLogger });
  const release = deferred();
  broker.subscribe("never", async () => {
    await release.promise;
  }, { name: "never" });
  await broker.start();
  try {
    const results = await Promise.allSettled(
      Array.from({ length: 500 }, () => broker.request("x", "never", { timeout: 5 })),
    );
    assert.ok(
      results.every((r) => r.status === "rejected" && r.reason instanceof RequestTimeoutError),
    );
    const controller = new AbortController();
    const aborted = broker.request("x", "never", { signal: controller.signal, timeout: DEADLINE });
    controller.abort(new Error("caller gave up"));
    await assert.rejects(aborted, /caller gave up/);
    assert.equal(broker.stats().pendingRequests, 0);
  } finally {
    release.resolve();
    await broker.stop();
  }
});

Deno.test("MemoryBroker: request without subscribers fails at once", async () => {
  await using broker = new MemoryBroker({ logger: silentLogger });
  await broker.start();
  await assert.rejects(broker.request("x", "nobody", { timeout: DEADLINE }), (error: unknown) => {
    assert.ok(error instanceof NoSubscribersError);
    assert.equal(error.channel, "nobody");
    return true;
  });
  assert.equal(broker.stats().pendingRequests, 0);
});

Deno.test("MemoryBroker: request takes the first reply; fails when every handler fails", async () => {
  await using broker = new MemoryBroker({ logger: silentLogger });
  const slow = deferred();
  broker.subscribe("race", async () => {
    await slow.promise;
    return "slow";
  }, { name: "slow" });
  broker.subscribe("race", () => "fast", { name: "fast" });
  broker.subscribe("broken", () => {
    throw new Error("no answer");
  }, { name: "broken" });
  await broker.start();
  assert.equal(await wait(broker.request("q", "race"), "reply"), "fast");
  slow.resolve();
  await assert.rejects(wait(broker.request("q", "broken"), "failure"), /no answer/);
  assert.equal(broker.stats().pendingRequests, 0);
});

Deno.test("MemoryBroker: replies reach the request's replyTo, and publish replyTo gets the result", async () => {
  await using broker = new MemoryBroker({ logger: silentLogger });
  broker.subscribe("manual", (n: number, ctx: MessageContext) => {
    // A handler may answer by hand, like on a networked broker.
    void broker.publish(n * 10, ctx.replyTo!, { correlationId: ctx.correlationId });
  }, { name: "manual" });
  const answers = new Collector<number>();
  broker.subscribe("answers", (n: number, ctx: MessageContext) => answers.add(n, ctx), {
    name: "answers",
  });
  broker.subscribe("square", (n: number) => n * n, { name: "square" });
  await broker.start();
  assert.equal(await wait(broker.request(4, "manual"), "manual"), 40);
  await broker.publish(7, "square", { replyTo: "answers", correlationId: "c-7" });
  await wait(answers.reached(1), "the reply");
  assert.deepEqual(answers.items, [49]);
  assert.equal(answers.contexts[0].correlationId, "c-7");
});

Deno.test("MemoryBroker: options and arguments are validated", async () => {
  for (
    const bad of [
      { maxQueueSize: 0 },
      { maxQueueSize: 1.5 },
      { maxQueueSize: "10" },
      { overflow: "drop" },
      { onError: "no" },
      { logger: { info() {} } },
    ]
  ) {
    assert.throws(
      () => new MemoryBroker(bad as never),
      InvalidArgumentError,
      JSON.stringify(bad),
    );
  }
  assert.throws(() => new MemoryBroker(42 as never), InvalidArgumentError);
  await using broker = new MemoryBroker({ logger: silentLogger });
  assert.throws(() => broker.subscribe("", () => {}), InvalidArgumentError);
  assert.throws(() => broker.subscribe("a b", () => {}), InvalidArgumentError);
  assert.throws(() => broker.subscribe("ok", "nope" as never), InvalidArgumentError);
  assert.throws(() => broker.subscribe("ok", () => {}, { concurrency: 0 }), InvalidArgumentError);
  assert.throws(() => broker.subscribe("ok", () => {}, { name: " " }), InvalidArgumentError);
  assert.equal(broker.stats().subscribers, 0);
  await broker.start();
  await assert.rejects(broker.publish("x", ""), InvalidArgumentError);
  await assert.rejects(
    broker.publish("x", "ok", { headers: { n: 1 as never } }),
    InvalidArgumentError,
  );
  await assert.rejects(broker.request("x", "ok", { timeout: -1 }), InvalidArgumentError);
  await assert.rejects(broker.stop({ timeout: Number.NaN }), InvalidArgumentError);
  assert.equal(broker.stats().published, 0);
});

Deno.test("MemoryBroker: anonymous handlers get generated names", () => {
  const broker = new MemoryBroker();
  const first = broker.subscribe("a", (() => () => {})());
  const second = broker.subscribe("a", (() => () => {})());
  assert.equal(first.name, "anonymous#1");
  assert.equal(second.name, "anonymous#2");
});

Deno.test("MemoryBroker: unsubscribe drops and counts queued messages, then aborts the signal", async () => {
  const logger = recordingLogger();
  const broker = new MemoryBroker({ logger });
  const gated = gatedHandler();
  let signal: AbortSignal | undefined;
  const sub = broker.subscribe("u", (n: number, ctx: MessageContext) => {
    signal = ctx.signal;
    return gated.handler(n, ctx);
  }, { name: "gated" });
  await broker.start();
  for (let i = 1; i <= 3; i++) await broker.publish(i, "u");
  await wait(gated.firstStarted, "first call started");
  await wait(sub.unsubscribe(), "unsubscribe");
  assert.equal(broker.stats().subscribers, 0);
  assert.equal(broker.stats().channels, 0);
  assert.equal(broker.stats().dropped, 2);
  assert.equal(signal!.aborted, false, "aborted before the call in flight finished");
  assert.ok(logger.lines.some((line) => line.startsWith("warn") && line.includes("2 message(s)")));
  // stop() waits for the call still in flight of the closed subscription.
  const stopping = broker.stop();
  gated.release();
  await wait(stopping, "stop");
  assert.equal(signal!.aborted, true);
  assert.deepEqual(gated.done.items, [1]);
  assert.equal(broker.stats().dropped, 2);
});

Deno.test("MemoryBroker: a handler can unsubscribe itself and await it", async () => {
  await using broker = new MemoryBroker({ logger: silentLogger });
  let calls = 0;
  const finished = Promise.withResolvers<void>();
  const sub = broker.subscribe("once", async function once() {
    calls++;
    await sub.unsubscribe();
    finished.resolve();
  });
  await broker.start();
  await broker.publish(1, "once");
  await broker.publish(2, "once");
  await wait(finished.promise, "self-unsubscribe");
  assert.equal(calls, 1);
  assert.equal(broker.stats().subscribers, 0);
});

Deno.test("MemoryBroker: concurrency is reached even when publishes wait for room", async () => {
  await using broker = new MemoryBroker({ logger: silentLogger, maxQueueSize: 1 });
  let running = 0;
  let peak = 0;
  const gate = Promise.withResolvers<void>();
  const allStarted = Promise.withResolvers<void>();
  broker.subscribe("busy", async function busy() {
    running++;
    peak = Math.max(peak, running);
    if (running === 4) allStarted.resolve();
    await gate.promise;
    running--;
  }, { concurrency: 4 });
  await broker.start();
  const publishes = Array.from({ length: 8 }, (_, i) => broker.publish(i, "busy"));
  await wait(allStarted.promise, "four handler calls at once");
  gate.resolve();
  await wait(Promise.all(publishes), "publishes");
  assert.equal(peak, 4);
});

Deno.test("MemoryBroker: the last of start/stop decides the final state", async () => {
  const broker = new MemoryBroker({ logger: silentLogger });
  await broker.start();
  const stopping = broker.stop();
  const starting = broker.start();
  await stopping;
  await starting;
  assert.equal(broker.state, "started");
  const s1 = broker.stop();
  const s2 = broker.start();
  const s3 = broker.stop();
  await Promise.all([s1, s2, s3]);
  assert.equal(broker.state, "stopped");
});

Deno.test("MemoryBroker: an onError hook that throws does not stop consumption", async () => {
  const failures: HandlerFailure[] = [];
  await using broker = new MemoryBroker({
    logger: silentLogger,
    onError: (failure) => {
      failures.push(failure);
      throw new Error("hook broken");
    },
  });
  const got = new Collector<number>();
  broker.subscribe("h", (n: number) => {
    if (n === 1) return Promise.reject(new Error("rejected"));
    got.add(n);
  }, { name: "h" });
  await broker.start();
  await broker.publish(1, "h");
  await broker.publish(2, "h");
  await wait(got.reached(1), "the next message");
  assert.equal(failures.length, 1);
  assert.equal(failures[0].subscription, "h");
  assert.equal(failures[0].attempt, 1);
  assert.match(failures[0].messageId, /^mem-/);
  assert.equal(broker.stats().errors, 1);
});

Deno.test("MemoryBroker: a stop rejects requests still waiting", async () => {
  const broker = new MemoryBroker({ logger: silentLogger });
  broker.subscribe(
    "hang",
    (_: unknown, ctx: MessageContext) =>
      new Promise((resolve) => ctx.signal.addEventListener("abort", resolve, { once: true })),
    {
      name: "hang",
    },
  );
  await broker.start();
  const pending = broker.request("x", "hang", { timeout: DEADLINE });
  await broker.stop({ timeout: 10 });
  await assert.rejects(pending, BrokerError);
  assert.equal(broker.stats().pendingRequests, 0);
});

Deno.test("MemoryBroker: AsyncQueueBroker is the same class, and await using stops it", async () => {
  let broker: MemoryBroker;
  {
    await using scoped = new AsyncQueueBroker({ logger: silentLogger });
    broker = scoped;
    await scoped.start();
    assert.equal(scoped.state, "started");
  }
  assert.ok(broker instanceof MemoryBroker);
  assert.equal(broker.state, "stopped");
  await assert.rejects(broker.publish("x", "y"), NotStartedError);
});

Deno.test("MemoryBroker: a message without subscribers is accepted and reaches nobody", async () => {
  await using broker = new MemoryBroker({ logger: silentLogger });
  await broker.start();
  await broker.publish(new CloudEvent({ type: "t", source: "/s" }), "empty");
  const stats = broker.stats();
  assert.equal(stats.published, 1);
  assert.equal(stats.dropped, 0);
  assert.equal(stats.channels, 0);
});

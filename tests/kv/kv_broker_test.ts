/**
 * KvBroker beyond the shared contract: options, keys under the prefix,
 * retries, dead letters and replay, bad input on the queue, parking of
 * durable subscriptions, stop timeouts and request/reply details. Each test
 * works on a fresh database file, removed afterwards.
 */

import assert from "node:assert/strict";
import {
  BrokerError,
  CloudEvent,
  InvalidArgumentError,
  type MessageContext,
  NoSubscribersError,
  NotStartedError,
  RejectMessage,
  RequestFailedError,
  silentLogger,
} from "../../mod.ts";
import { FOREIGN_CHANNEL, KvBroker, type KvBrokerOptions, type KvStore } from "../../kv.ts";
import { Collector, deferred, waitForAsync, withDeadline } from "../broker_contract.ts";
import { tempKvPath } from "./_kv_temp.ts";

const DEADLINE = 20_000;
const wait = <T>(promise: Promise<T>, what: string): Promise<T> =>
  withDeadline(promise, DEADLINE, what);

/** Runs `body` with an opened database on a temporary file; closes and removes it after. */
async function withKv(body: (kv: Deno.Kv, path: string) => Promise<void>): Promise<void> {
  const temp = await tempKvPath("broker");
  const kv = await Deno.openKv(temp.path);
  try {
    await body(kv, temp.path);
  } finally {
    kv.close();
    await temp.remove();
  }
}

function broker(kv: KvStore, options: KvBrokerOptions = {}): KvBroker {
  return new KvBroker({
    kv,
    logger: silentLogger,
    retryBackoff: { initial: 5, max: 20 },
    ...options,
  });
}

Deno.test("KvBroker: options are validated with InvalidArgumentError naming the option", async () => {
  const bad: [unknown, string][] = [
    [42, "options"],
    [{ kv: {} }, "kv"],
    [{ kv: { atomic() {} } }, "kv"],
    [{ path: "" }, "path"],
    [{ keyPrefix: [] }, "keyPrefix"],
    [{ keyPrefix: [{}] }, "keyPrefix"],
    [{ keyPrefix: [Number.NaN] }, "keyPrefix"],
    [{ group: "" }, "group"],
    [{ group: "g".repeat(300) }, "group"],
    [{ maxDeliveries: 0 }, "maxDeliveries"],
    [{ retryBackoff: { initial: -1 } }, "retryBackoff.initial"],
    [{ logger: { info() {} } }, "logger"],
    [{ onError: "no" }, "onError"],
  ];
  for (const [options, argument] of bad) {
    assert.throws(
      () => new KvBroker(options as KvBrokerOptions),
      (error: unknown) => error instanceof InvalidArgumentError && error.argument === argument,
      JSON.stringify(options),
    );
  }
  await withKv(async (kv) => {
    assert.throws(
      () => new KvBroker({ kv, path: "x" }),
      (e: unknown) => e instanceof InvalidArgumentError && e.argument === "path",
    );
    await using b = broker(kv);
    assert.throws(() => b.subscribe("jobs", (() => () => {})()), InvalidArgumentError);
    assert.throws(() => b.subscribe("c".repeat(300), function long() {}), InvalidArgumentError);
    assert.throws(() => b.subscribe("a b", function spaced() {}), InvalidArgumentError);
    assert.throws(
      () => b.subscribe("ok", function c() {}, { concurrency: 0 }),
      InvalidArgumentError,
    );
    await assert.rejects(b.publish("x", "jobs"), NotStartedError);
    await assert.rejects(b.deadLetters("jobs"), NotStartedError);
    await b.start();
    await assert.rejects(b.publish(() => 1, "jobs"), InvalidArgumentError);
    await assert.rejects(b.publish(10n, "jobs"), InvalidArgumentError);
    await assert.rejects(b.publish("x".repeat(70_000), "jobs"), InvalidArgumentError);
    await assert.rejects(b.publish("x", ""), InvalidArgumentError);
    await assert.rejects(
      b.publish("x", "jobs", { headers: { n: 1 as never } }),
      InvalidArgumentError,
    );
    await assert.rejects(b.deadLetters("jobs", { count: 0 }), InvalidArgumentError);
    await assert.rejects(b.replayDeadLetters("jobs", { ids: [1 as never] }), InvalidArgumentError);
    await assert.rejects(b.replayDeadLetters(FOREIGN_CHANNEL), InvalidArgumentError);
    await assert.rejects(b.stop({ timeout: -1 }), InvalidArgumentError);
    assert.equal(b.stats().published, 0);
  });
});

Deno.test("KvBroker: a database that cannot be opened rejects start with BrokerError", async () => {
  const temp = await tempKvPath("unopenable");
  try {
    // A folder where the database file should be.
    await Deno.mkdir(temp.path);
    const b = new KvBroker({ path: temp.path, logger: silentLogger });
    await assert.rejects(b.start(), BrokerError);
    assert.equal(b.state, "stopped");
  } finally {
    await temp.remove();
  }
});

Deno.test("KvBroker: every key it writes starts with keyPrefix", async () => {
  await withKv(async (kv) => {
    await kv.set(["outside"], 1);
    const b = broker(kv, { keyPrefix: ["tenant", 7], maxDeliveries: 1 });
    const done = new Collector<string>();
    b.subscribe("jobs", function failing(m: string) {
      done.add(m);
      if (m === "bad") throw new Error("no");
    });
    const parkedSub = b.subscribe("jobs", function leaving() {});
    await b.start();
    await parkedSub.unsubscribe();
    // The unsubscribed subscription never answers: the request times out.
    assert.equal(await b.request("bad", "jobs", { timeout: 300 }).catch(() => "failed"), "failed");
    await b.publish("bad", "jobs");
    await wait(done.reached(2), "both handled");
    await waitForAsync(async () => (await b.deadLetters("jobs")).length === 2, {
      deadline: DEADLINE,
      what: "the dead letters",
    });
    await b.stop();
    const keys: Deno.KvKey[] = [];
    for await (const entry of kv.list({ prefix: [] })) keys.push(entry.key);
    const written = keys.filter((key) => key[0] !== "outside");
    assert.ok(written.length > 3, `keys written: ${written.length}`);
    for (const key of written) assert.deepEqual(key.slice(0, 2), ["tenant", 7], String(key));
    assert.ok(written.some((key) => key[2] === "park"), "the unsubscribed one's message is parked");
  });
});

Deno.test("KvBroker: failures are retried with backoff, then dead-lettered; replay delivers again", async () => {
  await withKv(async (kv) => {
    const failures: unknown[] = [];
    const b = broker(kv, { maxDeliveries: 3, onError: (failure) => failures.push(failure) });
    const attempts = new Collector<number>();
    let healthy = false;
    const handled = new Collector<string>();
    b.subscribe("orders", function charge(e: CloudEvent<{ n: number }>, ctx: MessageContext) {
      attempts.add(ctx.attempt);
      if (!healthy) throw new TypeError(`card declined ${e.data!.n}`);
      handled.add(e.id);
    });
    await b.start();
    const event = new CloudEvent({ type: "order.created", source: "/shop", data: { n: 1 } });
    await b.publish(event, "orders", { headers: { tenant: "acme" } });
    await wait(attempts.reached(3), "three attempts");
    assert.deepEqual(attempts.items, [1, 2, 3]);
    await waitForAsync(async () => (await b.deadLetters("orders")).length === 1, {
      deadline: DEADLINE,
      what: "the dead letter",
    });
    const [letter] = await b.deadLetters("orders");
    assert.equal(letter.channel, "orders");
    assert.equal(letter.group, "eventbus");
    assert.equal(letter.subscription, "charge");
    assert.equal(letter.entryId, event.id);
    assert.equal(letter.attempts, 3);
    assert.match(letter.error, /each of its 3 deliveries, last with TypeError: card declined 1/);
    assert.ok(!Number.isNaN(Date.parse(letter.failedAt)));
    assert.ok(letter.message instanceof CloudEvent);
    assert.deepEqual((letter.message as CloudEvent).toJSON(), event.toJSON());
    assert.equal(failures.length, 3);
    const stats = b.stats();
    assert.equal(stats.errors, 3);
    assert.equal(stats.retried, 2);
    assert.equal(stats.deadLettered, 1);

    healthy = true;
    assert.equal(await b.replayDeadLetters("orders", { ids: ["no-such-id"] }), 0);
    assert.equal(await b.replayDeadLetters("orders", { ids: [letter.id] }), 1);
    await wait(handled.reached(1), "the replayed message");
    assert.deepEqual(handled.items, [event.id]);
    assert.equal(attempts.items.at(-1), 1, "a replayed message starts again at attempt 1");
    assert.deepEqual(await b.deadLetters("orders"), []);
    await b.stop();
  });
});

Deno.test("KvBroker: RejectMessage dead-letters at once; replay without ids moves them all", async () => {
  await withKv(async (kv) => {
    const b = broker(kv);
    let accept = false;
    const handled = new Collector<number>();
    b.subscribe("jobs", function picky(n: number) {
      if (!accept) throw new RejectMessage(`job ${n} has no tenant`);
      handled.add(n);
    });
    await b.start();
    for (let n = 1; n <= 3; n++) await b.publish(n, "jobs");
    await waitForAsync(async () => (await b.deadLetters("jobs")).length === 3, {
      deadline: DEADLINE,
      what: "three dead letters",
    });
    const letters = await b.deadLetters("jobs");
    assert.deepEqual(letters.map((l) => l.message).sort(), [1, 2, 3]);
    assert.ok(letters.every((l) => /^rejected: job \d has no tenant$/.test(l.error)));
    assert.equal((await b.deadLetters("jobs", { count: 2 })).length, 2);
    accept = true;
    assert.equal(await b.replayDeadLetters("jobs"), 3);
    await wait(handled.reached(3), "all three replayed");
    assert.deepEqual([...handled.items].sort(), [1, 2, 3]);
    assert.equal(b.stats().errors, 0);
    await b.stop();
  });
});

/** A batch as Deno KV writes it to `keysIfUndelivered` when it gives up. */
function gaveUpBatch(records: unknown[]): Record<string, unknown> {
  return {
    eventbus: "eventbus.kv/1",
    prefix: ["eventbus"],
    channel: "mail",
    group: "eventbus",
    subscription: "send",
    batch: "0lx00000a-0000-test0000",
    attempt: 1,
    deliveries: 4,
    body: new TextEncoder().encode(JSON.stringify(records)),
  };
}

Deno.test("KvBroker: a batch KV gave up on is listed message by message and replayed by id", async () => {
  await withKv(async (kv) => {
    const b = broker(kv);
    const sent = new Collector<string>();
    b.subscribe("mail", function send(m: string) {
      sent.add(m);
    });
    await b.start();
    const batch = gaveUpBatch([{ p: "a", i: "m-1" }, { p: "b", i: "m-2" }, { p: "c", i: "m-3" }]);
    await kv.set(["eventbus", "dlq", "mail", batch.batch as string], batch);
    const letters = await b.deadLetters("mail");
    assert.deepEqual(letters.map((l) => [l.id, l.entryId, l.message, l.attempts]), [
      [`${batch.batch}#0`, "m-1", "a", 4],
      [`${batch.batch}#1`, "m-2", "b", 4],
      [`${batch.batch}#2`, "m-3", "c", 4],
    ]);
    assert.match(letters[0].error, /Deno KV gave up delivering it/);
    assert.equal(await b.replayDeadLetters("mail", { ids: [letters[1].id] }), 1);
    await wait(sent.reached(1), "the replayed message");
    assert.deepEqual(sent.items, ["b"]);
    assert.deepEqual((await b.deadLetters("mail")).map((l) => l.message), ["a", "c"]);
    assert.equal(await b.replayDeadLetters("mail"), 2);
    await wait(sent.reached(3), "the rest");
    assert.deepEqual(sent.items, ["b", "a", "c"]);
    assert.deepEqual(await b.deadLetters("mail"), []);
    await b.stop();
  });
});

Deno.test("KvBroker: values on the queue it did not write are dead-lettered; the listener goes on", async () => {
  await withKv(async (kv) => {
    const b = broker(kv);
    const got = new Collector<string>();
    b.subscribe("mail", function send(m: string) {
      got.add(m);
    });
    await b.start();
    await kv.enqueue("a plain string");
    await kv.enqueue({ eventbus: "something else" });
    await kv.enqueue({ ...gaveUpBatch([]), prefix: "not an array" });
    // Ours, but its body is not JSON, and one of its records is not a message.
    await kv.enqueue({ ...gaveUpBatch([]), body: new TextEncoder().encode("{oops") });
    await kv.enqueue(gaveUpBatch([{ p: "fine", i: "m-1" }, { e: { specversion: "0.3" } }]));
    await b.publish("after", "mail");
    await wait(got.reached(2), "the good messages");
    assert.deepEqual([...got.items].sort(), ["after", "fine"]);
    await waitForAsync(async () => (await b.deadLetters(FOREIGN_CHANNEL)).length === 3, {
      deadline: DEADLINE,
      what: "three foreign values",
    });
    const foreign = await b.deadLetters(FOREIGN_CHANNEL);
    assert.deepEqual(
      foreign.map((l) => l.message).filter((m) => typeof m === "string"),
      ["a plain string"],
    );
    assert.ok(
      foreign.every((l) => /KvBroker message|not a message written by KvBroker/.test(l.error)),
    );
    await waitForAsync(async () => (await b.deadLetters("mail")).length === 2, {
      deadline: DEADLINE,
      what: "two bad messages of ours",
    });
    const mine = await b.deadLetters("mail");
    assert.ok(mine.some((l) => /cannot be read/.test(l.error) && l.message === "{oops"));
    assert.ok(mine.some((l) => /cannot be decoded: .*specversion/.test(l.error)));
    await b.stop();
  });
});

Deno.test("KvBroker: brokers of different prefixes share one handle; each gets its own", async () => {
  await withKv(async (kv) => {
    const a = broker(kv, { keyPrefix: "app-a" });
    const b = broker(kv, { keyPrefix: "app-b" });
    const gotA = new Collector<string>();
    const gotB = new Collector<string>();
    a.subscribe("news", function read(m: string) {
      gotA.add(m);
    });
    b.subscribe("news", function read(m: string) {
      gotB.add(m);
    });
    await a.start();
    await b.start();
    for (let i = 0; i < 20; i++) {
      await a.publish(`a${i}`, "news");
      await b.publish(`b${i}`, "news");
    }
    await wait(Promise.all([gotA.reached(20), gotB.reached(20)]), "all messages");
    assert.ok(gotA.items.every((m) => m.startsWith("a")));
    assert.ok(gotB.items.every((m) => m.startsWith("b")));
    assert.equal(a.stats().parked + b.stats().parked, 0);
    await a.stop();
    await b.stop();
  });
});

Deno.test("KvBroker: a durable subscription keeps its messages while nobody runs it", async () => {
  await withKv(async (kv) => {
    const b = broker(kv);
    const first = new Collector<number>();
    const sub = b.subscribe("audit", function auditor(n: number) {
      first.add(n);
    });
    await b.start();
    await b.publish(0, "audit");
    await wait(first.reached(1), "the first message");
    await sub.unsubscribe();
    for (let n = 1; n <= 5; n++) await b.publish(n, "audit");
    await b.stop();
    await b.start();
    for (let n = 6; n <= 8; n++) await b.publish(n, "audit");
    // Parked all, they are moved back in one commit, in order. Messages still in the queue
    // would go to the new subscription directly, before parked ones that are slow to return.
    await waitForAsync(async () => {
      let parked = 0;
      for await (const entry of kv.list({ prefix: [] })) if (entry.key.includes("park")) parked++;
      return parked === 8;
    }, { deadline: DEADLINE, what: "1 to 8 parked, one publish each" });
    const again = new Collector<number>();
    b.subscribe("audit", function auditor(n: number) {
      again.add(n);
    });
    await b.publish(9, "audit");
    await wait(again.reached(9), "everything published meanwhile");
    assert.deepEqual(again.items, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual(first.items, [0]);
    await b.stop();
  });
});

Deno.test("KvBroker: a stop that times out parks the running message; a restart handles it", async () => {
  await withKv(async (kv) => {
    const b = broker(kv);
    const started = deferred();
    const attempts = new Collector<string>();
    let stuck = true;
    let signal: AbortSignal | undefined;
    b.subscribe("jobs", async function slow(m: string, ctx: MessageContext) {
      attempts.add(m);
      if (!stuck) return;
      signal = ctx.signal;
      started.resolve();
      await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
    });
    await b.start();
    await b.publish("job-1", "jobs");
    await wait(started.promise, "the handler started");
    await b.stop({ timeout: 50 });
    assert.equal(signal?.aborted, true);
    assert.equal(b.stats().parked, 1);
    stuck = false;
    await b.start();
    await wait(attempts.reached(2), "the message again after restart");
    assert.deepEqual(attempts.items, ["job-1", "job-1"]);
    await b.stop();
  });
});

Deno.test("KvBroker: request details: no subscribers, a reply by hand, one of two handlers failing", async () => {
  await withKv(async (kv) => {
    const b = broker(kv, { maxDeliveries: 1 });
    b.subscribe("manual", (n: number, ctx: MessageContext) => {
      // A handler may answer by publishing to the reply channel itself.
      void b.publish(n * 10, ctx.replyTo!, { correlationId: ctx.correlationId });
    }, { name: "manual" });
    b.subscribe("quote", function broken() {
      throw new Error("no price list");
    });
    b.subscribe("quote", function fallback() {
      return 9.5;
    });
    b.subscribe("fails", function one() {
      throw new RangeError("first");
    });
    b.subscribe("fails", function two() {
      throw new RangeError("second");
    });
    await b.start();
    await assert.rejects(b.request("x", "nobody", { timeout: DEADLINE }), NoSubscribersError);
    assert.equal(await wait(b.request(4, "manual", { timeout: DEADLINE }), "manual"), 40);
    assert.equal(await wait(b.request("A1", "quote", { timeout: DEADLINE }), "quote"), 9.5);
    await assert.rejects(
      wait(b.request("A1", "fails", { timeout: DEADLINE }), "failed"),
      (error: unknown) => error instanceof RequestFailedError && error.errorName === "RangeError",
    );
    const controller = new AbortController();
    const aborted = b.request("x", "manual", { timeout: DEADLINE, signal: controller.signal });
    controller.abort(new Error("caller gave up"));
    await assert.rejects(aborted, /caller gave up/);
    assert.equal(b.stats().pendingRequests, 0);
    await b.stop();
  });
});

Deno.test("KvBroker: a request waiting at stop rejects with BrokerError", async () => {
  await withKv(async (kv) => {
    const b = broker(kv);
    const started = deferred();
    b.subscribe("hang", (_: unknown, ctx: MessageContext) => {
      started.resolve();
      return new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
    }, { name: "hang" });
    await b.start();
    const pending = b.request("x", "hang", { timeout: DEADLINE });
    await wait(started.promise, "the handler started");
    await b.stop({ timeout: 10 });
    await assert.rejects(pending, BrokerError);
    assert.equal(b.stats().pendingRequests, 0);
  });
});

Deno.test("KvBroker: idempotent subscriptions skip an event any instance already handled", async () => {
  const temp = await tempKvPath("idempotent");
  const instances = [0, 1].map(() =>
    new KvBroker({ path: temp.path, group: "mail", logger: silentLogger })
  );
  const runs = new Collector<string>();
  for (const instance of instances) {
    instance.subscribe("signups", function welcome(e: CloudEvent) {
      runs.add(e.subject!);
    }, { idempotent: { ttl: 60_000 } });
  }
  try {
    await Promise.all(instances.map((instance) => instance.start()));
    const event = new CloudEvent({ type: "user.signed_up", source: "/web", subject: "ada" });
    await instances[0].publish(event, "signups");
    await wait(runs.reached(1), "the first delivery");
    // Handled means recorded: consumed counts the call once the record is written.
    await waitForAsync(
      () => Promise.resolve(instances.reduce((sum, i) => sum + i.stats().consumed, 0) === 1),
      { deadline: DEADLINE, what: "the first delivery recorded" },
    );
    // The same event again, from the other instance, several times, then a sentinel.
    for (let i = 0; i < 5; i++) await instances[1].publish(event, "signups");
    await instances[1].publish(
      new CloudEvent({ type: "user.signed_up", source: "/web", subject: "end" }),
      "signups",
    );
    await wait(runs.reached(2), "the sentinel");
    assert.deepEqual(runs.items, ["ada", "end"]);
    assert.throws(
      () => instances[0].subscribe("x", function f() {}, { idempotent: { ttl: -1 } }),
      InvalidArgumentError,
    );
  } finally {
    await Promise.all(instances.map((instance) => instance.stop()));
    await temp.remove();
  }
});

Deno.test("KvBroker: health reports readiness, subscriptions and dead letters", async () => {
  await withKv(async (kv) => {
    const b = broker(kv);
    b.subscribe("jobs", function refuse() {
      throw new RejectMessage("never");
    });
    const stopped = await b.health();
    assert.equal(stopped.ok, false);
    assert.equal(stopped.state, "stopped");
    await b.start();
    await b.publish("x", "jobs");
    // A report reads the running calls before the database: the count is read again once the
    // dead letter shows, so a report taken before the delivery cannot pass for one after it.
    await waitForAsync(async () => {
      const report = await b.health();
      return report.deadLetters?.jobs === 1 && b.stats().running === 0;
    }, {
      deadline: DEADLINE,
      what: "the dead letter in the health report, the handler done",
    });
    const health = await b.health();
    assert.equal(health.ok, true);
    assert.equal(health.connected, true);
    assert.equal(typeof health.latencyMs, "number");
    assert.deepEqual(health.subscriptions, [
      { channel: "jobs", subscription: "refuse", queued: 0, running: 0 },
    ]);
    await b.stop();
    assert.equal((await b.health()).ok, false);
  });
});

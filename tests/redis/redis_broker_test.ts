/**
 * RedisBroker behaviour beyond the shared contract, on the shared Redis
 * (127.0.0.1:6379): options and credential masking, the entry codec,
 * retries, dead letters and replay, poison entries, claims of a dead
 * consumer's entries, independent subscriptions on one channel, pub/sub mode
 * and request/reply. Each test uses its own key prefix and deletes its keys.
 */

import assert from "node:assert/strict";
import { deadLetterKey, pubsubKey, replyKey, streamKey } from "../../src/redis/keys.ts";
import type { Redis } from "ioredis";
import {
  BrokerError,
  CloudEvent,
  type DropEvent,
  InvalidArgumentError,
  type Logger,
  type MessageContext,
  NackMessage,
  NoSubscribersError,
  RejectMessage,
  RequestFailedError,
  RequestTimeoutError,
  silentLogger,
  type StateChangeEvent,
  ValidationError,
} from "../../mod.ts";
import { RedisBroker, type RedisBrokerOptions } from "../../redis.ts";
import { resolveRedisOptions } from "../../src/redis/options.ts";
import { maskUrl, redact } from "../../src/redis/secrets.ts";
import {
  adminClient,
  deferred,
  deleteKeys,
  uniquePrefix,
  waitUntil,
  withDeadline,
} from "./_fault_util.ts";
import { freePort } from "./_redis_server.ts";
import {
  decodeEntry,
  decodePubSubMessage,
  decodePubSubText,
  encodeEntry,
  fieldsFromJSON,
  fieldsToJSON,
  parsePubSubText,
  toPubSubText,
} from "../../src/redis/entry_codec.ts";
import { TcpProxy } from "./_tcp_proxy.ts";

const DEADLINE = 20_000;
const FAST: RedisBrokerOptions = {
  logger: silentLogger,
  blockMs: 200,
  retryBackoff: { initial: 5, max: 50 },
  // Past this idle time a peer, or the consumer itself, claims an entry: were it short, a stall
  // between a delivery and its XACK would run the entry twice. Tests of claims set their own.
  claimIdleMs: 30_000,
};

function wait<T>(promise: Promise<T>, what: string): Promise<T> {
  return withDeadline(promise, DEADLINE, what);
}

/** Runs a test body with an admin connection and a unique prefix, cleaning both up. */
async function withRedis(
  label: string,
  body: (ctx: { admin: Redis; keyPrefix: string; brokers: RedisBroker[] }) => Promise<void>,
): Promise<void> {
  const admin = await adminClient();
  const keyPrefix = uniquePrefix(label);
  const brokers: RedisBroker[] = [];
  try {
    await body({ admin, keyPrefix, brokers });
  } finally {
    await Promise.allSettled(brokers.map((broker) => broker.stop({ timeout: 1_000 })));
    await deleteKeys(admin, keyPrefix);
    admin.disconnect();
  }
}

function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const record = (message: string, ...details: unknown[]) =>
    lines.push(
      [message, ...details.map((d) => (d instanceof Error ? d.message : String(d)))].join(" "),
    );
  return { lines, debug: record, info: record, warn: record, error: record };
}

async function pendingCount(admin: Redis, stream: string, group: string): Promise<number> {
  const [count] = await admin.xpending(stream, group) as [number];
  return Number(count);
}

// --- options and credentials -------------------------------------------------------------

Deno.test("options: defaults, validation naming the option", () => {
  const resolved = resolveRedisOptions({});
  assert.equal(resolved.url, "redis://127.0.0.1:6379");
  assert.equal(resolved.keyPrefix, "eventbus:");
  assert.equal(resolved.group, "eventbus");
  assert.equal(resolved.mode, "stream");
  assert.equal(resolved.delivery, "group");
  assert.equal(resolved.maxDeliveries, 5);
  assert.deepEqual(resolved.retryBackoff, { initial: 100, max: 30_000, factor: 2 });
  assert.equal(resolved.claimIdleMs, 30_000);
  assert.equal(resolved.blockMs, 2_000);
  assert.equal(resolved.batchSize, 100);
  assert.equal(resolved.maxLen, 1_000_000);
  assert.equal(resolved.maxMessageBytes, 1_048_576);
  assert.equal(resolved.publishTimeout, 5_000);
  assert.equal(resolved.connectTimeout, 5_000);
  assert.notEqual(resolveRedisOptions({}).consumer, resolved.consumer, "random consumer names");
  const bad: [string, RedisBrokerOptions][] = [
    ["retryBackoff.max", { retryBackoff: { initial: 100, max: 10 } }],
    ["retryBackoff.initial", { retryBackoff: { initial: -1 } }],
    ["maxQueueSize", { maxQueueSize: 0 }],
    ["logger", { logger: {} as Logger }],
    ["onError", { onError: "x" as unknown as () => void }],
    ["keyPrefix", { keyPrefix: "a b" }],
  ];
  for (const [argument, options] of bad) {
    assert.throws(() => new RedisBroker(options), (error: unknown) => {
      assert.ok(error instanceof InvalidArgumentError, String(error));
      assert.equal(error.argument, argument);
      return true;
    });
  }
});

Deno.test("credentials: masked in URLs, errors, logs and stats", async () => {
  assert.equal(maskUrl("redis://app:s3cret@cache:6379/2"), "redis://app:***@cache:6379/2");
  assert.equal(maskUrl("rediss://:s3cret@cache"), "rediss://:***@cache");
  assert.equal(maskUrl("redis://cache:6379"), "redis://cache:6379");
  assert.equal(redact("to redis://u:pw@h failed, pw", ["pw"]), "to redis://u:***@h failed, ***");
  const secret = "Sup3r-secret-pw";
  const resolved = resolveRedisOptions({ url: `redis://user:${secret}@127.0.0.1:6379` });
  assert.equal(resolved.maskedUrl, "redis://user:***@127.0.0.1:6379");

  const logger = recordingLogger();
  const broker = new RedisBroker({
    url: `redis://user:${secret}@127.0.0.1:${freePort()}`,
    redis: { password: secret },
    connectTimeout: 300,
    logger,
  });
  broker.subscribe("orders", function reader() {});
  const error = await broker.start().then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof BrokerError, String(error));
  const exposed = [
    error.message,
    String((error as Error).cause),
    JSON.stringify(broker.stats()),
    ...logger.lines,
  ].join("\n");
  assert.ok(!exposed.includes(secret), exposed);
  assert.match(error.message, /user:\*\*\*@127\.0\.0\.1/);
  await broker.stop();
});

// --- entry codec ---------------------------------------------------------------------------

Deno.test("codec: a CloudEvent round-trips with every attribute, extensions and transport fields", () => {
  const event = new CloudEvent({
    type: "order.created",
    source: "/orders",
    subject: "A1",
    datacontenttype: "application/json",
    dataschema: "https://example.com/schema.json",
    time: "2024-05-01T10:00:00Z",
    data: { orderId: "A1", lines: [1, 2], nested: { ok: true } },
    extensions: { tenant: "acme", priority: 5, urgent: true, numeric: "42" },
  });
  const fields = encodeEntry(event, {
    headers: { "x-trace": "t-1", "content-language": "fr" },
    correlationId: "corr-1",
    replyTo: "replies",
  });
  assert.ok(fields.includes("ext:tenant") && fields.includes("h:x-trace"));
  const decoded = decodeEntry(fields);
  assert.ok(decoded.message instanceof CloudEvent);
  assert.deepEqual(decoded.message.toJSON(), event.toJSON());
  // "42" stays a string, 5 stays a number: extension types survive.
  assert.deepEqual(decoded.message.extensions, {
    tenant: "acme",
    priority: 5,
    urgent: true,
    numeric: "42",
  });
  assert.deepEqual(decoded.headers, { "x-trace": "t-1", "content-language": "fr" });
  assert.equal(decoded.correlationId, "corr-1");
  assert.equal(decoded.replyTo, "replies");
  // The pub/sub form carries the same fields.
  assert.deepEqual(decodeEntry(fieldsFromJSON(fieldsToJSON(fields))).message, decoded.message);
});

Deno.test("codec: binary data, events without data or time, and plain payloads", () => {
  const bytes = new Uint8Array([0, 1, 2, 250, 255]);
  const binary = new CloudEvent({ type: "blob", source: "/b", data: bytes, time: null });
  const fields = encodeEntry(binary);
  assert.ok(fields.includes("data_base64") && !fields.includes("data") && !fields.includes("time"));
  const back = decodeEntry(fields).message as CloudEvent;
  assert.deepEqual(back.data, bytes);
  assert.equal(back.time, undefined);
  const bare = decodeEntry(encodeEntry(new CloudEvent({ type: "t", source: "/s" }))).message;
  assert.equal((bare as CloudEvent).data, undefined);
  for (const payload of [{ a: [1, { b: null }] }, "text", 0, 12.5, false, null, [], undefined]) {
    assert.deepEqual(decodeEntry(encodeEntry(payload)).message, payload);
  }
  assert.deepEqual(decodeEntry(encodeEntry(bytes)).message, bytes);
  assert.deepEqual(decodeEntry(encodeEntry("x")).headers, {});
});

Deno.test("codec: the pub/sub form embeds JSON payloads and round-trips every kind of message", () => {
  const event = new CloudEvent({
    type: "t",
    source: "/s",
    data: { a: [1, "x"] },
    extensions: { tenant: "acme", n: 3 },
  });
  const textEvent = new CloudEvent({ type: "t", source: "/s", data: 'plain "text"' });
  const binary = new CloudEvent({ type: "t", source: "/s", data: new Uint8Array([1, 2, 3]) });
  const messages: unknown[] = [
    { n: 1, nested: { ok: true } },
    [1, 2],
    "text",
    "",
    '{"looks":"like json"}',
    0,
    -1.5,
    true,
    null,
    undefined,
    new Uint8Array([9, 8]),
  ];
  for (const message of messages) {
    const fields = encodeEntry(message, { headers: { h: "v" }, correlationId: "c" });
    const text = toPubSubText(fields);
    const decoded = decodePubSubMessage(parsePubSubText(text));
    assert.deepEqual(decoded.message, message, text);
    assert.deepEqual(decoded.headers, { h: "v" });
    assert.equal(decoded.correlationId, "c");
    // Without transport fields, the payload-only fast path decodes it.
    assert.deepEqual(decodePubSubText(toPubSubText(encodeEntry(message))).message, message);
    assert.deepEqual(decodePubSubText(fieldsToJSON(encodeEntry(message))).message, message);
    // The all-strings form decodes the same.
    assert.deepEqual(decodePubSubMessage(parsePubSubText(fieldsToJSON(fields))).message, message);
  }
  assert.equal(toPubSubText(encodeEntry({ n: 1 })), '{"payload":{"n":1}}');
  for (const e of [event, textEvent, binary]) {
    const decoded = decodePubSubMessage(parsePubSubText(toPubSubText(encodeEntry(e))));
    assert.deepEqual((decoded.message as CloudEvent).toJSON(), e.toJSON());
  }
  assert.throws(() => parsePubSubText("{"), ValidationError);
  assert.throws(() => decodePubSubText('{"payload":"{oops"}'), ValidationError);
  assert.throws(() => decodePubSubText("[]"), ValidationError);
  assert.throws(() => parsePubSubText('{"h:x":1}'), ValidationError);
});

Deno.test("codec: unencodable messages throw InvalidArgumentError, malformed entries ValidationError", () => {
  assert.throws(() => encodeEntry(10n), InvalidArgumentError);
  assert.throws(() => encodeEntry(() => {}), InvalidArgumentError);
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  assert.throws(() => encodeEntry(cyclic), InvalidArgumentError);
  const malformed: string[][] = [
    ["garbage", "x"],
    ["payload", "{not json"],
    ["specversion", "0.3", "id", "1", "source", "/s", "type", "t"],
    ["specversion", "1.0", "id", "", "source", "/s", "type", "t"],
    ["specversion", "1.0", "id", "1", "source", "/s", "type", "t", "data", "{"],
    ["specversion", "1.0", "id", "1", "source", "/s", "type", "t", "ext:bad", '{"o":1}'],
    ["specversion", "1.0", "id", "1", "source", "/s", "type", "t", "data_base64", "%%%"],
    ["payload"],
  ];
  for (const fields of malformed) {
    assert.throws(() => decodeEntry(fields), ValidationError, JSON.stringify(fields));
  }
  assert.throws(() => fieldsFromJSON("[1]"), ValidationError);
  assert.throws(() => fieldsFromJSON('{"a":1}'), ValidationError);
});

// --- retries and dead letters --------------------------------------------------------------

Deno.test("retry: a handler failing twice then succeeding is handled once, acked, attempt increments", async () => {
  await withRedis("retry", async ({ admin, keyPrefix, brokers }) => {
    const attempts: number[] = [];
    const done = deferred();
    const broker = new RedisBroker({ ...FAST, keyPrefix, group: "svc" });
    brokers.push(broker);
    broker.subscribe("jobs", function flaky(_m: string, ctx: MessageContext) {
      attempts.push(ctx.attempt);
      if (ctx.attempt < 3) throw new Error(`failure ${ctx.attempt}`);
      done.resolve();
    });
    await broker.start();
    await broker.publish("work", "jobs");
    await wait(done.promise, "third attempt succeeds");
    assert.deepEqual(attempts, [1, 2, 3]);
    const stream = streamKey(keyPrefix, "jobs");
    await waitUntil(
      async () => (await pendingCount(admin, stream, "svc:flaky")) === 0,
      DEADLINE,
      "acked",
    );
    const stats = broker.stats();
    assert.equal(stats.retried, 2);
    assert.equal(stats.errors, 2);
    assert.equal(stats.consumed, 1);
    assert.equal(stats.deadLettered, 0);
    assert.equal(await admin.xlen(deadLetterKey(keyPrefix, "jobs")), 0);
  });
});

Deno.test("dead letters: an always-failing handler is dead-lettered after maxDeliveries; replay brings it back", async () => {
  await withRedis("dlq", async ({ admin, keyPrefix, brokers }) => {
    let healthy = false;
    const attempts: number[] = [];
    const handled = deferred<string>();
    const broker = new RedisBroker({ ...FAST, keyPrefix, group: "svc", maxDeliveries: 3 });
    brokers.push(broker);
    broker.subscribe("jobs", function fragile(m: { job: string }, ctx: MessageContext) {
      if (!healthy) {
        attempts.push(ctx.attempt);
        throw new Error("database unavailable");
      }
      handled.resolve(m.job);
    });
    await broker.start();
    await broker.publish({ job: "J1" }, "jobs", { headers: { "x-tenant": "acme" } });
    await waitUntil(() => broker.stats().deadLettered === 1, DEADLINE, "dead-lettered");
    assert.deepEqual(attempts, [1, 2, 3]);
    const [entry] = await admin.xrange(streamKey(keyPrefix, "jobs"), "-", "+");
    const letters = await broker.deadLetters("jobs");
    assert.equal(letters.length, 1);
    const letter = letters[0];
    assert.equal(letter.channel, "jobs");
    assert.equal(letter.group, "svc:fragile");
    assert.equal(letter.subscription, "fragile");
    assert.equal(letter.entryId, entry[0]);
    assert.equal(letter.attempts, 3);
    assert.equal(letter.error, "database unavailable");
    assert.ok(!Number.isNaN(Date.parse(letter.failedAt)));
    assert.deepEqual(letter.message, { job: "J1" });
    assert.equal(
      await pendingCount(admin, streamKey(keyPrefix, "jobs"), "svc:fragile"),
      0,
      "acked",
    );

    healthy = true;
    assert.equal(await broker.replayDeadLetters("jobs"), 1);
    assert.equal(await wait(handled.promise, "replayed entry handled"), "J1");
    assert.equal(
      await admin.xlen(deadLetterKey(keyPrefix, "jobs")),
      0,
      "removed from the dead-letter stream",
    );
    assert.deepEqual(await broker.deadLetters("jobs"), []);
    assert.equal(
      await broker.replayDeadLetters("jobs", { ids: [letter.id] }),
      0,
      "already replayed",
    );
  });
});

Deno.test("dead letters: a handler throwing RejectMessage is dead-lettered at once, with its reason", async () => {
  await withRedis("dlq-reject", async ({ keyPrefix, brokers }) => {
    const attempts: number[] = [];
    const failures: unknown[] = [];
    const broker = new RedisBroker({
      ...FAST,
      keyPrefix,
      maxDeliveries: 5,
      onError: (failure) => failures.push(failure),
    });
    brokers.push(broker);
    broker.subscribe("orders", function strict(_m: unknown, ctx: MessageContext) {
      attempts.push(ctx.attempt);
      throw new RejectMessage("data.amount: must be positive");
    });
    await broker.start();
    await broker.publish({ amount: -1 }, "orders");
    await waitUntil(() => broker.stats().deadLettered === 1, DEADLINE, "dead-lettered");
    assert.deepEqual(attempts, [1]);
    const [letter] = await broker.deadLetters("orders");
    assert.equal(letter.attempts, 1);
    assert.match(letter.error, /rejected: data\.amount: must be positive/);
    assert.equal(broker.stats().retried, 0);
    assert.equal(broker.stats().errors, 0, "a refusal is not a failure");
    assert.deepEqual(failures, []);
  });
});

Deno.test("dead letters: a handler throwing ValidationError is retried like any failure", async () => {
  await withRedis("dlq-validation", async ({ keyPrefix, brokers }) => {
    const attempts: number[] = [];
    const broker = new RedisBroker({ ...FAST, keyPrefix, maxDeliveries: 3 });
    brokers.push(broker);
    broker.subscribe("orders", function strict(_m: unknown, ctx: MessageContext) {
      attempts.push(ctx.attempt);
      throw new ValidationError([{ path: "data.amount", message: "must be positive" }]);
    });
    await broker.start();
    await broker.publish({ amount: -1 }, "orders");
    await waitUntil(() => broker.stats().deadLettered === 1, DEADLINE, "dead-lettered");
    assert.deepEqual(attempts, [1, 2, 3]);
    const [letter] = await broker.deadLetters("orders");
    assert.equal(letter.attempts, 3);
    assert.match(letter.error, /data\.amount: must be positive/);
    assert.equal(broker.stats().retried, 2);
  });
});

Deno.test("poison: a malformed entry written with raw XADD is dead-lettered and the consumer goes on", async () => {
  await withRedis("poison", async ({ admin, keyPrefix, brokers }) => {
    const got: unknown[] = [];
    const next = deferred();
    const broker = new RedisBroker({ ...FAST, keyPrefix });
    brokers.push(broker);
    broker.subscribe("orders", function reader(m: unknown) {
      got.push(m);
      next.resolve();
    });
    await broker.start();
    const stream = streamKey(keyPrefix, "orders");
    const poisonId = await admin.xadd(stream, "*", "garbage", "\u0000\u00ff not an event");
    await admin.xadd(stream, "*", "payload", "{broken json");
    await broker.publish({ ok: true }, "orders");
    await wait(next.promise, "the good entry after the poison ones");
    assert.deepEqual(got, [{ ok: true }]);
    await waitUntil(() => broker.stats().deadLettered === 2, DEADLINE, "both poison entries moved");
    const letters = await broker.deadLetters("orders");
    const poison = letters.find((l) => l.entryId === poisonId)!;
    assert.match(poison.error, /neither a specversion nor a payload/);
    assert.deepEqual(poison.message, { garbage: "\u0000\u00ff not an event" });
    assert.match(letters.find((l) => l.entryId !== poisonId)!.error, /payload: is not valid JSON/);
    await waitUntil(
      async () => (await pendingCount(admin, stream, "eventbus:reader")) === 0,
      DEADLINE,
      "every entry acknowledged",
    );
  });
});

// --- claims ---------------------------------------------------------------------------------

Deno.test("claim: entries of a consumer cut off from Redis are handled by another after claimIdleMs, never while its handler runs", async () => {
  await withRedis("claim", async ({ admin, keyPrefix, brokers }) => {
    await using proxy = new TcpProxy(6379);
    const count = 10;
    // The doomed consumer's heartbeats (a third of its claimIdleMs) keep its entries idle for
    // ~100 ms at most; the survivor claims only past 1500 ms: a stall of the doomed process far
    // shorter than that cannot pass for its death.
    const doomedIdleMs = 150;
    const survivorIdleMs = 1_500;
    const taken = new Set<number>();
    const tookAll = deferred();
    const doomed = new RedisBroker({
      ...FAST,
      url: proxy.url,
      keyPrefix,
      group: "svc",
      consumer: "doomed",
      claimIdleMs: doomedIdleMs,
      connectTimeout: 2_000,
      publishTimeout: 2_000,
    });
    doomed.subscribe("jobs", (m: { n: number }) => {
      taken.add(m.n);
      if (taken.size === count) tookAll.resolve();
      return new Promise<never>(() => {}); // never finishes: never acked
    }, { name: "work", concurrency: count });
    brokers.push(doomed);
    await doomed.start();
    for (let n = 0; n < count; n++) await doomed.publish({ n }, "jobs");
    await wait(tookAll.promise, "the doomed consumer took every entry");
    const survivorGot = new Map<number, number>();
    const survivorDone = deferred();
    const survivor = new RedisBroker({
      ...FAST,
      keyPrefix,
      group: "svc",
      consumer: "survivor",
      claimIdleMs: survivorIdleMs,
    });
    survivor.subscribe("jobs", (m: { n: number }, ctx: MessageContext) => {
      survivorGot.set(m.n, ctx.attempt);
      if (survivorGot.size === count) survivorDone.resolve();
    }, { name: "work" });
    brokers.push(survivor);
    await survivor.start();
    const stream = streamKey(keyPrefix, "jobs");

    // While the doomed handlers run (and keep their entries fresh), nobody claims them:
    // several of the survivor's claimIdleMs pass with every entry still owned by "doomed".
    const heldSince = Date.now();
    await waitUntil(
      async () => {
        assert.equal(survivorGot.size, 0, "claimed while the original handler still runs");
        const [, , , owners] = await admin.xpending(stream, "svc:work") as [
          number,
          string,
          string,
          [string, string][],
        ];
        assert.deepEqual(owners, [["doomed", String(count)]]);
        return Date.now() - heldSince > 3 * survivorIdleMs;
      },
      DEADLINE,
      "several claim periods",
    );
    assert.equal(survivor.stats().claimed, 0);

    // Hard cut: no way back, and every connection of the doomed consumer killed.
    await proxy.refuse();
    for (const addr of proxy.upstreamAddrs()) await admin.client("KILL", "ADDR", addr);
    await wait(survivorDone.promise, "the survivor handled every entry");
    assert.deepEqual([...survivorGot.keys()].sort((a, b) => a - b), [...Array(count).keys()]);
    assert.ok([...survivorGot.values()].every((attempt) => attempt >= 2), "claimed: attempt >= 2");
    assert.equal(survivor.stats().claimed, count);
    await waitUntil(
      async () => (await pendingCount(admin, stream, "svc:work")) === 0,
      DEADLINE,
      "acked",
    );
    await doomed.stop({ timeout: 0 });
  });
});

// --- subscriptions ---------------------------------------------------------------------------

Deno.test("groups: two handler names on one channel each get every event; a retry of one does not re-run the other", async () => {
  await withRedis("two-names", async ({ keyPrefix, brokers }) => {
    const auditCalls: string[] = [];
    const billingAttempts: number[] = [];
    const billed = deferred();
    const broker = new RedisBroker({ ...FAST, keyPrefix, group: "svc" });
    brokers.push(broker);
    broker.subscribe("orders", function audit(m: string) {
      auditCalls.push(m);
    });
    broker.subscribe("orders", function billing(_m: string, ctx: MessageContext) {
      billingAttempts.push(ctx.attempt);
      if (ctx.attempt === 1) throw new Error("card declined once");
      billed.resolve();
    });
    await broker.start();
    await broker.publish("A1", "orders");
    await wait(billed.promise, "billing succeeded on retry");
    await waitUntil(() => broker.stats().consumed === 2, DEADLINE, "both handled");
    assert.deepEqual(billingAttempts, [1, 2]);
    assert.deepEqual(auditCalls, ["A1"], "audit ran once despite billing's retry");
    assert.throws(
      () => broker.subscribe("orders", function audit() {}),
      InvalidArgumentError,
      "a second subscription with the same name on the same channel",
    );
  });
});

Deno.test("groups: instances sharing group and name share the work; a subscription added after start starts from then", async () => {
  await withRedis("share", async ({ keyPrefix, brokers }) => {
    const seen: string[] = [];
    const shared = new Map<number, string>();
    const allShared = deferred();
    const a = new RedisBroker({ ...FAST, keyPrefix, group: "svc", consumer: "a" });
    const b = new RedisBroker({ ...FAST, keyPrefix, group: "svc", consumer: "b" });
    brokers.push(a, b);
    const twice: number[] = [];
    for (const [broker, who] of [[a, "a"], [b, "b"]] as const) {
      broker.subscribe("jobs", (n: number) => {
        // Recorded, not asserted here: a failed assertion in a handler is only retried.
        if (shared.has(n)) twice.push(n);
        shared.set(n, who);
        if (shared.size === 20) allShared.resolve();
      }, { name: "worker" });
    }
    await Promise.all([a.start(), b.start()]);
    await a.publish("before", "late-channel");
    a.subscribe("late-channel", function late(m: string) {
      seen.push(m);
    });
    await a.publish("after", "late-channel");
    for (let n = 0; n < 20; n++) await a.publish(n, "jobs");
    await wait(allShared.promise, "every job handled");
    assert.deepEqual(twice, [], "no job handled twice");
    await waitUntil(() => seen.length === 1, DEADLINE, "the late subscription got the later event");
    assert.deepEqual(seen, ["after"]);
  });
});

// --- pub/sub mode -----------------------------------------------------------------------------

Deno.test("pubsub mode: at-most-once broadcast, request/reply, NoSubscribersError", async () => {
  await withRedis("pubsub", async ({ keyPrefix, brokers }) => {
    const a = new RedisBroker({ ...FAST, keyPrefix, mode: "pubsub" });
    const b = new RedisBroker({ ...FAST, keyPrefix, mode: "pubsub" });
    brokers.push(a, b);
    const gotA: string[] = [];
    const gotB: string[] = [];
    const both = deferred();
    const check = () => gotA.length === 1 && gotB.length === 1 && both.resolve();
    a.subscribe("news", function readerA(m: string) {
      gotA.push(m);
      check();
    });
    b.subscribe("news", function readerB(m: string) {
      gotB.push(m);
      check();
    });
    b.subscribe("math", function square(n: number) {
      return n * n;
    });
    await Promise.all([a.start(), b.start()]);
    await a.publish("hello", "news");
    await wait(both.promise, "both instances got the message");
    assert.deepEqual([gotA, gotB], [["hello"], ["hello"]]);
    assert.equal(await a.request(7, "math", { timeout: DEADLINE }), 49);
    await assert.rejects(a.request(1, "nobody-listens", { timeout: DEADLINE }), NoSubscribersError);
    assert.equal(a.stats().mode, "pubsub");
  });
});

// --- request/reply over streams ------------------------------------------------------------------

Deno.test("request: reply, timeout, handler failure, no subscriber, no leaked subscriptions", async () => {
  await withRedis("request", async ({ admin, keyPrefix, brokers }) => {
    const server = new RedisBroker({ ...FAST, keyPrefix, group: "server", maxDeliveries: 1 });
    const client = new RedisBroker({ ...FAST, keyPrefix, group: "client" });
    brokers.push(server, client);
    const release = deferred();
    server.subscribe("rpc", function echo(m: { n: number }, ctx: MessageContext) {
      return { n: m.n, tenant: ctx.headers["x-tenant"] };
    });
    server.subscribe("slow", async function slow() {
      await release.promise;
    });
    server.subscribe("broken", function broken() {
      throw new Error("no such order");
    });
    await Promise.all([server.start(), client.start()]);
    try {
      for (let n = 0; n < 20; n++) {
        assert.deepEqual(
          await client.request({ n }, "rpc", {
            timeout: DEADLINE,
            headers: { "x-tenant": "acme" },
          }),
          { n, tenant: "acme" },
        );
      }
      await assert.rejects(client.request("x", "slow", { timeout: 50 }), RequestTimeoutError);
      await assert.rejects(
        client.request("x", "broken", { timeout: DEADLINE }),
        (error: unknown) =>
          error instanceof RequestFailedError && error.subscription === "broken" &&
          error.errorName === "Error" && /no such order/.test(error.message),
      );
      await assert.rejects(
        client.request("x", "unknown-channel", { timeout: DEADLINE }),
        NoSubscribersError,
      );
      const aborted = new AbortController();
      const pending = client.request("x", "slow", { timeout: DEADLINE, signal: aborted.signal });
      aborted.abort(new Error("caller gave up"));
      await assert.rejects(pending, /caller gave up/);
    } finally {
      release.resolve();
    }
    const replyChannel = replyKey(keyPrefix, client.consumer);
    const [, listeners] = await admin.pubsub("NUMSUB", replyChannel) as [string, number];
    assert.equal(Number(listeners), 1, "one reply subscription however many requests");
    assert.equal(client.stats().pendingRequests, 0);
    await client.stop();
    const [, after] = await admin.pubsub("NUMSUB", replyChannel) as [string, number];
    assert.equal(Number(after), 0, "no subscription left after stop");
  });
});

// --- publish timeouts ------------------------------------------------------------------------------

Deno.test("deadline queue: unsettled operations expire with their label, settled ones never do", async () => {
  const { DeadlineQueue } = await import("../../src/redis/deadline_queue.ts");
  const expired: string[] = [];
  const allExpired = deferred();
  const queue = new DeadlineQueue<number>(5, (value, label) => {
    expired.push(`${label}:${value}`);
    if (expired.length === 2) allExpired.resolve();
  });
  const a = queue.add(1, "a");
  queue.add(2, "b");
  const c = queue.add(3, "c");
  queue.add(4, "d");
  assert.equal(queue.size, 4);
  assert.equal(queue.settle(a), true);
  assert.equal(queue.settle(a), false, "settled twice");
  assert.equal(queue.settle(c), true);
  await wait(allExpired.promise, "b and d expire");
  assert.deepEqual(expired, ["b:2", "d:4"]);
  assert.equal(queue.size, 0);
  const e = queue.add(5, "e");
  queue.expireAll();
  assert.deepEqual(expired, ["b:2", "d:4", "e:5"]);
  assert.equal(queue.settle(e), false, "expired operations cannot settle");
});

Deno.test("publish: rejects with BrokerError (no hang) while Redis is unreachable, works again after", async () => {
  await withRedis("publish-timeout", async ({ keyPrefix, brokers }) => {
    await using proxy = new TcpProxy(6379);
    const broker = new RedisBroker({ ...FAST, url: proxy.url, keyPrefix, publishTimeout: 2_000 });
    brokers.push(broker);
    await broker.start();
    await broker.publish("before", "ledger");
    await proxy.refuse();
    await proxy.dropAll();
    const error = await wait(
      broker.publish("during", "ledger").then(() => undefined, (e: unknown) => e),
      "publish during the outage settles",
    );
    assert.ok(error instanceof BrokerError, String(error));
    assert.match(error.message, /not accepted by Redis .* within 2000 ms|failed/);
    proxy.accept();
    await waitUntil(
      () => broker.publish("after", "ledger").then(() => true, () => false),
      DEADLINE,
      "publish works once Redis is reachable again",
    );
    assert.equal(broker.stats().publishing, 0);
  });
});

Deno.test("stop: the entries already read are all handled during stop(), none left pending", async () => {
  await withRedis("stop-drain", async ({ admin, keyPrefix, brokers }) => {
    const broker = new RedisBroker({ ...FAST, keyPrefix, group: "svc" });
    brokers.push(broker);
    const started = deferred();
    const release = deferred();
    const handled: { m: string; state: string }[] = [];
    broker.subscribe("jobs", async function drain(m: string) {
      if (m === "1") {
        started.resolve();
        await release.promise;
      }
      handled.push({ m, state: broker.state });
    });
    await broker.start();
    for (const m of ["1", "2", "3", "4"]) await broker.publish(m, "jobs");
    await wait(started.promise, "the first call started");
    const stream = streamKey(keyPrefix, "jobs");
    // All four were read by this instance (pending in the group); none is handled yet.
    await waitUntil(
      async () => (await pendingCount(admin, stream, "svc:drain")) === 4,
      DEADLINE,
      "four entries read",
    );
    const stopping = broker.stop({ timeout: DEADLINE });
    assert.equal(broker.state, "stopping");
    release.resolve();
    await wait(stopping, "the stop");
    assert.deepEqual(handled, ["1", "2", "3", "4"].map((m) => ({ m, state: "stopping" })));
    assert.equal(await pendingCount(admin, stream, "svc:drain"), 0, "every one acknowledged");
    assert.equal(broker.stats().consumed, 4);
  });
});

Deno.test("stop: entries not handled when the timeout runs out stay pending and a restart handles them", async () => {
  await withRedis("stop-pending", async ({ admin, keyPrefix, brokers }) => {
    const release = deferred();
    const startedA = deferred();
    const calls: { m: string; attempt: number; aborted: boolean }[] = [];
    const allAfterRestart = deferred();
    let restarted = false;
    let restartedAt = 0;
    const broker = new RedisBroker({ ...FAST, keyPrefix, group: "svc", consumer: "only" });
    brokers.push(broker);
    broker.subscribe("jobs", async function slow(m: string, ctx: MessageContext) {
      calls.push({ m, attempt: ctx.attempt, aborted: false });
      if (m === "a" && !restarted) {
        startedA.resolve();
        await release.promise;
        calls.push({ m: "a-finished", attempt: ctx.attempt, aborted: ctx.signal.aborted });
      }
      // Attempts count handler starts: b and c never started before the stop.
      const afterRestart = new Set(calls.slice(restartedAt).map((c) => c.m));
      if (restarted && afterRestart.has("b") && afterRestart.has("c")) allAfterRestart.resolve();
    });
    await broker.start();
    for (const m of ["a", "b", "c"]) await broker.publish(m, "jobs");
    await wait(startedA.promise, "the first handler call started");
    await broker.stop({ timeout: 20 });
    release.resolve();
    const stream = streamKey(keyPrefix, "jobs");
    assert.ok((await pendingCount(admin, stream, "svc:slow")) >= 2, "b and c are still pending");
    restarted = true;
    restartedAt = calls.length;
    await broker.start();
    await wait(allAfterRestart.promise, "b and c handled after the restart");
    const again = calls.slice(restartedAt);
    assert.deepEqual(
      again.filter((c) => c.m === "b" || c.m === "c").map((c) => c.attempt),
      [1, 1],
      `never started before the stop: still their first attempt; ${JSON.stringify(calls)}`,
    );
    assert.equal(again.find((c) => c.m === "a")?.attempt, 2, "a started once before the stop");
    assert.deepEqual(
      calls.find((c) => c.m === "a-finished")?.aborted,
      true,
      "the abandoned call saw its signal abort",
    );
    await waitUntil(
      async () => (await pendingCount(admin, stream, "svc:slow")) === 0,
      DEADLINE,
      "all acked",
    );
  });
});

Deno.test("dead letters: replay of letters that fail again ends; they wait for the next replay", async () => {
  await withRedis("dlq-replay-bound", async ({ keyPrefix, brokers }) => {
    const broker = new RedisBroker({ ...FAST, keyPrefix });
    brokers.push(broker);
    broker.subscribe("orders", function strict() {
      throw new RejectMessage("never valid");
    });
    await broker.start();
    for (let i = 0; i < 20; i++) await broker.publish({ i }, "orders");
    await waitUntil(() => broker.stats().deadLettered === 20, DEADLINE, "20 dead letters");
    const moved = await wait(broker.replayDeadLetters("orders"), "replay ends");
    assert.equal(moved, 20);
    await waitUntil(() => broker.stats().deadLettered === 40, DEADLINE, "failed again");
    assert.equal((await broker.deadLetters("orders", { count: 100 })).length, 20);
  });
});

for (const mode of ["stream", "pubsub"] as const) {
  Deno.test(`stop (${mode}): publishes accepted just before stop() still reach Redis`, async () => {
    await withRedis(`stop-flush-${mode}`, async ({ admin, keyPrefix }) => {
      const listener = mode === "pubsub" ? await adminClient() : undefined;
      const heard = new Set<number>();
      if (listener) {
        await listener.subscribe(pubsubKey(keyPrefix, "ch"));
        listener.on("message", (_channel: string, text: string) => {
          const fields = JSON.parse(text) as { payload?: { i: number } };
          if (fields.payload) heard.add(fields.payload.i);
        });
      }
      const broker = new RedisBroker({ ...FAST, keyPrefix, mode });
      await broker.start();
      const publishes = Array.from({ length: 500 }, (_, i) => broker.publish({ i }, "ch"));
      await broker.stop();
      const results = await Promise.allSettled(publishes);
      assert.equal(results.filter((r) => r.status === "fulfilled").length, 500);
      if (mode === "stream") assert.equal(await admin.xlen(streamKey(keyPrefix, "ch")), 500);
      else {
        await waitUntil(() => heard.size === 500, DEADLINE, "every pub/sub message heard");
        listener!.disconnect();
      }
    });
  });

  Deno.test(`stop (${mode}): a handler that never returns holds no slot after a restart`, async () => {
    await withRedis(`stop-abandon-${mode}`, async ({ keyPrefix, brokers }) => {
      const broker = new RedisBroker({ ...FAST, keyPrefix, mode });
      brokers.push(broker);
      const stuck = deferred();
      const second = deferred();
      let stuckOnce = false;
      broker.subscribe("jobs", function work(m: string) {
        if (m === "first" && !stuckOnce) {
          stuckOnce = true;
          stuck.resolve();
          return new Promise(() => {}); // never settles
        }
        if (m === "second") second.resolve();
      });
      await broker.start();
      await broker.publish("first", "jobs");
      await wait(stuck.promise, "the stuck call started");
      await broker.stop({ timeout: 50 });
      await broker.start();
      await broker.publish("second", "jobs");
      await wait(second.promise, "the next message is handled after the restart");
    });
  });
}

Deno.test("pubsub mode: a request answered by one of two handlers resolves though the other fails", async () => {
  await withRedis("pubsub-two-handlers", async ({ keyPrefix, brokers }) => {
    const broker = new RedisBroker({ ...FAST, keyPrefix, mode: "pubsub" });
    brokers.push(broker);
    broker.subscribe("rpc", function broken() {
      throw new Error("nope");
    });
    broker.subscribe("rpc", async function double(n: number) {
      await Promise.resolve();
      return n * 2;
    });
    await broker.start();
    assert.equal(await wait(broker.request(21, "rpc", { timeout: 5_000 }), "the reply"), 42);
  });
});

Deno.test("credentials: passwords holding @ or /, and query-string passwords, are masked", () => {
  assert.equal(maskUrl("redis://app:s3cr/et@host"), "redis://app:***@host");
  assert.equal(maskUrl("redis://:p@ss@host:6379"), "redis://:***@host:6379");
  assert.equal(maskUrl("redis://host:6379?password=querysecret"), "redis://host:6379?password=***");
  assert.throws(
    () => resolveRedisOptions({ url: "redis://app:s3cr/et@host" }),
    (error: unknown) => error instanceof InvalidArgumentError && !/s3cr/.test(error.message),
  );
  const resolved = resolveRedisOptions({ url: "redis://:p@ss@host:6379" });
  assert.ok(!resolved.maskedUrl.includes("ss@"));
  assert.equal(redact("auth p@ss failed", resolved.secrets), "auth *** failed");
});

Deno.test("claim: pending entries trimmed away before anyone handled them are counted as dropped", async () => {
  await withRedis("claim-trimmed", async ({ admin, keyPrefix, brokers }) => {
    const stream = streamKey(keyPrefix, "jobs");
    const group = "svc:work";
    await admin.xgroup("CREATE", stream, group, "$", "MKSTREAM");
    for (let i = 0; i < 5; i++) await admin.xadd(stream, "*", "payload", JSON.stringify(i));
    // A consumer that died holding all five, then the stream trimmed under them.
    await admin.xreadgroup("GROUP", group, "dead", "COUNT", 10, "STREAMS", stream, ">");
    await admin.xtrim(stream, "MAXLEN", 0);
    const logger = recordingLogger();
    const broker = new RedisBroker({ ...FAST, logger, keyPrefix, group: "svc", claimIdleMs: 20 });
    brokers.push(broker);
    const drops: DropEvent[] = [];
    broker.addEventListener("drop", (event) => drops.push(event as DropEvent));
    broker.subscribe("jobs", function work() {});
    await broker.start();
    await waitUntil(() => broker.stats().dropped === 5, DEADLINE, "five trimmed entries counted");
    assert.ok(
      logger.lines.some((line) => /^5 message.* dropped: pending entries .* trimmed/.test(line)),
      logger.lines.join("\n"),
    );
    // Counted and dispatched alike: the drop events add up to the counter.
    assert.equal(drops.reduce((sum, drop) => sum + drop.count, 0), broker.stats().dropped);
    for (const drop of drops) {
      assert.equal(drop.channel, "jobs");
      assert.equal(drop.subscription, "work");
      assert.match(drop.reason, /trimmed before being handled/);
    }
  });
});

Deno.test("history: own pending entries trimmed away before a restart are counted as dropped, with drop events", async () => {
  await withRedis("history-trimmed", async ({ admin, keyPrefix, brokers }) => {
    const stream = streamKey(keyPrefix, "jobs");
    const group = "svc:work";
    await admin.xgroup("CREATE", stream, group, "$", "MKSTREAM");
    for (let i = 0; i < 3; i++) await admin.xadd(stream, "*", "payload", JSON.stringify(i));
    // This very consumer read them before it went down, then the stream was trimmed under them.
    await admin.xreadgroup("GROUP", group, "self", "COUNT", 10, "STREAMS", stream, ">");
    await admin.xtrim(stream, "MAXLEN", 0);
    // No claims: only the consumer's own history can find them.
    const broker = new RedisBroker({
      ...FAST,
      keyPrefix,
      group: "svc",
      consumer: "self",
      claimIdleMs: 60_000,
    });
    brokers.push(broker);
    const drops: DropEvent[] = [];
    broker.addEventListener("drop", (event) => drops.push(event as DropEvent));
    broker.subscribe("jobs", function work() {});
    await broker.start();
    await waitUntil(() => broker.stats().dropped === 3, DEADLINE, "three trimmed entries counted");
    assert.deepEqual(
      drops.map((drop) => [drop.channel, drop.subscription, drop.count]),
      [["jobs", "work", 3]],
    );
    assert.match(drops[0].reason, /trimmed before being handled/);
    await waitUntil(
      async () => (await pendingCount(admin, stream, group)) === 0,
      DEADLINE,
      "the trimmed entries are no longer pending",
    );
  });
});

Deno.test("reply: a result finished while the broker stops is not published; counted and dispatched as a drop", async () => {
  await withRedis("reply-drop", async ({ keyPrefix, brokers }) => {
    const broker = new RedisBroker({ ...FAST, keyPrefix });
    brokers.push(broker);
    const drops: DropEvent[] = [];
    broker.addEventListener("drop", (event) => drops.push(event as DropEvent));
    const started = deferred();
    const release = deferred();
    broker.subscribe("quotes", async function quote() {
      started.resolve();
      await release.promise;
      return 42;
    });
    await broker.start();
    await broker.publish("A1", "quotes", { replyTo: "answers" });
    await wait(started.promise, "the handler started");
    const stopping = broker.stop({ timeout: DEADLINE });
    assert.equal(broker.state, "stopping");
    release.resolve();
    await wait(stopping, "the stop after the handler finished");
    assert.equal(broker.stats().dropped, 1);
    assert.deepEqual(
      drops.map((drop) => [drop.channel, drop.subscription, drop.count]),
      [["answers", "quote", 1]],
    );
    assert.match(drops[0].reason, /not published: the broker is not started/);
  });
});

// --- outcomes beyond the contract -------------------------------------------------------------

Deno.test("consume (stream): the message in hand when the loop ends is delivered again with the same attempt", async () => {
  await withRedis("consume-release", async ({ admin, keyPrefix, brokers }) => {
    const broker = new RedisBroker({ ...FAST, keyPrefix, group: "svc" });
    brokers.push(broker);
    const stream = broker.consume<string>("jobs", { name: "reader" });
    await broker.start();
    await broker.publish("a", "jobs");
    for await (const job of stream) {
      assert.equal(job, "a");
      break; // "a" is in hand, unacknowledged
    }
    await waitUntil(() => broker.stats().subscribers === 0, DEADLINE, "unsubscribed");
    const again = deferred<{ job: string; attempt: number }>();
    broker.subscribe("jobs", function reader(job: string, ctx: MessageContext) {
      again.resolve({ job, attempt: ctx.attempt });
    });
    assert.deepEqual(await wait(again.promise, "the released message"), { job: "a", attempt: 1 });
    await waitUntil(
      async () => (await pendingCount(admin, streamKey(keyPrefix, "jobs"), "svc:reader")) === 0,
      DEADLINE,
      "acknowledged once handled",
    );
    assert.equal(broker.stats().errors, 0, "a release is not a failure");
  });
});

Deno.test("nack (stream): delivered again after its delay, then dead-lettered with a reason saying it was refused", async () => {
  await withRedis("nack-dlq", async ({ keyPrefix, brokers }) => {
    const attempts: number[] = [];
    const broker = new RedisBroker({ ...FAST, keyPrefix, maxDeliveries: 2 });
    brokers.push(broker);
    broker.subscribe("jobs", function picky(_m: string, ctx: MessageContext) {
      attempts.push(ctx.attempt);
      throw new NackMessage({ delay: 1 });
    });
    await broker.start();
    await broker.publish("x", "jobs");
    await waitUntil(() => broker.stats().deadLettered === 1, DEADLINE, "dead-lettered");
    assert.deepEqual(attempts, [1, 2]);
    const [letter] = await broker.deadLetters("jobs");
    assert.equal(letter.attempts, 2);
    assert.match(letter.error, /NackMessage/);
    assert.equal(broker.stats().errors, 0, "a nack is not a failure");
  });
});

Deno.test("pubsub mode: a failed handler call is reported once and counted as dropped, with a drop event", async () => {
  await withRedis("pubsub-drop", async ({ keyPrefix, brokers }) => {
    const failures: unknown[] = [];
    const broker = new RedisBroker({
      ...FAST,
      keyPrefix,
      mode: "pubsub",
      onError: (failure) => failures.push(failure),
    });
    brokers.push(broker);
    const drops: DropEvent[] = [];
    broker.addEventListener("drop", (event) => drops.push(event as DropEvent));
    const after = deferred();
    broker.subscribe("news", function fragile(m: string) {
      if (m === "boom") throw new Error("cannot read it");
      after.resolve();
    });
    await broker.start();
    await broker.publish("boom", "news");
    await broker.publish("fine", "news");
    await wait(after.promise, "the next message");
    assert.equal(failures.length, 1);
    assert.equal(drops.length, 1);
    assert.equal(drops[0].subscription, "fragile");
    assert.equal(drops[0].count, 1);
    const stats = broker.stats();
    assert.equal(stats.errors, 1);
    assert.equal(stats.dropped, 1);
    assert.equal(stats.retried, 0);
  });
});

Deno.test("lifecycle: transitions are statechange events; start(); stop(); start() ends started", async () => {
  await withRedis("lifecycle", async ({ keyPrefix, brokers }) => {
    const broker = new RedisBroker({ ...FAST, keyPrefix });
    brokers.push(broker);
    const states: string[] = [];
    broker.addEventListener("statechange", (event) => {
      states.push((event as StateChangeEvent).state);
    });
    await Promise.all([broker.start(), broker.stop(), broker.start()]);
    assert.equal(broker.state, "started");
    await broker.stop();
    assert.deepEqual(states, [
      "starting",
      "started",
      "stopping",
      "stopped",
      "starting",
      "started",
      "stopping",
      "stopped",
    ]);
  });
});

Deno.test("subscribe: the idempotent option is refused in pub/sub mode, not ignored", () => {
  const broker = new RedisBroker({ logger: silentLogger, mode: "pubsub" });
  assert.throws(
    () => broker.subscribe("jobs", function once() {}, { idempotent: true }),
    (error: unknown) => error instanceof InvalidArgumentError && error.argument === "idempotent",
  );
  assert.equal(broker.stats().subscribers, 0);
});

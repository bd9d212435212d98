/**
 * Redis section of the benchmark: events per second end to end (publish ->
 * handler -> acknowledgement) through `RedisBroker`, in stream and pub/sub
 * modes, next to a hand-written ioredis loop doing the same Redis work with
 * the same pipelining:
 *
 * - stream: auto-pipelined `XADD ... MAXLEN ~ 1000000 * payload <json>`, a
 *   dedicated connection reading `XREADGROUP ... COUNT 100 BLOCK`, one `XACK`
 *   per batch on another connection;
 * - pub/sub: auto-pipelined `PUBLISH`, one `SUBSCRIBE` connection.
 *
 * Both sides publish the same messages through the same sliding window of
 * in-flight publishes, on unique keys that are deleted afterwards.
 *
 * Run alone: `deno run -A bench/redis_bench.ts`.
 *
 * @module
 */

import { Redis } from "ioredis";
import { RedisBroker } from "../redis.ts";
import { silentLogger } from "../mod.ts";

/** One result line of the section. */
export interface RedisBenchRow {
  /** What was measured. */
  name: string;
  /** Events per second, end to end. */
  opsPerSec: number;
  /** Events sent. */
  events: number;
  /** Events handled (pub/sub is at-most-once: may be below `events`). */
  handled: number;
  /** Wall time in milliseconds. */
  ms: number;
  /** Broker rows: throughput divided by the hand-written loop's. */
  ratio?: number;
}

const URL = "redis://127.0.0.1:6379";
const EVENTS = 100_000;
const WARMUP_EVENTS = 10_000;
/** Publishes in flight at once, on both sides. */
const WINDOW = 1_000;
const BATCH = 100;
const BLOCK_MS = 2_000;
const DEADLINE_MS = 120_000;

function prefix(): string {
  return `bench:redis:${crypto.randomUUID().slice(0, 8)}:`;
}

/** A message like an application would send. */
function message(n: number): { n: number; orderId: string; amount: number } {
  return { n, orderId: `ORD-${n}`, amount: 12.5 };
}

/** Keeps up to `window` calls of `send` in flight until `count` were issued. */
async function publishWindowed(
  count: number,
  send: (n: number) => Promise<unknown>,
): Promise<void> {
  const inFlight = new Set<Promise<unknown>>();
  for (let n = 0; n < count; n++) {
    while (inFlight.size >= WINDOW) await Promise.race(inFlight);
    const tracked: Promise<unknown> = send(n).finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
  }
  await Promise.all(inFlight);
}

/** Counts handled events; `done` resolves at `target`, or at the deadline. */
function counter(
  target: number,
): { tick(): void; count(): number; done: Promise<void>; cancel(): void } {
  let count = 0;
  let resolve!: () => void;
  const done = new Promise<void>((r) => (resolve = r));
  const timer = setTimeout(resolve, DEADLINE_MS);
  return {
    tick() {
      if (++count === target) {
        clearTimeout(timer);
        resolve();
      }
    },
    count: () => count,
    done,
    cancel() {
      clearTimeout(timer);
      resolve();
    },
  };
}

async function deleteKeys(client: Redis, keyPrefix: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await client.scan(cursor, "MATCH", `${keyPrefix}*`, "COUNT", 1000);
    cursor = next;
    if (keys.length > 0) await client.unlink(...keys);
  } while (cursor !== "0");
}

function row(name: string, events: number, handled: number, ms: number): RedisBenchRow {
  return {
    name,
    opsPerSec: Math.round((handled / ms) * 1000),
    events,
    handled,
    ms: Math.round(ms),
  };
}

/** Hand-written stream loop: XADD / XREADGROUP COUNT 100 / one XACK per batch. */
async function handStream(events: number): Promise<RedisBenchRow> {
  const key = `${prefix()}stream`;
  const group = "bench";
  const producer = new Redis(URL, { enableAutoPipelining: true });
  const reader = new Redis(URL);
  const acker = new Redis(URL, { enableAutoPipelining: true });
  await reader.xgroup("CREATE", key, group, "$", "MKSTREAM");
  const handled = counter(events);
  let reading = true;
  let sink = 0;
  const consume = (async () => {
    while (reading) {
      const reply = await reader.xreadgroup(
        "GROUP",
        group,
        "consumer-1",
        "COUNT",
        BATCH,
        "BLOCK",
        BLOCK_MS,
        "STREAMS",
        key,
        ">",
      ) as [string, [string, string[]][]][] | null;
      if (!reply) continue;
      const entries = reply[0][1];
      const ids: string[] = [];
      for (const [id, fields] of entries) {
        const payload = JSON.parse(fields[1]) as { n: number };
        sink += payload.n; // the "handler"
        ids.push(id);
      }
      // Acknowledge the batch without holding up the next read; count it once acked.
      acker.xack(key, group, ...ids).then(() => {
        for (let i = 0; i < ids.length; i++) handled.tick();
      });
    }
  })();
  const start = performance.now();
  await publishWindowed(
    events,
    (n) => producer.xadd(key, "MAXLEN", "~", 1_000_000, "*", "payload", JSON.stringify(message(n))),
  );
  await handled.done;
  const ms = performance.now() - start;
  reading = false;
  await consume;
  await producer.unlink(key);
  producer.disconnect();
  reader.disconnect();
  acker.disconnect();
  if (sink < 0) console.log(sink);
  return row("redis stream, hand-written ioredis loop", events, handled.count(), ms);
}

/** The same through RedisBroker in stream mode. */
async function brokerStream(events: number): Promise<RedisBenchRow> {
  const keyPrefix = prefix();
  const broker = new RedisBroker({
    url: URL,
    keyPrefix,
    group: "bench",
    batchSize: BATCH,
    blockMs: BLOCK_MS,
    logger: silentLogger,
  });
  const handled = counter(events);
  let sink = 0;
  broker.subscribe("orders", (payload: { n: number }) => {
    sink += payload.n;
    handled.tick();
  }, { name: "bench" });
  await broker.start();
  const start = performance.now();
  await publishWindowed(events, (n) => broker.publish(message(n), "orders"));
  await handled.done;
  const ms = performance.now() - start;
  await broker.stop();
  const admin = new Redis(URL);
  await deleteKeys(admin, keyPrefix);
  admin.disconnect();
  if (sink < 0) console.log(sink);
  return row("redis stream, RedisBroker", events, handled.count(), ms);
}

/** Hand-written pub/sub loop: PUBLISH / SUBSCRIBE. */
async function handPubsub(events: number): Promise<RedisBenchRow> {
  const channel = `${prefix()}pubsub`;
  const publisher = new Redis(URL, { enableAutoPipelining: true });
  const subscriber = new Redis(URL);
  const handled = counter(events);
  let sink = 0;
  subscriber.on("message", (_channel: string, text: string) => {
    sink += (JSON.parse(text) as { n: number }).n;
    handled.tick();
  });
  await subscriber.subscribe(channel);
  const start = performance.now();
  await publishWindowed(events, (n) => publisher.publish(channel, JSON.stringify(message(n))));
  await handled.done;
  const ms = performance.now() - start;
  publisher.disconnect();
  subscriber.disconnect();
  if (sink < 0) console.log(sink);
  return row("redis pub/sub, hand-written ioredis loop", events, handled.count(), ms);
}

/** The same through RedisBroker in pub/sub mode. */
async function brokerPubsub(events: number): Promise<RedisBenchRow> {
  const broker = new RedisBroker({
    url: URL,
    keyPrefix: prefix(),
    mode: "pubsub",
    maxQueueSize: events,
    logger: silentLogger,
  });
  const handled = counter(events);
  let sink = 0;
  broker.subscribe("orders", (payload: { n: number }) => {
    sink += payload.n;
    handled.tick();
  }, { name: "bench" });
  await broker.start();
  const start = performance.now();
  await publishWindowed(events, (n) => broker.publish(message(n), "orders"));
  await handled.done;
  const ms = performance.now() - start;
  await broker.stop();
  if (sink < 0) console.log(sink);
  return row("redis pub/sub, RedisBroker", events, handled.count(), ms);
}

/** Runs the hand-written loop and the broker on the same work; the broker row carries the ratio. */
async function pair(
  hand: (events: number) => Promise<RedisBenchRow>,
  broker: (events: number) => Promise<RedisBenchRow>,
): Promise<RedisBenchRow[]> {
  // Warm both paths up (JIT, connections) before measuring.
  await hand(WARMUP_EVENTS);
  await broker(WARMUP_EVENTS);
  const handRow = await hand(EVENTS);
  const brokerRow = await broker(EVENTS);
  brokerRow.ratio = Math.round((brokerRow.opsPerSec / handRow.opsPerSec) * 100) / 100;
  return [handRow, brokerRow];
}

/**
 * The Redis bench section: name and a `run()` returning one row per
 * measurement.
 *
 * @example
 * ```ts
 * import { redisSection } from "./redis_bench.ts";
 * for (const r of await redisSection.run()) console.log(r.name, r.opsPerSec, r.ratio ?? "");
 * ```
 */
export const redisSection: { name: string; run(): Promise<RedisBenchRow[]> } = {
  name:
    "RedisBroker vs hand-written ioredis (local Redis, 100,000 events, publish -> handler -> ack)",
  async run(): Promise<RedisBenchRow[]> {
    return [
      ...(await pair(handStream, brokerStream)),
      ...(await pair(handPubsub, brokerPubsub)),
    ];
  },
};

if (import.meta.main) {
  console.log(redisSection.name);
  for (const r of await redisSection.run()) {
    const ratio = r.ratio === undefined ? "" : `  ${r.ratio}x hand-written`;
    console.log(
      `${r.name.padEnd(44)} ${
        String(r.opsPerSec).padStart(9)
      } events/s  (${r.handled}/${r.events} in ${r.ms} ms)${ratio}`,
    );
  }
}

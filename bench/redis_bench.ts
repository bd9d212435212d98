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

import { cpuUsage } from "node:process";
import { Redis } from "ioredis";
import { RedisBroker } from "../redis.ts";
import { CloudEvent, silentLogger } from "../mod.ts";
import { collectGarbage, envInt, median, registerSection, type Row } from "./bench_util.ts";

/** One measured round: events sent, events handled, wall time. */
interface Round {
  events: number;
  handled: number;
  ms: number;
  /** CPU time of this process (user + system) in microseconds: the client's cost, not Redis'. */
  cpuMicros: number;
}

const URL = "redis://127.0.0.1:6379";
const EVENTS = envInt("BENCH_REDIS_EVENTS", 100_000);
const ROUNDS = envInt("BENCH_REDIS_ROUNDS", 5);
const WARMUP_EVENTS = 10_000;
/** Publishes in flight at once, on both sides. */
const WINDOW = envInt("BENCH_REDIS_WINDOW", 1_000);
/** Entries per XREADGROUP (COUNT), on both sides. */
const BATCH = envInt("BENCH_REDIS_BATCH", 100);
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

function round(
  events: number,
  handled: number,
  ms: number,
  cpu: ReturnType<typeof cpuUsage>,
): Round {
  return { events, handled, ms, cpuMicros: cpu.user + cpu.system };
}

/** Hand-written stream loop: XADD / XREADGROUP COUNT <batch> / one XACK per batch. */
async function handStream(events: number): Promise<Round> {
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
  const cpuStart = cpuUsage();
  await publishWindowed(
    events,
    (n) => producer.xadd(key, "MAXLEN", "~", 1_000_000, "*", "payload", JSON.stringify(message(n))),
  );
  await handled.done;
  const ms = performance.now() - start;
  const cpu = cpuUsage(cpuStart);
  reading = false;
  await consume;
  await producer.unlink(key);
  producer.disconnect();
  reader.disconnect();
  acker.disconnect();
  if (sink < 0) console.log(sink);
  return round(events, handled.count(), ms, cpu);
}

/** The same through RedisBroker in stream mode. */
/** Publishes `events` through a broker to one handler and times it end to end. */
async function timeBroker(
  broker: RedisBroker,
  events: number,
  variant: { cloudEvents?: boolean; idempotent?: boolean } = {},
): Promise<Round> {
  const handled = counter(events);
  let sink = 0;
  broker.subscribe("orders", (payload: { n: number } | CloudEvent<{ n: number }>) => {
    sink += payload instanceof CloudEvent ? payload.data!.n : payload.n;
    handled.tick();
  }, { name: "bench", idempotent: variant.idempotent });
  await broker.start();
  const start = performance.now();
  const cpuStart = cpuUsage();
  const send = variant.cloudEvents
    ? (n: number) =>
      broker.publish(
        new CloudEvent({ type: "bench.order", source: "/bench", data: message(n) }),
        "orders",
      )
    : (n: number) => broker.publish(message(n), "orders");
  await publishWindowed(events, send);
  await handled.done;
  const ms = performance.now() - start;
  const cpu = cpuUsage(cpuStart);
  await broker.stop();
  if (sink < 0) console.log(sink);
  return round(events, handled.count(), ms, cpu);
}

async function brokerStream(
  events: number,
  variant: { cloudEvents?: boolean; idempotent?: boolean; dedupeWindow?: number } = {},
): Promise<Round> {
  const keyPrefix = prefix();
  const broker = new RedisBroker({
    url: URL,
    keyPrefix,
    group: "bench",
    batchSize: BATCH,
    blockMs: BLOCK_MS,
    dedupeWindow: variant.dedupeWindow,
    logger: silentLogger,
  });
  const result = await timeBroker(broker, events, variant);
  const admin = new Redis(URL);
  await deleteKeys(admin, keyPrefix);
  admin.disconnect();
  return result;
}

/** Hand-written pub/sub loop: PUBLISH / SUBSCRIBE. */
async function handPubsub(events: number): Promise<Round> {
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
  const cpuStart = cpuUsage();
  await publishWindowed(events, (n) => publisher.publish(channel, JSON.stringify(message(n))));
  await handled.done;
  const ms = performance.now() - start;
  const cpu = cpuUsage(cpuStart);
  publisher.disconnect();
  subscriber.disconnect();
  if (sink < 0) console.log(sink);
  return round(events, handled.count(), ms, cpu);
}

/** The same through RedisBroker in pub/sub mode. */
function brokerPubsub(events: number): Promise<Round> {
  const broker = new RedisBroker({
    url: URL,
    keyPrefix: prefix(),
    mode: "pubsub",
    maxQueueSize: events,
    logger: silentLogger,
  });
  return timeBroker(broker, events);
}

/** Stream-mode variants measured against plain stream mode, all publishing CloudEvents. */
const STREAM_VARIANTS: { label: string; run: (events: number) => Promise<Round> }[] = [
  { label: "stream, CloudEvents", run: (events) => brokerStream(events, { cloudEvents: true }) },
  {
    label: "stream, CloudEvents, dedupeWindow 60 s",
    run: (events) => brokerStream(events, { cloudEvents: true, dedupeWindow: 60_000 }),
  },
  {
    label: "stream, CloudEvents, idempotent",
    run: (events) => brokerStream(events, { cloudEvents: true, idempotent: true }),
  },
];

/**
 * Plain stream mode against its de-duplicating variants (the same
 * CloudEvents, since only they carry an identity), rounds alternating.
 */
async function compareVariants(): Promise<Row[]> {
  for (const variant of STREAM_VARIANTS) await variant.run(WARMUP_EVENTS);
  const rounds: Round[][] = STREAM_VARIANTS.map(() => []);
  for (let i = 0; i < ROUNDS; i++) {
    for (let v = 0; v < STREAM_VARIANTS.length; v++) {
      collectGarbage();
      rounds[v].push(await STREAM_VARIANTS[v].run(EVENTS));
    }
  }
  const rates = rounds.map((r) => median(r.map(perSecond)));
  const cpu = rounds.map((r) => median(r.map(cpuPerEvent)));
  return STREAM_VARIANTS.flatMap((variant, v) => [{
    subject: `RedisBroker (${variant.label})`,
    metric: "stream end-to-end",
    value: Math.round(rates[v]),
    unit: "events/s",
    note: v === 0
      ? `median of ${ROUNDS} x ${EVENTS.toLocaleString("en-US")} CloudEvents, window ${WINDOW}`
      : `${(rates[v] / rates[0]).toFixed(2)}x plain stream mode with CloudEvents`,
  }, {
    subject: `RedisBroker (${variant.label})`,
    metric: "stream client CPU per event",
    value: Math.round(cpu[v] * 100) / 100,
    unit: "µs",
    note: v === 0 ? "this process only" : `${(cpu[v] / cpu[0]).toFixed(2)}x plain stream mode`,
  }]);
}

function perSecond(r: Round): number {
  return (r.handled / r.ms) * 1000;
}

function cpuPerEvent(r: Round): number {
  return r.cpuMicros / r.handled;
}

/**
 * Runs the hand-written loop and the broker on the same work, alternating
 * rounds so both see the same machine load; reports the median of each.
 */
async function compare(
  mode: string,
  handLabel: string,
  hand: (events: number) => Promise<Round>,
  broker: (events: number) => Promise<Round>,
): Promise<Row[]> {
  // Warm both paths up (JIT, connections) before measuring.
  await hand(WARMUP_EVENTS);
  await broker(WARMUP_EVENTS);
  const handRounds: Round[] = [];
  const brokerRounds: Round[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    collectGarbage();
    handRounds.push(await hand(EVENTS));
    collectGarbage();
    brokerRounds.push(await broker(EVENTS));
  }
  const handRate = median(handRounds.map(perSecond));
  const brokerRate = median(brokerRounds.map(perSecond));
  const handCpu = median(handRounds.map(cpuPerEvent));
  const brokerCpu = median(brokerRounds.map(cpuPerEvent));
  const range = (rounds: Round[]) => {
    const rates = rounds.map(perSecond);
    return `range ${Math.round(Math.min(...rates)).toLocaleString("en-US")}-${
      Math.round(Math.max(...rates)).toLocaleString("en-US")
    }`;
  };
  const lost = (rounds: Round[]) => {
    const missing = rounds.reduce((sum, r) => sum + r.events - r.handled, 0);
    return missing > 0 ? `; ${missing} of ${rounds.length * EVENTS} events not handled` : "";
  };
  const setup = `median of ${ROUNDS} x ${EVENTS.toLocaleString("en-US")} events, window ${WINDOW}`;
  return [
    {
      subject: handLabel,
      metric: `${mode} end-to-end`,
      value: Math.round(handRate),
      unit: "events/s",
      note: `${setup}; ${range(handRounds)}${lost(handRounds)}`,
    },
    {
      subject: `RedisBroker (${mode})`,
      metric: `${mode} end-to-end`,
      value: Math.round(brokerRate),
      unit: "events/s",
      note: `${(brokerRate / handRate).toFixed(2)}x hand-written; ${range(brokerRounds)}${
        lost(brokerRounds)
      }`,
    },
    {
      subject: handLabel,
      metric: `${mode} client CPU per event`,
      value: Math.round(handCpu * 100) / 100,
      unit: "µs",
      note: "this process only (Redis excluded); steadier than wall time on a busy machine",
    },
    {
      subject: `RedisBroker (${mode})`,
      metric: `${mode} client CPU per event`,
      value: Math.round(brokerCpu * 100) / 100,
      unit: "µs",
      note: `${(brokerCpu / handCpu).toFixed(2)}x hand-written`,
    },
  ];
}

/**
 * The Redis section: RedisBroker against hand-written ioredis loops, stream
 * and pub/sub modes, on the local Redis.
 *
 * @example
 * ```ts
 * import { redisSection } from "./redis_bench.ts";
 * for (const row of await redisSection.run()) console.log(row.subject, row.value, row.note);
 * ```
 */
export const redisSection: { name: string; run(): Promise<Row[]> } = {
  name: "redis",
  async run(): Promise<Row[]> {
    return [
      ...(Deno.env.get("BENCH_REDIS_VARIANTS_ONLY") ? [] : await compare(
        "stream",
        `ioredis XADD/XREADGROUP COUNT ${BATCH}/XACK`,
        handStream,
        (events) => brokerStream(events),
      )),
      ...(await compareVariants()),
      ...(Deno.env.get("BENCH_REDIS_VARIANTS_ONLY")
        ? []
        : await compare("pubsub", "ioredis PUBLISH/SUBSCRIBE", handPubsub, brokerPubsub)),
    ];
  },
};

registerSection(redisSection);

if (import.meta.main) {
  const { printTable } = await import("./bench_util.ts");
  printTable([{ section: redisSection.name, rows: await redisSection.run() }]);
}

/**
 * In-memory section: messages per second from publish to an async handler on
 * MemoryBroker next to emittery, node:events and a bare EventTarget doing the
 * same work; MemoryBroker's publish-to-handler latency; heap before and after
 * ten million messages.
 *
 * MemoryBroker and emittery are measured as they are used: `await` on every
 * publish/emit. EventEmitter and EventTarget dispatch synchronously and
 * cannot be awaited, so their loop emits and the round ends when the last
 * handler call has run.
 *
 * @module
 */

import { EventEmitter } from "node:events";
import Emittery from "emittery";
import { MemoryBroker, silentLogger } from "../mod.ts";
import {
  envInt,
  liveHeap,
  median,
  percentile,
  registerSection,
  rounds,
  type Row,
} from "./bench_util.ts";

const MESSAGES = envInt("BENCH_MESSAGES", 1_000_000);
const ROUNDS = envInt("BENCH_ROUNDS", 5);
const LATENCY_SAMPLES = envInt("BENCH_LATENCY_SAMPLES", 100_000);
const MEMORY_MESSAGES = envInt("BENCH_MEMORY_MESSAGES", 10_000_000);

/** The work every subject's handler does: sum, count, signal the last one. */
function makeSink(total: number): {
  handler: (n: number) => Promise<void>;
  done: Promise<void>;
} {
  let count = 0;
  let sum = 0;
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  // deno-lint-ignore require-await
  const handler = async (n: number): Promise<void> => {
    sum += n;
    if (++count === total) {
      if (sum < 0) throw new Error("unreachable"); // keeps `sum` alive
      finish();
    }
  };
  return { handler, done };
}

async function memoryBrokerRound(total: number): Promise<number> {
  const broker = new MemoryBroker({ logger: silentLogger });
  const sink = makeSink(total);
  broker.subscribe("bench", sink.handler, { name: "sink" });
  await broker.start();
  const start = performance.now();
  for (let i = 0; i < total; i++) await broker.publish(i, "bench");
  await sink.done;
  const elapsed = performance.now() - start;
  await broker.stop();
  return elapsed;
}

async function emitteryRound(total: number): Promise<number> {
  const emitter = new Emittery<{ bench: number }>();
  const sink = makeSink(total);
  // emittery 2 hands listeners `{ name, data }`.
  emitter.on("bench", (event) => sink.handler(event.data));
  const start = performance.now();
  for (let i = 0; i < total; i++) await emitter.emit("bench", i);
  await sink.done;
  return performance.now() - start;
}

async function eventEmitterRound(total: number): Promise<number> {
  const emitter = new EventEmitter();
  const sink = makeSink(total);
  emitter.on("bench", sink.handler);
  const start = performance.now();
  for (let i = 0; i < total; i++) emitter.emit("bench", i);
  await sink.done;
  return performance.now() - start;
}

async function eventTargetRound(total: number): Promise<number> {
  const target = new EventTarget();
  const sink = makeSink(total);
  target.addEventListener("bench", (event) => sink.handler((event as CustomEvent<number>).detail));
  const start = performance.now();
  for (let i = 0; i < total; i++) target.dispatchEvent(new CustomEvent("bench", { detail: i }));
  await sink.done;
  return performance.now() - start;
}

async function latencies(samples: number): Promise<number[]> {
  const broker = new MemoryBroker({ logger: silentLogger });
  const results = new Float64Array(samples);
  let sentAt = 0;
  let index = 0;
  let handled!: () => void;
  // deno-lint-ignore require-await
  broker.subscribe("latency", async () => {
    results[index] = performance.now() - sentAt;
    handled();
  }, { name: "latency" });
  await broker.start();
  for (index = 0; index < samples; index++) {
    const done = new Promise<void>((resolve) => (handled = resolve));
    sentAt = performance.now();
    await broker.publish(index, "latency");
    await done;
  }
  await broker.stop();
  return Array.from(results);
}

async function heapOver(total: number): Promise<{ before: number; after: number }> {
  const broker = new MemoryBroker({ logger: silentLogger });
  const sink = makeSink(total);
  broker.subscribe("flat", sink.handler, { name: "flat" });
  await broker.start();
  // One warm-up message so the broker's own structures exist before measuring.
  await broker.publish(-1, "flat");
  const before = liveHeap();
  for (let i = 1; i < total; i++) await broker.publish(i, "flat");
  await sink.done;
  const after = liveHeap();
  await broker.stop();
  return { before, after };
}

const MB = 1024 * 1024;

registerSection({
  name: "memory",
  async run(): Promise<Row[]> {
    const subjects: [string, (n: number) => Promise<number>][] = [
      ["MemoryBroker", memoryBrokerRound],
      ["emittery", emitteryRound],
      ["node:events EventEmitter", eventEmitterRound],
      ["EventTarget", eventTargetRound],
    ];
    const rates = new Map<string, number>();
    // Interleaved rounds, so drift of the machine hits every subject alike.
    const times = new Map<string, number[]>(subjects.map(([name]) => [name, []]));
    for (const [, round] of subjects) await round(Math.min(MESSAGES, 50_000)); // warm-up
    for (let r = 0; r < ROUNDS; r++) {
      for (const [name, round] of subjects) {
        times.get(name)!.push(...await rounds(1, () => round(MESSAGES)));
      }
    }
    for (const [name] of subjects) rates.set(name, MESSAGES / (median(times.get(name)!) / 1000));
    const emittery = rates.get("emittery")!;
    const rows: Row[] = subjects.map(([name]) => ({
      subject: name,
      metric: `throughput (median of ${ROUNDS} x ${MESSAGES.toLocaleString("en-US")})`,
      value: Math.round(rates.get(name)!),
      unit: "msg/s",
      note: `${(rates.get(name)! / emittery).toFixed(2)}x emittery`,
    }));
    const lat = await latencies(LATENCY_SAMPLES);
    rows.push(
      {
        subject: "MemoryBroker",
        metric: "publish-to-handler latency p50",
        value: percentile(lat, 50) * 1000,
        unit: "µs",
      },
      {
        subject: "MemoryBroker",
        metric: "publish-to-handler latency p99",
        value: percentile(lat, 99) * 1000,
        unit: "µs",
      },
    );
    const heap = await heapOver(MEMORY_MESSAGES);
    const total = MEMORY_MESSAGES.toLocaleString("en-US");
    rows.push(
      {
        subject: "MemoryBroker",
        metric: `heap before ${total} msgs`,
        value: heap.before / MB,
        unit: "MB",
      },
      {
        subject: "MemoryBroker",
        metric: `heap after ${total} msgs`,
        value: heap.after / MB,
        unit: "MB",
        note: `growth ${((heap.after - heap.before) / 1024).toFixed(1)} KB`,
      },
    );
    return rows;
  },
});

/**
 * One pair of the OpenTelemetry section, run in a process of its own by
 * `otel_bench.ts`: the bus without middleware next to the bus with one
 * subject's middleware, in interleaved rounds. Prints the rates of both as
 * JSON on its last line.
 *
 * Rates are events per second of CPU time the process used (user and
 * system, all its threads), not of wall-clock time: on a shared machine the
 * wall clock also counts the time other processes held the cores, which
 * swamps a difference of a few percent.
 *
 * Run: deno run --allow-all --v8-flags=--expose-gc bench/otel_pair.ts <subject>
 *
 * @module
 */

import process from "node:process";
import { z } from "zod";
import { metrics, ProxyTracerProvider } from "@opentelemetry/api";
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
} from "@opentelemetry/sdk-trace";
import { MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics";
import { defineEvent, EventBus, EventScope, type Middleware, silentLogger } from "../mod.ts";
import { instrument, openTelemetry } from "../otel.ts";
import { envInt } from "./bench_util.ts";

/** What is measured next to the bare bus. */
export type OtelSubject = "pass-through" | "global" | "explicit" | "sdk";

/** The subjects, in the order the section reports them. */
export const OTEL_SUBJECTS: readonly OtelSubject[] = ["pass-through", "global", "explicit", "sdk"];

/** What a pair process prints: per-round rates in events per CPU-second. */
export interface PairResult {
  /** Events per round of the bare bus. */
  readonly events: number;
  /** Events per round of the subject. */
  readonly subjectEvents: number;
  /** The bare bus, one rate per round. */
  readonly bare: number[];
  /** The subject, one rate per round; for `sdk`, measured after every bare round. */
  readonly subject: number[];
}

// Many short rounds rather than a few long ones: the ratios are medians of
// per-round ratios, which a busy shared machine disturbs less.
const EVENTS = envInt("BENCH_OTEL_EVENTS", 250_000);
const SDK_EVENTS = Math.max(1, Math.floor(EVENTS / 25));
const ROUNDS = envInt("BENCH_OTEL_ROUNDS", 40);
const SDK_ROUNDS = 5;
const POOL = 1_000;

const OrderPlaced = defineEvent({
  type: "bench.otel.order.placed",
  scope: EventScope.PROCESS,
  source: "/bench",
  data: z.object({ orderId: z.string(), amount: z.number() }),
});

const passThrough: Middleware = {
  publish: (_call, next) => next(),
  handle: (_call, next) => next(),
};

/** A metric reader that is never collected: the SDK aggregates, nothing is exported. */
class IdleReader extends MetricReader {
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** Puts the subject's middleware on `bus`; returns what undoes it. */
function install(bus: EventBus, subject: OtelSubject | "bare"): () => void {
  switch (subject) {
    case "bare":
      return () => {};
    case "pass-through":
      bus.use(passThrough);
      return () => {};
    case "global":
      bus.use(openTelemetry());
      return () => {};
    case "explicit": {
      const telemetry = instrument(bus, {
        tracerProvider: new ProxyTracerProvider(),
        meterProvider: metrics.getMeterProvider(), // the API's no-op: nothing is registered here
      });
      return () => telemetry.close();
    }
    case "sdk": {
      // A fresh exporter per round, so finished spans do not pile up across rounds.
      const exporter = new InMemorySpanExporter();
      const tracerProvider = new TracerProvider({
        spanProcessors: [new SimpleSpanProcessor({ exporter })],
      });
      const telemetry = instrument(bus, {
        tracerProvider,
        meterProvider: new MeterProvider({ readers: [new IdleReader()] }),
      });
      return () => {
        telemetry.close();
        exporter.reset();
      };
    }
  }
}

/** Events per CPU-second over `total` events through a bus with the subject's middleware. */
async function round(
  prebuilt: readonly InstanceType<typeof OrderPlaced>[],
  total: number,
  subject: OtelSubject | "bare",
): Promise<number> {
  const bus = new EventBus({ logger: silentLogger });
  const uninstall = install(bus, subject);
  let count = 0;
  let sum = 0;
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  // deno-lint-ignore require-await
  bus.subscribe(OrderPlaced, async function settle(event) {
    sum += event.data.amount;
    if (++count === total) finish();
  });
  await bus.start();
  const start = process.cpuUsage();
  for (let i = 0; i < total; i++) await bus.publish(prebuilt[i % POOL]);
  await done;
  const used = process.cpuUsage(start);
  if (sum < 0) throw new Error("unreachable"); // keeps `sum` alive
  await bus.stop();
  uninstall();
  return total / ((used.user + used.system) / 1e6);
}

/** The bare bus and `subject` in interleaved rounds (the SDK's rounds after the bare ones). */
export async function measurePair(subject: OtelSubject): Promise<PairResult> {
  const prebuilt = Array.from(
    { length: POOL },
    (_, i) => new OrderPlaced({ data: { orderId: `O-${i}`, amount: i } }),
  );
  const subjectEvents = subject === "sdk" ? SDK_EVENTS : EVENTS;
  await round(prebuilt, Math.min(EVENTS, 50_000), "bare"); // warm-up
  await round(prebuilt, Math.min(subjectEvents, 50_000), subject);
  const bare: number[] = [];
  const measured: number[] = [];
  // The SDK leaves spans for the collector: interleaved, they would slow the next bare round.
  const interleaved = subject !== "sdk";
  for (let r = 0; r < ROUNDS; r++) {
    if (!interleaved) {
      bare.push(await round(prebuilt, EVENTS, "bare"));
    } else if (r % 2 === 0) {
      bare.push(await round(prebuilt, EVENTS, "bare"));
      measured.push(await round(prebuilt, EVENTS, subject));
    } else {
      // Every other round the subject goes first: a round pays part of the
      // collection of the previous round's garbage, so neither always follows the other.
      measured.push(await round(prebuilt, EVENTS, subject));
      bare.push(await round(prebuilt, EVENTS, "bare"));
    }
  }
  if (!interleaved) {
    for (let r = 0; r < SDK_ROUNDS; r++) measured.push(await round(prebuilt, SDK_EVENTS, subject));
  }
  return { events: EVENTS, subjectEvents, bare, subject: measured };
}

if (import.meta.main) {
  const subject = Deno.args[0] as OtelSubject;
  if (!OTEL_SUBJECTS.includes(subject)) {
    throw new Error(`usage: otel_pair.ts <${OTEL_SUBJECTS.join(" | ")}>`);
  }
  console.log(JSON.stringify(await measurePair(subject)));
}

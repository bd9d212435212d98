/**
 * OpenTelemetry section: what `instrument(bus)` costs when no SDK is
 * registered (the API's no-op providers, the state of a service that ships the
 * instrumentation but does not export telemetry), next to the same bus
 * without it, in the same run.
 *
 * A bus with any middleware leaves its no-middleware fast path, so a third
 * subject, a middleware that only calls `next()`, separates the cost of the
 * middleware chain from the cost of the instrumentation itself. A last
 * subject runs the instrumentation on a real SDK that records every span and
 * metric (exporting nothing), for the cost of tracing when it is on.
 *
 * @module
 */

import { z } from "zod";
import { TracerProvider } from "@opentelemetry/sdk-trace";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { defineEvent, EventBus, EventScope, type Middleware, silentLogger } from "../mod.ts";
import { instrument } from "../otel.ts";
import { envInt, median, registerSection, rounds, type Row } from "./bench_util.ts";

const EVENTS = envInt("BENCH_OTEL_EVENTS", 1_000_000);
const SDK_EVENTS = Math.max(1, Math.floor(EVENTS / 10));
const ROUNDS = envInt("BENCH_ROUNDS", 5);
const POOL = 1_000;

const OrderPlaced = defineEvent({
  type: "bench.otel.order.placed",
  scope: EventScope.PROCESS,
  source: "/bench",
  data: z.object({ orderId: z.string(), amount: z.number() }),
});
// Built when the section runs, not at import: events of a second class built
// before the construction section would make its measured paths polymorphic.
let prebuilt: InstanceType<typeof OrderPlaced>[] = [];

type Subject = "bare" | "pass-through" | "otel" | "sdk";

const passThrough: Middleware = {
  publish: (_call, next) => next(),
  handle: (_call, next) => next(),
};

async function round(total: number, subject: Subject): Promise<number> {
  const bus = new EventBus({ logger: silentLogger });
  if (subject === "pass-through") bus.use(passThrough);
  const telemetry = subject === "otel"
    ? instrument(bus)
    : subject === "sdk"
    ? instrument(bus, { tracerProvider: new TracerProvider(), meterProvider: new MeterProvider() })
    : undefined;
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
  const start = performance.now();
  for (let i = 0; i < total; i++) await bus.publish(prebuilt[i % POOL]);
  await done;
  const elapsed = performance.now() - start;
  if (sum < 0) throw new Error("unreachable"); // keeps `sum` alive
  await bus.stop();
  telemetry?.close();
  return elapsed;
}

registerSection({
  name: "otel",
  async run(): Promise<Row[]> {
    prebuilt = Array.from(
      { length: POOL },
      (_, i) => new OrderPlaced({ data: { orderId: `O-${i}`, amount: i } }),
    );
    const subjects: Subject[] = ["bare", "pass-through", "otel"];
    for (const subject of subjects) await round(Math.min(EVENTS, 50_000), subject); // warm-up
    await round(Math.min(SDK_EVENTS, 20_000), "sdk");
    const times: Record<Subject, number[]> = { bare: [], "pass-through": [], otel: [], sdk: [] };
    // Interleaved rounds, so drift of the machine hits every subject alike.
    for (let r = 0; r < ROUNDS; r++) {
      for (const subject of subjects) {
        times[subject].push(...await rounds(1, () => round(EVENTS, subject)));
      }
      times.sdk.push(...await rounds(1, () => round(SDK_EVENTS, "sdk")));
    }
    const rate = (subject: Subject) =>
      (subject === "sdk" ? SDK_EVENTS : EVENTS) / (median(times[subject]) / 1000);
    const bare = rate("bare");
    const metric = `typed events, prebuilt, PROCESS (median of ${ROUNDS} x ${
      EVENTS.toLocaleString("en-US")
    })`;
    const slower = (value: number) => `${((1 - value / bare) * 100).toFixed(1)}% slower than bare`;
    return [
      { subject: "EventBus, no middleware", metric, value: Math.round(bare), unit: "events/s" },
      {
        subject: "EventBus + middleware calling next()",
        metric,
        value: Math.round(rate("pass-through")),
        unit: "events/s",
        note: slower(rate("pass-through")),
      },
      {
        subject: "EventBus + instrument(bus), no-op providers",
        metric,
        value: Math.round(rate("otel")),
        unit: "events/s",
        note: `${slower(rate("otel"))} (no SDK: nothing is installed on the bus)`,
      },
      {
        subject: "EventBus + instrument(bus), SDK recording every span",
        metric: `typed events, prebuilt, PROCESS (median of ${ROUNDS} x ${
          SDK_EVENTS.toLocaleString("en-US")
        })`,
        value: Math.round(rate("sdk")),
        unit: "events/s",
        note: "two spans, two counters and two histograms per event; nothing exported",
      },
    ];
  },
});

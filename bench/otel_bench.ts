/**
 * OpenTelemetry section: what the OpenTelemetry middleware costs when nothing
 * records (the state of a service that ships the instrumentation but exports
 * no telemetry), next to the same bus without it, in the same run:
 *
 * - `bus.use(openTelemetry())` with no SDK registered: the API's global
 *   providers, which an SDK registered later would turn on;
 * - `instrument(bus, ...)` with explicit no-op providers of the API: a
 *   `ProxyTracerProvider` with no SDK behind it and the API's no-op meter
 *   provider.
 *
 * A middleware that only calls `next()` shows what any middleware step costs,
 * and a last subject runs the instrumentation on a real SDK (spans to an
 * in-memory exporter, metrics to a reader), for the cost of telemetry when it
 * is on.
 *
 * Each subject runs in a process of its own next to the bare bus
 * (`otel_pair.ts`), as a service runs one configuration: measured in one
 * process, the subjects teach the JIT each other's shapes and the middleware
 * checks lose their inlining. A ratio is the median of the per-round ratios
 * of its process; the bare row is the median over every process.
 *
 * @module
 */

import { median, registerSection, type Row } from "./bench_util.ts";
import { OTEL_SUBJECTS, type OtelSubject, type PairResult } from "./otel_pair.ts";

const LABELS: Record<OtelSubject, string> = {
  "pass-through": "EventBus + middleware calling next()",
  global: "EventBus + bus.use(openTelemetry()), no SDK registered",
  explicit: "EventBus + instrument(bus), explicit no-op providers",
  sdk: "EventBus + instrument(bus), SDK recording every span",
};

const NOTES: Record<OtelSubject, string> = {
  "pass-through": "the cost of one middleware step on publish and on handle",
  global: "skipped per call while no SDK is behind the global providers",
  explicit: "new ProxyTracerProvider() and the API's no-op meter provider",
  sdk: "two spans to an in-memory exporter, two counters and two histograms per event",
};

/** Runs `otel_pair.ts` for one subject in a child process and reads its result. */
async function runPair(subject: OtelSubject): Promise<PairResult> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      "--v8-flags=--expose-gc",
      new URL("./otel_pair.ts", import.meta.url).pathname,
      subject,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!output.success) throw new Error(`otel pair ${subject} failed`);
  const lines = new TextDecoder().decode(output.stdout).trim().split("\n");
  return JSON.parse(lines[lines.length - 1]) as PairResult;
}

function metric(rounds: number, events: number): string {
  return `typed events, prebuilt, PROCESS (median of ${rounds} x ${
    events.toLocaleString("en-US")
  })`;
}

registerSection({
  name: "otel",
  async run(): Promise<Row[]> {
    const pairs = new Map<OtelSubject, PairResult>();
    for (const subject of OTEL_SUBJECTS) pairs.set(subject, await runPair(subject));
    const allBare = [...pairs.values()].flatMap((pair) => pair.bare);
    const first = pairs.get(OTEL_SUBJECTS[0])!;
    const rows: Row[] = [{
      subject: "EventBus, no middleware",
      metric: metric(allBare.length, first.events),
      value: Math.round(median(allBare)),
      unit: "events/CPU-s",
      note:
        "median over the four processes below; each ratio is to the bare bus of its own process",
    }];
    for (const subject of OTEL_SUBJECTS) {
      const pair = pairs.get(subject)!;
      const interleaved = pair.subject.length === pair.bare.length;
      const ratio = interleaved
        ? median(pair.subject.map((rate, r) => rate / pair.bare[r]))
        : median(pair.subject) / median(pair.bare);
      const ownBare = `bare in its process: ${(median(pair.bare) / 1e6).toFixed(2)} M`;
      const versus = interleaved
        ? `${ratio.toFixed(3)}x bare (${((1 - ratio) * 100).toFixed(1)}% slower; ${ownBare})`
        : `${ratio.toFixed(4)}x bare (${ownBare})`;
      rows.push({
        subject: LABELS[subject],
        metric: metric(pair.subject.length, pair.subjectEvents),
        value: Math.round(median(pair.subject)),
        unit: "events/CPU-s",
        note: `${versus}; ${NOTES[subject]}`,
      });
    }
    return rows;
  },
});

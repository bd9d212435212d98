/**
 * OpenTelemetry: `instrument(bus)` traces every publish and handler call and
 * measures them, on whatever SDK the application registered. Here the SDK
 * keeps spans and metrics in memory, and the example prints the trace as a
 * tree and the metrics it counted.
 *
 * The trace context travels inside the event (the CloudEvents `traceparent`
 * extension), so the same tree appears when the handler runs in another
 * service behind Redis or HTTP.
 *
 * Run: deno run -A examples/20_opentelemetry.ts
 *
 * @module
 */
import { z } from "zod";
import { context, metrics, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import {
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
  TracerProvider,
} from "@opentelemetry/sdk-trace";
import { MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics";
import { defineEvent, EventBus } from "../mod.ts";
import { instrument } from "../otel.ts";

// The application's SDK setup, done once at startup (an exporter to your
// collector in real life; memory here, to print what was recorded).
const spans = new InMemorySpanExporter();
const tracerProvider = new TracerProvider({
  spanProcessors: [new SimpleSpanProcessor({ exporter: spans })],
});
class OnDemandReader extends MetricReader {
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}
const reader = new OnDemandReader();
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
trace.setGlobalTracerProvider(tracerProvider);
metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));

const OrderPlaced = defineEvent({
  type: "order.placed",
  source: "/shop",
  data: z.object({ orderId: z.string(), items: z.number().int() }),
});

console.log("=== OpenTelemetry ===");

const bus = new EventBus();
const telemetry = instrument(bus); // the global providers registered above
bus.subscribe(OrderPlaced, function reserveStock(event) {
  console.log(`reserving ${event.data.items} items for ${event.data.orderId}`);
  console.log(`  event traceparent: ${event.extensions.traceparent}`);
});
await bus.start();

// Some unit of work of the application publishes an event.
const tracer = trace.getTracer("shop");
await tracer.startActiveSpan("checkout", async (span) => {
  await bus.publish(new OrderPlaced({ data: { orderId: "A1", items: 3 } }));
  span.end();
});

await bus.stop(); // lets the handler finish
const { resourceMetrics } = await reader.collect();
telemetry.close();
await tracerProvider.forceFlush();

console.log("\ntrace:");
printTree(spans.getFinishedSpans());

console.log("\nmetrics:");
for (const scope of resourceMetrics.scopeMetrics) {
  for (const metric of scope.metrics) {
    for (const point of metric.dataPoints) {
      const where = point.attributes["messaging.destination.name"] ??
        point.attributes["messaging.eventbus.scope"];
      const value = typeof point.value === "number" ? point.value : `${point.value.count} recorded`;
      console.log(`${metric.descriptor.name} (${where}): ${value}`);
    }
  }
}

/** Prints spans as a tree, each under its parent, in start order. */
function printTree(all: ReadableSpan[]): void {
  const ids = new Set(all.map((span) => span.spanContext().spanId));
  const children = new Map<string | undefined, ReadableSpan[]>();
  for (const span of all) {
    const parent = span.parentSpanContext?.spanId;
    const key = parent !== undefined && ids.has(parent) ? parent : undefined;
    children.set(key, [...(children.get(key) ?? []), span]);
  }
  const visit = (parent: string | undefined, depth: number): void => {
    const level = (children.get(parent) ?? []).sort((a, b) =>
      a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1]
    );
    for (const span of level) {
      const subscription = span.attributes["messaging.consumer.group.name"];
      const detail = subscription === undefined
        ? ""
        : ` (${subscription}, attempt ${
          span.attributes["messaging.eventbus.message.delivery_attempt"]
        })`;
      console.log(`${"  ".repeat(depth)}${span.name}${detail}`);
      visit(span.spanContext().spanId, depth + 1);
    }
  };
  visit(undefined, 0);
}

/**
 * OpenTelemetry instrumentation: spans after the messaging conventions, the
 * trace context carried across Redis in the CloudEvents `traceparent`
 * extension, one span per delivery attempt, the messaging metrics and the
 * broker gauges. Every test builds its own SDK providers with in-memory
 * exporters; none registers anything globally except where a test says so
 * and undoes it.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import {
  context,
  ProxyTracerProvider,
  ROOT_CONTEXT,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
} from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import {
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
  TracerProvider,
} from "@opentelemetry/sdk-trace";
import {
  type DataPoint,
  type Histogram,
  MeterProvider,
  MetricReader,
} from "@opentelemetry/sdk-metrics";
import {
  AckMessage,
  CloudEvent,
  defineEvent,
  EventBus,
  EventBusError,
  EventScope,
  type HandlerFailure,
  InvalidArgumentError,
  MemoryBroker,
  NackMessage,
  RejectMessage,
  ScopedEvent,
  silentLogger,
} from "../mod.ts";
import { RedisBroker } from "../redis.ts";
import { instrument, openTelemetry } from "../otel.ts";
import { extractSpanContext, traceContextExtensions } from "../src/otel/trace_context.ts";
import { countdown, deferred, withDeadline } from "./_deferred.ts";
import { runExample } from "./_run_example.ts";
import {
  adminClient,
  deleteKeys,
  SHARED_REDIS_URL,
  uniquePrefix,
  waitUntil,
} from "./redis/_fault_util.ts";

const DEADLINE = 10_000;

const OrderPlaced = defineEvent({
  type: "test.otel.order.placed",
  source: "/shop",
  data: z.object({ orderId: z.string(), amount: z.number() }),
});

const CacheCleared = defineEvent({
  type: "test.otel.cache.cleared",
  scope: EventScope.PROCESS,
  source: "/cache",
  data: z.object({ key: z.string() }),
});

/** A tracer provider writing finished spans to memory. */
function tracing(): { provider: TracerProvider; spans(): Promise<ReadableSpan[]> } {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  return {
    provider,
    async spans() {
      await provider.forceFlush();
      return exporter.getFinishedSpans();
    },
  };
}

/** A metric reader collected on demand: no export interval to wait for. */
class OnDemandReader extends MetricReader {
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

type Points = Map<string, DataPoint<number | Histogram>[]>;

/** A meter provider and a way to read what it has measured so far, by metric name. */
function metering(): { provider: MeterProvider; collect(): Promise<Points> } {
  const reader = new OnDemandReader();
  const provider = new MeterProvider({ readers: [reader] });
  return {
    provider,
    async collect() {
      const { resourceMetrics, errors } = await reader.collect();
      assert.deepEqual(errors, []);
      const points: Points = new Map();
      for (const scope of resourceMetrics.scopeMetrics) {
        for (const metric of scope.metrics) {
          points.set(metric.descriptor.name, metric.dataPoints as DataPoint<number | Histogram>[]);
        }
      }
      return points;
    },
  };
}

/** The value of the one data point of `name` whose attributes include `match`. */
function pointValue(
  points: Points,
  name: string,
  match: Record<string, string>,
): number | Histogram | undefined {
  const found = (points.get(name) ?? []).filter((point) =>
    Object.entries(match).every(([key, value]) => point.attributes[key] === value)
  );
  assert.ok(found.length <= 1, `${name}: ${found.length} points match ${JSON.stringify(match)}`);
  return found[0]?.value;
}

function only(spans: ReadableSpan[], name: string): ReadableSpan {
  const found = spans.filter((span) => span.name === name);
  assert.equal(found.length, 1, `one span "${name}" in ${spans.map((s) => s.name).join(", ")}`);
  return found[0];
}

function parentOf(span: ReadableSpan): SpanContext | undefined {
  return span.parentSpanContext;
}

Deno.test("otel: the consumer span in another bus is the child of the producer span, across Redis", async () => {
  const keyPrefix = uniquePrefix("otel");
  const admin = await adminClient();
  const producerSide = tracing();
  const consumerSide = tracing();
  const publisher = new EventBus({
    app: new RedisBroker({
      url: SHARED_REDIS_URL,
      keyPrefix,
      group: "checkout",
      logger: silentLogger,
    }),
    logger: silentLogger,
  }).use(openTelemetry({ tracerProvider: producerSide.provider }));
  const consumer = new EventBus({
    app: new RedisBroker({
      url: SHARED_REDIS_URL,
      keyPrefix,
      group: "shipping",
      logger: silentLogger,
    }),
    logger: silentLogger,
  }).use(openTelemetry({ tracerProvider: consumerSide.provider }));
  try {
    const received = deferred<InstanceType<typeof OrderPlaced>>();
    consumer.subscribe(OrderPlaced, function ship(event) {
      received.resolve(event);
    });
    await consumer.start();
    await publisher.start();
    const sent = new OrderPlaced({ subject: "A1", data: { orderId: "A1", amount: 12.5 } });
    await publisher.publish(sent);
    const event = await withDeadline(received.promise, DEADLINE, "the event in the other bus");

    const producer = only(await producerSide.spans(), "send events.test.otel.order.placed");
    const processed = only(await consumerSide.spans(), "process events.test.otel.order.placed");
    assert.equal(producer.kind, SpanKind.PRODUCER);
    assert.equal(processed.kind, SpanKind.CONSUMER);
    assert.equal(processed.spanContext().traceId, producer.spanContext().traceId);
    assert.equal(parentOf(processed)?.spanId, producer.spanContext().spanId);
    assert.equal(parentOf(processed)?.isRemote, true);
    assert.deepEqual(processed.links.map((link) => link.context.spanId), [
      producer.spanContext().spanId,
    ]);

    // The event crossed Redis typed, with the trace context as its extension and nothing else changed.
    assert.ok(event instanceof OrderPlaced);
    assert.equal(
      event.extensions.traceparent,
      `00-${producer.spanContext().traceId}-${producer.spanContext().spanId}-01`,
    );
    const { traceparent: _, ...rest } = event.toJSON();
    assert.deepEqual(rest, sent.toJSON());

    assert.deepEqual(producer.attributes, {
      "messaging.system": "eventbus",
      "messaging.operation.type": "send",
      "messaging.operation.name": "send",
      "messaging.destination.name": "events.test.otel.order.placed",
      "messaging.eventbus.scope": "app",
      "messaging.message.id": sent.id,
      "cloudevents.event_id": sent.id,
      "cloudevents.event_source": "/shop",
      "cloudevents.event_spec_version": "1.0",
      "cloudevents.event_type": "test.otel.order.placed",
      "cloudevents.event_subject": "A1",
    });
    assert.deepEqual(processed.attributes, {
      "messaging.system": "eventbus",
      "messaging.operation.type": "process",
      "messaging.operation.name": "process",
      "messaging.destination.name": "events.test.otel.order.placed",
      "messaging.eventbus.scope": "app",
      "messaging.consumer.group.name": "ship",
      "messaging.message.id": sent.id,
      "messaging.eventbus.message.delivery_attempt": 1,
      "messaging.eventbus.outcome": "ack",
      "cloudevents.event_id": sent.id,
      "cloudevents.event_source": "/shop",
      "cloudevents.event_spec_version": "1.0",
      "cloudevents.event_type": "test.otel.order.placed",
      "cloudevents.event_subject": "A1",
    });
    assert.equal(processed.status.code, SpanStatusCode.UNSET);
  } finally {
    await Promise.allSettled([publisher.stop(), consumer.stop()]);
    await deleteKeys(admin, keyPrefix);
    admin.disconnect();
  }
});

Deno.test("otel: a failing handler on Redis gets one ERROR span per attempt, then the gauges show the dead letter", async () => {
  const keyPrefix = uniquePrefix("otel");
  const admin = await adminClient();
  const traces = tracing();
  const meters = metering();
  const failures = countdown(3);
  const app = new RedisBroker({
    url: SHARED_REDIS_URL,
    keyPrefix,
    group: "billing",
    maxDeliveries: 3,
    retryBackoff: { initial: 1 },
    logger: silentLogger,
    onError: (_failure: HandlerFailure) => failures.hit(),
  });
  const bus = new EventBus({ app, logger: silentLogger });
  using _telemetry = instrument(bus, {
    tracerProvider: traces.provider,
    meterProvider: meters.provider,
  });
  try {
    bus.subscribe(OrderPlaced, function charge(_event) {
      throw new RangeError("card declined");
    });
    await bus.start();
    const sent = new OrderPlaced({ data: { orderId: "B2", amount: 99 } });
    await bus.publish(sent);
    await withDeadline(failures.reached, DEADLINE, "three failed attempts");
    await waitUntil(() => app.stats().deadLettered === 1, DEADLINE, "the dead letter");

    const spans = await traces.spans();
    const producer = only(spans, "send events.test.otel.order.placed");
    const attempts = spans.filter((span) => span.name === "process events.test.otel.order.placed")
      .sort((a, b) =>
        Number(a.attributes["messaging.eventbus.message.delivery_attempt"]) -
        Number(b.attributes["messaging.eventbus.message.delivery_attempt"])
      );
    assert.deepEqual(
      attempts.map((span) => span.attributes["messaging.eventbus.message.delivery_attempt"]),
      [1, 2, 3],
    );
    for (const span of attempts) {
      assert.equal(parentOf(span)?.spanId, producer.spanContext().spanId);
      assert.deepEqual(span.status, { code: SpanStatusCode.ERROR, message: "card declined" });
      assert.equal(span.attributes["error.type"], "RangeError");
      assert.equal(span.attributes["messaging.eventbus.outcome"], "error");
      const [exception] = span.events;
      assert.equal(exception.name, "exception");
      assert.equal(exception.attributes?.["exception.type"], "RangeError");
      assert.equal(exception.attributes?.["exception.message"], "card declined");
    }
    assert.equal(new Set(attempts.map((span) => span.spanContext().spanId)).size, 3);

    const points = await meters.collect();
    const consumed = {
      "messaging.destination.name": "events.test.otel.order.placed",
      "messaging.consumer.group.name": "charge",
    };
    assert.equal(
      pointValue(points, "messaging.client.consumed.messages", {
        ...consumed,
        "error.type": "RangeError",
      }),
      3,
    );
    const app_ = { "messaging.eventbus.scope": "app" };
    assert.equal(pointValue(points, "messaging.eventbus.broker.dead_lettered", app_), 1);
    assert.equal(pointValue(points, "messaging.eventbus.broker.retried", app_), 2);
    assert.equal(pointValue(points, "messaging.eventbus.broker.queued", app_), 0);
    assert.equal(pointValue(points, "messaging.eventbus.broker.dropped", app_), 0);
    // The in-memory process broker has no dead letters to report.
    const process_ = { "messaging.eventbus.scope": "process" };
    assert.equal(
      pointValue(points, "messaging.eventbus.broker.dead_lettered", process_),
      undefined,
    );
    assert.equal(pointValue(points, "messaging.eventbus.broker.dropped", process_), 0);
  } finally {
    await bus.stop();
    await deleteKeys(admin, keyPrefix);
    admin.disconnect();
  }
});

Deno.test("otel: metrics count what was published and handled; gauges report the broker's stats", async () => {
  const traces = tracing();
  const meters = metering();
  const bus = new EventBus({ logger: silentLogger });
  using _telemetry = instrument(bus, {
    tracerProvider: traces.provider,
    meterProvider: meters.provider,
  });
  const handled = countdown(5);
  const blocked = deferred();
  const running = deferred();
  bus.subscribe(OrderPlaced, function book(event) {
    handled.hit();
    if (event.data.orderId === "bad") throw new TypeError("bad order");
  });
  bus.subscribe(CacheCleared, async function clear(event) {
    if (event.data.key === "first") {
      running.resolve();
      await blocked.promise;
    }
  });
  await bus.start();
  try {
    for (const orderId of ["1", "2", "bad", "4", "5"]) {
      await bus.publish(new OrderPlaced({ data: { orderId, amount: 1 } }));
    }
    await withDeadline(handled.reached, DEADLINE, "five handler calls");
    // One call runs and blocks; the two after it wait in the queue.
    for (const key of ["first", "second", "third"]) {
      await bus.publish(new CacheCleared({ data: { key } }));
    }
    await withDeadline(running.promise, DEADLINE, "the blocking handler");

    const points = await meters.collect();
    const orders = { "messaging.destination.name": "events.test.otel.order.placed" };
    const sent = pointValue(points, "messaging.client.sent.messages", orders);
    assert.equal(sent, 5);
    const sendDuration = pointValue(points, "messaging.client.operation.duration", orders);
    assert.equal((sendDuration as Histogram).count, 5);
    const ok = { ...orders, "messaging.consumer.group.name": "book" };
    const consumedPoints = (points.get("messaging.client.consumed.messages") ?? []).filter((p) =>
      p.attributes["messaging.consumer.group.name"] === "book"
    );
    assert.deepEqual(
      consumedPoints.map((p) => `${p.attributes["error.type"] ?? "ok"}: ${p.value}`).sort(),
      ["TypeError: 1", "ok: 4"],
    );
    const processed = (points.get("messaging.process.duration") ?? []).filter((p) =>
      p.attributes["messaging.consumer.group.name"] === ok["messaging.consumer.group.name"]
    );
    assert.equal(processed.reduce((n, p) => n + (p.value as Histogram).count, 0), 5);
    assert.equal(
      pointValue(points, "messaging.client.sent.messages", {
        "messaging.destination.name": "events.test.otel.cache.cleared",
        "messaging.eventbus.scope": "process",
      }),
      3,
    );
    const process_ = { "messaging.eventbus.scope": "process" };
    assert.equal(pointValue(points, "messaging.eventbus.broker.queued", process_), 2);
    assert.equal(
      pointValue(points, "messaging.eventbus.broker.queued", { "messaging.eventbus.scope": "app" }),
      0,
    );
    assert.equal(pointValue(points, "messaging.eventbus.broker.pending_requests", process_), 0);
    assert.equal(pointValue(points, "messaging.eventbus.broker.dropped", process_), 0);

    const failed = (await traces.spans()).filter((span) =>
      span.status.code === SpanStatusCode.ERROR
    );
    assert.deepEqual(failed.map((span) => span.name), ["process events.test.otel.order.placed"]);
  } finally {
    blocked.resolve();
    await bus.stop();
  }
});

Deno.test("otel: explicit outcomes: ack is a success, nack asks again without a fault, reject is an error", async () => {
  const traces = tracing();
  const meters = metering();
  const process = new MemoryBroker({
    logger: silentLogger,
    maxDeliveries: 2,
    retryBackoff: { initial: 1 },
  });
  const bus = new EventBus({ process, logger: silentLogger });
  using _telemetry = instrument(bus, {
    tracerProvider: traces.provider,
    meterProvider: meters.provider,
  });
  bus.subscribe(CacheCleared, function clear(event, context) {
    if (event.data.key === "ack") throw new AckMessage();
    if (event.data.key === "nack" && context.attempt === 1) throw new NackMessage({ delay: 0 });
    if (event.data.key === "reject") throw new RejectMessage("never");
  });
  await bus.start();
  try {
    for (const key of ["ack", "nack", "reject"]) {
      await bus.publish(new CacheCleared({ subject: key, data: { key } }));
    }
    await withDeadline(process.idle(), DEADLINE, "every delivery");
    const calls = (await traces.spans())
      .filter((span) => span.kind === SpanKind.CONSUMER)
      .map((span) =>
        [
          span.attributes["cloudevents.event_subject"],
          span.attributes["messaging.eventbus.message.delivery_attempt"],
          span.attributes["messaging.eventbus.outcome"],
          span.status.code,
          span.attributes["error.type"],
          span.events.length,
        ].join(" ")
      )
      .sort();
    assert.deepEqual(calls, [
      `ack 1 ack ${SpanStatusCode.UNSET}  0`,
      `nack 1 nack ${SpanStatusCode.UNSET} NackMessage 0`,
      `nack 2 ack ${SpanStatusCode.UNSET}  0`,
      `reject 1 reject ${SpanStatusCode.ERROR} RejectMessage 1`,
    ]);
    const consumed = ((await meters.collect()).get("messaging.client.consumed.messages") ?? [])
      .map((point) => `${point.attributes["error.type"] ?? "ok"}: ${point.value}`).sort();
    assert.deepEqual(consumed, ["NackMessage: 1", "RejectMessage: 1", "ok: 2"]);
  } finally {
    await bus.stop();
  }
});

Deno.test("otel: a shared broker is observed once, as scope shared", async () => {
  const meters = metering();
  const broker = new MemoryBroker({ logger: silentLogger });
  const bus = new EventBus({ process: broker, app: broker, logger: silentLogger });
  using _telemetry = instrument(bus, { meterProvider: meters.provider });
  const points = await meters.collect();
  assert.deepEqual(
    (points.get("messaging.eventbus.broker.queued") ?? []).map((p) => p.attributes),
    [{ "messaging.system": "eventbus", "messaging.eventbus.scope": "shared" }],
  );
});

Deno.test("otel: a request is a send span; the handler's span is its child and the reply comes back", async () => {
  const traces = tracing();
  const bus = new EventBus({ logger: silentLogger }).use(
    openTelemetry({ tracerProvider: traces.provider }),
  );
  bus.subscribe(CacheCleared, function clear(event) {
    return `cleared ${event.data.key}`;
  });
  await bus.start();
  try {
    assert.equal(await bus.request(new CacheCleared({ data: { key: "k" } })), "cleared k");
    const spans = await traces.spans();
    const send = only(spans, "send events.test.otel.cache.cleared");
    const processed = only(spans, "process events.test.otel.cache.cleared");
    assert.equal(parentOf(processed)?.spanId, send.spanContext().spanId);
    assert.equal(send.attributes["messaging.eventbus.scope"], "process");
    assert.equal(typeof processed.attributes["messaging.message.conversation_id"], "string");
  } finally {
    await bus.stop();
  }
});

Deno.test("otel: the send span is the child of the active span, and the handler's own spans are children of its span", async () => {
  const traces = tracing();
  const tracer = traces.provider.getTracer("test");
  // Parent/child inside a process needs a context manager; this test sets one and removes it.
  const manager = new AsyncLocalStorageContextManager().enable();
  assert.ok(context.setGlobalContextManager(manager));
  const bus = new EventBus({ logger: silentLogger }).use(
    openTelemetry({ tracerProvider: traces.provider }),
  );
  const done = deferred();
  bus.subscribe(CacheCleared, function clear() {
    tracer.startSpan("inside the handler").end();
    done.resolve();
  });
  await bus.start();
  try {
    await tracer.startActiveSpan("checkout", async (root) => {
      await bus.publish(new CacheCleared({ data: { key: "k" } }));
      root.end();
    });
    await withDeadline(done.promise, DEADLINE, "the handler");
    const spans = await traces.spans();
    const root = only(spans, "checkout");
    const send = only(spans, "send events.test.otel.cache.cleared");
    const processed = only(spans, "process events.test.otel.cache.cleared");
    const inner = only(spans, "inside the handler");
    assert.equal(parentOf(send)?.spanId, root.spanContext().spanId);
    assert.equal(parentOf(processed)?.spanId, send.spanContext().spanId);
    assert.equal(parentOf(inner)?.spanId, processed.spanContext().spanId);
    assert.equal(new Set(spans.map((span) => span.spanContext().traceId)).size, 1);
  } finally {
    await bus.stop();
    context.disable();
  }
});

Deno.test("otel: an event that already carries a traceparent keeps it; the send span links to it", async () => {
  const traces = tracing();
  const bus = new EventBus({ logger: silentLogger }).use(
    openTelemetry({ tracerProvider: traces.provider }),
  );
  const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  const received = deferred<CloudEvent>();
  bus.subscribe("test.otel.forwarded", function forward(event) {
    received.resolve(event);
  });
  await bus.start();
  try {
    const sent = new CloudEvent({
      type: "test.otel.forwarded",
      source: "/upstream",
      extensions: { traceparent, tracestate: "vendor=1" },
    });
    await bus.publish(sent);
    const event = await withDeadline(received.promise, DEADLINE, "the event");
    assert.equal(event, sent);
    const spans = await traces.spans();
    const send = only(spans, "send events.test.otel.forwarded");
    const processed = only(spans, "process events.test.otel.forwarded");
    assert.deepEqual(send.links.map((link) => link.context.spanId), ["b7ad6b7169203331"]);
    assert.equal(parentOf(processed)?.spanId, "b7ad6b7169203331");
    assert.equal(processed.spanContext().traceId, "0af7651916cd43dd8448eb211c80319c");
    assert.equal(parentOf(processed)?.traceState?.get("vendor"), "1");
  } finally {
    await bus.stop();
  }
});

Deno.test("otel: with no-op providers events pass through unchanged; a real meter still counts", async () => {
  const meters = metering();
  const noopTracers = { getTracer: (name: string) => new ProxyTracerProvider().getTracer(name) };
  const cases = [
    { name: "the API's default providers", options: {} },
    { name: "an explicit no-op tracer provider", options: { tracerProvider: noopTracers } },
    {
      name: "a proxy with no SDK behind it",
      options: { tracerProvider: new ProxyTracerProvider() },
    },
    {
      name: "the API's no-op tracer provider",
      options: { tracerProvider: new ProxyTracerProvider().getDelegate() },
    },
    { name: "a real meter only", options: { meterProvider: meters.provider } },
  ];
  for (const { name, options } of cases) {
    const bus = new EventBus({ logger: silentLogger }).use(openTelemetry(options));
    const received = deferred<unknown>();
    bus.subscribe(CacheCleared, function clear(event) {
      received.resolve(event);
    });
    await bus.start();
    try {
      const sent = new CacheCleared({ data: { key: "k" } });
      await bus.publish(sent);
      assert.equal(await withDeadline(received.promise, DEADLINE, name), sent, name);
    } finally {
      await bus.stop();
    }
  }
  const points = await meters.collect();
  const channel = { "messaging.destination.name": "events.test.otel.cache.cleared" };
  assert.equal(pointValue(points, "messaging.client.sent.messages", channel), 1);
  assert.equal(pointValue(points, "messaging.client.consumed.messages", channel), 1);
});

Deno.test("otel: an SDK registered globally after the middleware was added starts tracing at the next publish", async () => {
  const traces = tracing();
  const viaUse = new EventBus({ logger: silentLogger }).use(openTelemetry());
  const viaInstrument = new EventBus({ logger: silentLogger });
  using _telemetry = instrument(viaInstrument);
  const received: CloudEvent[] = [];
  let all = countdown(2);
  for (const bus of [viaUse, viaInstrument]) {
    bus.subscribe(CacheCleared, function clear(event) {
      received.push(event);
      all.hit();
    });
    await bus.start();
  }
  try {
    const before = new CacheCleared({ data: { key: "before" } });
    for (const bus of [viaUse, viaInstrument]) await bus.publish(before);
    await withDeadline(all.reached, DEADLINE, "events before the SDK");
    assert.deepEqual(received, [before, before], "no SDK yet: the events pass unchanged");

    assert.ok(trace.setGlobalTracerProvider(traces.provider));
    received.length = 0;
    all = countdown(2);
    for (const bus of [viaUse, viaInstrument]) {
      await bus.publish(new CacheCleared({ data: { key: "after" } }));
    }
    await withDeadline(all.reached, DEADLINE, "events after the SDK");
    const spans = await traces.spans();
    const sends = spans.filter((span) => span.name === "send events.test.otel.cache.cleared");
    const processes = spans.filter((span) =>
      span.name === "process events.test.otel.cache.cleared"
    );
    assert.equal(sends.length, 2);
    assert.equal(processes.length, 2);
    for (const event of received) {
      const carried = extractSpanContext(event.extensions);
      assert.ok(carried !== undefined, "the event carries the send span's context");
      assert.ok(sends.some((span) => span.spanContext().spanId === carried.spanId));
      const children = processes.filter((span) => parentOf(span)?.spanId === carried.spanId);
      assert.equal(children.length, 1, "one process span under each send span");
    }
  } finally {
    trace.disable();
    for (const bus of [viaUse, viaInstrument]) await bus.stop();
  }
});

Deno.test("otel: the copy carrying the trace context keeps the event's class: CloudEvent, ScopedEvent, typed", async () => {
  const traces = tracing();
  const bus = new EventBus({ logger: silentLogger }).use(
    openTelemetry({ tracerProvider: traces.provider }),
  );
  const seen: CloudEvent[] = [];
  const all = countdown(3);
  bus.subscribe("test.otel.plain", function plain(event) {
    seen.push(event);
    all.hit();
  });
  bus.subscribe("test.otel.scoped", function scoped(event) {
    seen.push(event);
    all.hit();
  });
  bus.subscribe(CacheCleared, function typed(event) {
    seen.push(event);
    all.hit();
  });
  await bus.start();
  try {
    const plain = new CloudEvent({ type: "test.otel.plain", source: "/p", time: null, data: [1] });
    const scoped = new ScopedEvent({
      type: "test.otel.scoped",
      source: "/s",
      scope: EventScope.PROCESS,
      extensions: { tenant: "acme" },
    });
    const typed = new CacheCleared({ data: { key: "k" }, dataschema: "https://example.com/s" });
    for (const event of [plain, scoped, typed]) await bus.publish(event);
    await withDeadline(all.reached, DEADLINE, "three events");
    const byType = new Map(seen.map((event) => [event.type, event]));
    for (const original of [plain, scoped, typed]) {
      const copy = byType.get(original.type)!;
      assert.notEqual(copy, original);
      assert.equal(copy.constructor, original.constructor);
      assert.ok(Object.isFrozen(copy));
      const { traceparent, ...rest } = copy.toJSON();
      assert.match(String(traceparent), /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      assert.deepEqual(rest, original.toJSON());
    }
    assert.equal((byType.get("test.otel.scoped") as ScopedEvent).scope, EventScope.PROCESS);
  } finally {
    await bus.stop();
  }
});

Deno.test("otel: traceparent and tracestate read and written as the W3C propagator does", () => {
  const w3c = new W3CTraceContextPropagator();
  const spanContext: SpanContext = {
    traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
    spanId: "00f067aa0ba902b7",
    traceFlags: TraceFlags.SAMPLED,
  };
  const carrier: Record<string, string> = {};
  w3c.inject(trace.setSpanContext(ROOT_CONTEXT, spanContext), carrier, {
    set: (c, k, v) => (c[k] = v),
  });
  assert.deepEqual(traceContextExtensions(spanContext), carrier);

  const incoming = {
    traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
    tracestate: "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
  };
  const extracted = trace.getSpanContext(
    w3c.extract(ROOT_CONTEXT, incoming, {
      get: (c, k) => c[k as keyof typeof c],
      keys: (c) => Object.keys(c),
    }),
  );
  const ours = extractSpanContext(incoming);
  assert.deepEqual(
    { ...ours, traceState: ours?.traceState?.serialize() },
    { ...extracted, traceState: extracted?.traceState?.serialize() },
  );
  assert.deepEqual(traceContextExtensions(ours!), incoming);

  for (
    const bad of [
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // forbidden version
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01", // zero trace id
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", // zero span id
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", // upper case
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", // version 00 has 4 fields
      "not a traceparent",
    ]
  ) {
    assert.equal(extractSpanContext({ traceparent: bad }), undefined, bad);
  }
  // A later version may add fields; its first four are read.
  assert.equal(
    extractSpanContext({
      traceparent: "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-later",
    })?.spanId,
    "00f067aa0ba902b7",
  );
  assert.equal(extractSpanContext({ traceparent: 7 }), undefined);
});

Deno.test("otel: bad options and a bad bus are refused with typed errors", () => {
  assert.throws(() => openTelemetry(null as never), InvalidArgumentError);
  assert.throws(
    () => openTelemetry({ tracerProvider: {} as never }),
    (error: unknown) =>
      error instanceof InvalidArgumentError && error.argument === "tracerProvider",
  );
  assert.throws(
    () => openTelemetry({ meterProvider: "meter" as never }),
    (error: unknown) => error instanceof InvalidArgumentError && error.argument === "meterProvider",
  );
  assert.throws(
    () => openTelemetry({ tracer: {} } as never),
    (error: unknown) =>
      error instanceof InvalidArgumentError && error.argument === "options.tracer",
  );
  assert.throws(
    () => instrument({ use() {} } as never),
    (error: unknown) => error instanceof InvalidArgumentError && error.argument === "bus",
  );
});

Deno.test("otel: after close() the bus is neither traced nor observed", async () => {
  const traces = tracing();
  const meters = metering();
  const bus = new EventBus({ logger: silentLogger });
  const telemetry = instrument(bus, {
    tracerProvider: traces.provider,
    meterProvider: meters.provider,
  });
  const received = deferred<unknown>();
  bus.subscribe(CacheCleared, function clear(event) {
    received.resolve(event);
  });
  await bus.start();
  try {
    telemetry.close();
    telemetry.close();
    const sent = new CacheCleared({ data: { key: "k" } });
    await bus.publish(sent);
    assert.equal(await withDeadline(received.promise, DEADLINE, "the event"), sent);
    assert.deepEqual(await traces.spans(), []);
    const points = await meters.collect();
    assert.deepEqual(points.get("messaging.eventbus.broker.queued") ?? [], []);
    assert.deepEqual(points.get("messaging.client.sent.messages") ?? [], []);
  } finally {
    await bus.stop();
  }
});

Deno.test("middleware: next(replacement) publishes the replacement, routed by its own type; a non-event is refused", async () => {
  const bus = new EventBus({ logger: silentLogger });
  const seenByInner: string[] = [];
  bus.use({
    publish(call, next) {
      if (call.event.type !== "test.otel.original") return next();
      return next(new CloudEvent({ type: "test.otel.replaced", source: "/r" }));
    },
  });
  bus.use({
    publish(call, next) {
      seenByInner.push(`${call.event.type} on ${call.channel}`);
      return next();
    },
  });
  const received = deferred<CloudEvent>();
  bus.subscribe("test.otel.replaced", function replaced(event) {
    received.resolve(event);
  });
  await bus.start();
  try {
    await bus.publish(new CloudEvent({ type: "test.otel.original", source: "/o" }));
    assert.equal(
      (await withDeadline(received.promise, DEADLINE, "the replacement")).type,
      "test.otel.replaced",
    );
    assert.deepEqual(seenByInner, ["test.otel.replaced on events.test.otel.replaced"]);

    const refusing = new EventBus({ logger: silentLogger }).use({
      publish: (_call, next) => next({ type: "not an event" } as never),
    });
    await refusing.start();
    await assert.rejects(
      refusing.publish(new CloudEvent({ type: "test.otel.x", source: "/x" })),
      (error: unknown) => error instanceof InvalidArgumentError && error.argument === "event",
    );
    await refusing.stop();
  } finally {
    await bus.stop();
  }
});

Deno.test("middleware: a handle hook cannot pass a value to next()", async () => {
  const failed = deferred<HandlerFailure>();
  const bus = new EventBus({ logger: silentLogger, onError: (f) => failed.resolve(f) });
  bus.use({
    handle: (_call, next) => (next as (value: unknown) => Promise<unknown>)("nope"),
  });
  bus.subscribe("test.otel.handled", function handled() {});
  await bus.start();
  try {
    await bus.publish(new CloudEvent({ type: "test.otel.handled", source: "/h" }));
    const { error } = await withDeadline(failed.promise, DEADLINE, "the refused call");
    assert.ok(error instanceof EventBusError);
    assert.equal(error.code, "MIDDLEWARE");
  } finally {
    await bus.stop();
  }
});

Deno.test("example 20_opentelemetry.ts runs (type-checked) and prints the trace", async () => {
  const run = await runExample("20_opentelemetry.ts", { check: true });
  assert.equal(run.code, 0, `exit code ${run.code}\n${run.stderr}`);
  assert.match(
    run.stdout,
    /checkout\n {2}send events\.order\.placed\n {4}process events\.order\.placed \(reserveStock, attempt 1\)/,
  );
  assert.match(run.stdout, /messaging\.client\.sent\.messages .*: 1/);
});

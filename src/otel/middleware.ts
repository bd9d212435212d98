/**
 * The OpenTelemetry bus middleware: a PRODUCER span per publish, a CONSUMER
 * span per handler call, the trace context carried in the event's
 * `traceparent`/`tracestate` extensions, and the messaging metrics.
 *
 * @module
 */

import {
  type Attributes,
  type Context,
  context,
  INVALID_SPAN_CONTEXT,
  isSpanContextValid,
  type Link,
  type ProxyTracerProvider,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  trace,
  type Tracer,
} from "@opentelemetry/api";
import type { CloudEvent } from "../event.ts";
import {
  type HandleCall,
  type MayPassThrough,
  type Middleware,
  PASSES_THROUGH,
  type PublishCall,
} from "../middleware.ts";
import {
  createInstruments,
  type MessagingInstruments,
  type OperationRecorder,
} from "./instruments.ts";
import { hasNoSdk, type OpenTelemetryOptions, resolveOptions, type Telemetry } from "./options.ts";
import { RouteCache } from "./routes.ts";
import { outcomeOf } from "./outcome.ts";
import { ATTR, errorType } from "./semconv.ts";
import { extractSpanContext, traceContextExtensions, TRACEPARENT } from "./trace_context.ts";
import { withExtensions } from "./with_extensions.ts";

/**
 * Bus middleware that traces and measures every publish and handler call
 * after the OpenTelemetry messaging conventions. It needs only
 * `@opentelemetry/api`; spans and metrics go to the providers given, else to
 * the global ones (no-ops until an SDK registers).
 *
 * - `bus.publish` and `bus.request`: a PRODUCER span `send <channel>`. Its
 *   context is written into the published event as the CloudEvents
 *   distributed-tracing extensions `traceparent` and `tracestate`, so it
 *   crosses Redis and HTTP with the event. An event that already has a
 *   `traceparent` keeps it: that is its creation context, and the span links
 *   to it.
 * - Each handler call (each retry too): a CONSUMER span `process <channel>`,
 *   child of the event's creation context, with the subscription as
 *   `messaging.consumer.group.name` and the attempt as
 *   `messaging.eventbus.message.delivery_attempt`, and how it ended as
 *   `messaging.eventbus.outcome` (`ack`, `nack`, `reject`, `error`). A failure
 *   or a `RejectMessage` sets status ERROR, records the exception and
 *   `error.type`; a `NackMessage` sets `error.type` only; an `AckMessage` is
 *   a success.
 * - Metrics: `messaging.client.sent.messages`,
 *   `messaging.client.operation.duration`,
 *   `messaging.client.consumed.messages`, `messaging.process.duration`.
 *
 * To also report broker gauges (queued, dead-lettered, ...) use
 * {@linkcode instrument}, which installs this middleware too.
 *
 * @example
 * ```ts
 * import { EventBus } from "@opensecflow/eventbus";
 * import { openTelemetry } from "@opensecflow/eventbus/otel";
 *
 * await using bus = new EventBus().use(openTelemetry());
 * bus.subscribe("order.created", function ship(event) {
 *   console.log("shipping", event.id, event.extensions.traceparent);
 * });
 * await bus.start();
 * ```
 */
export function openTelemetry(options?: OpenTelemetryOptions): Middleware {
  return new TelemetryMiddleware(resolveOptions(options));
}

/** The middleware behind {@linkcode openTelemetry}; `closed` turns it into a pass-through. */
export class TelemetryMiddleware implements Middleware, MayPassThrough {
  /** Once set, calls pass through untouched. */
  closed = false;
  readonly #tracer: Tracer;
  readonly #instruments: MessagingInstruments;
  readonly #measured: boolean;
  /** With no measuring meter, the proxy provider whose delegate decides whether calls pass. */
  readonly #proxy: ProxyTracerProvider | null;
  /** Whether calls pass through when there is no such proxy: no meter and a no-op tracer. */
  readonly #idle: boolean;
  readonly #routes = new RouteCache();

  /** Builds the middleware on a resolved tracer and meter. */
  constructor(telemetry: Telemetry) {
    this.#tracer = telemetry.tracer;
    this.#instruments = createInstruments(telemetry.meter);
    this.#measured = this.#instruments.measured;
    const tracing = telemetry.tracing;
    // Settled here so the per-call question reads a field or two, no more.
    this.#proxy = !this.#measured && typeof tracing === "object" ? tracing : null;
    this.#idle = !this.#measured && tracing === false;
  }

  /** Whether a real meter (not the API's no-op) receives the metrics. */
  get measured(): boolean {
    return this.#measured;
  }

  /**
   * Asked by the bus before each call: while closed, or while neither the
   * tracer nor the meter has an SDK behind it, the bus skips this middleware
   * (a service that ships the instrumentation without exporting telemetry
   * pays one check per call). An SDK registered later behind the global
   * tracer provider turns tracing on at the next call.
   */
  [PASSES_THROUGH](): boolean {
    const proxy = this.#proxy;
    return this.closed || (proxy === null ? this.#idle : hasNoSdk(proxy));
  }

  /** Traces and counts a publish or request; adds the trace context to the event. */
  publish(call: PublishCall, next: (event?: CloudEvent) => Promise<void>): Promise<void> {
    if (this[PASSES_THROUGH]()) return next();
    const { event } = call;
    const route = this.#routes.send(call.scope, call.channel);
    // An event that already carries a traceparent has its creation context:
    // it is linked, never overwritten.
    const given = event.extensions[TRACEPARENT] !== undefined;
    const creation = given ? extractSpanContext(event.extensions) : undefined;
    const parent = context.active();
    const span = this.#tracer.startSpan(route.name, {
      kind: SpanKind.PRODUCER,
      attributes: route.attributes,
      links: linkTo(creation),
    }, parent);
    if (this.#noOutcome(span)) return next();
    const recorder = this.#instruments.send;
    const started = recorder.start();
    let replacement: CloudEvent | undefined;
    try {
      if (span.isRecording()) span.setAttributes(eventAttributes(event));
      const spanContext = span.spanContext();
      if (!given && hasContext(spanContext)) {
        replacement = withExtensions(event, traceContextExtensions(spanContext));
      }
    } catch (error) {
      recorder.failed(route.attributes, started, error);
      endFailed(span, error, true);
      return Promise.reject(error);
    }
    const measure = { attributes: route.attributes, recorder, started, outcomes: false };
    return this.#run(span, parent, measure, () => next(replacement));
  }

  /** Traces and counts a handler call, as a child of the event's creation context. */
  handle(call: HandleCall, next: () => Promise<unknown>): Promise<unknown> {
    if (this[PASSES_THROUGH]()) return next();
    const { event, context: delivery } = call;
    const route = this.#routes.process(call.scope, call.channel, call.subscription);
    const creation = extractSpanContext(event.extensions);
    // A handler call starts its own unit of work: its parent is the message's
    // creation context, not whatever context the broker's loop runs in.
    const parent: Context = creation === undefined
      ? ROOT_CONTEXT
      : trace.setSpanContext(ROOT_CONTEXT, creation);
    const span = this.#tracer.startSpan(route.name, {
      kind: SpanKind.CONSUMER,
      attributes: route.attributes,
      links: linkTo(creation),
    }, parent);
    if (this.#noOutcome(span)) return next();
    if (span.isRecording()) {
      span.setAttributes(eventAttributes(event));
      span.setAttribute(ATTR.messageId, delivery.messageId);
      span.setAttribute(ATTR.deliveryAttempt, delivery.attempt);
      if (delivery.correlationId !== undefined) {
        span.setAttribute(ATTR.conversationId, delivery.correlationId);
      }
    }
    const recorder = this.#instruments.process;
    const measure = {
      attributes: route.attributes,
      recorder,
      started: recorder.start(),
      outcomes: true,
    };
    return this.#run(span, parent, measure, next);
  }

  /**
   * True when nothing would come of this call: a no-op tracer's span (not
   * recording, no context to carry) and a no-op meter. The call then passes
   * straight through. Reached only for tracers not known in advance to be
   * no-ops (see `Telemetry.tracing`).
   */
  #noOutcome(span: Span): boolean {
    if (this.#measured || span.isRecording() || hasContext(span.spanContext())) {
      return false;
    }
    span.end();
    return true;
  }

  /** Runs `next` inside the span's context, then records and ends the span. */
  async #run<R>(span: Span, parent: Context, measure: Measure, next: () => Promise<R>): Promise<R> {
    const { attributes, recorder, started } = measure;
    try {
      // A span without a context (a no-op tracer's) has nothing to make active.
      const result = hasContext(span.spanContext())
        ? await context.with(trace.setSpan(parent, span), next)
        : await next();
      if (measure.outcomes) span.setAttribute(ATTR.outcome, "ack");
      recorder.done(attributes, started);
      span.end();
      return result;
    } catch (error) {
      const outcome = measure.outcomes ? outcomeOf(error) : "error";
      if (measure.outcomes) span.setAttribute(ATTR.outcome, outcome);
      if (outcome === "ack") {
        recorder.done(attributes, started);
        span.end();
      } else {
        recorder.failed(attributes, started, error);
        // A nack asks for another delivery: not a fault, so the status stays unset.
        endFailed(span, error, outcome !== "nack");
      }
      throw error;
    }
  }
}

/** What one traced call records when it ends. */
interface Measure {
  readonly attributes: Attributes;
  readonly recorder: OperationRecorder;
  readonly started: number;
  /** A handler call, whose explicit outcomes (`AckMessage`, ...) are not all failures. */
  readonly outcomes: boolean;
}

/** Whether a span context is real; the identity test skips the API's hex checks for no-op spans. */
function hasContext(spanContext: SpanContext): boolean {
  return spanContext !== INVALID_SPAN_CONTEXT && isSpanContextValid(spanContext);
}

/** The span attributes of one event: its id and its CloudEvents attributes. */
function eventAttributes(event: CloudEvent): Attributes {
  const attributes: Attributes = {
    [ATTR.messageId]: event.id,
    [ATTR.eventId]: event.id,
    [ATTR.eventSource]: event.source,
    [ATTR.eventSpecVersion]: event.specversion,
    [ATTR.eventType]: event.type,
  };
  if (event.subject !== undefined) attributes[ATTR.eventSubject] = event.subject;
  return attributes;
}

/** Links to a message's creation context, as the conventions ask of messaging spans. */
function linkTo(creation: ReturnType<typeof extractSpanContext>): Link[] | undefined {
  return creation === undefined ? undefined : [{ context: creation }];
}

/**
 * Ends a span that threw: `error.type`, and when it is a fault the status
 * ERROR with the message and the exception event.
 */
function endFailed(span: Span, error: unknown, fault: boolean): void {
  if (span.isRecording()) {
    span.setAttribute(ATTR.errorType, errorType(error));
    if (fault) markFault(span, error);
  }
  span.end();
}

function markFault(span: Span, error: unknown): void {
  if (error instanceof Error) {
    span.recordException(error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
  } else {
    span.recordException(String(error));
    span.setStatus({ code: SpanStatusCode.ERROR, message: String(error) });
  }
}

/**
 * OpenTelemetry traces and metrics for the event bus, after the messaging
 * semantic conventions. Depends only on `@opentelemetry/api`: bring any SDK.
 *
 * - {@linkcode instrument}`(bus, options)`: the middleware below plus gauges
 *   from the brokers' `stats()`; the usual entry.
 * - {@linkcode openTelemetry}`(options)`: the bus middleware alone, for
 *   `bus.use(...)`: a PRODUCER span per publish, a CONSUMER span per handler
 *   call, the trace context carried in the CloudEvents `traceparent` and
 *   `tracestate` extensions, and the messaging metrics.
 *
 * @example
 * ```ts
 * import { EventBus } from "@opensecflow/eventbus";
 * import { instrument } from "@opensecflow/eventbus/otel";
 *
 * await using bus = new EventBus();
 * using _telemetry = instrument(bus); // the global providers of @opentelemetry/api
 * bus.subscribe("order.created", function ship(event) {
 *   console.log("shipping", event.id);
 * });
 * await bus.start();
 * ```
 *
 * @module
 */

export { openTelemetry } from "./src/otel/middleware.ts";
export { type BusInstrumentation, instrument } from "./src/otel/instrument.ts";
export type {
  MeterProviderLike,
  OpenTelemetryOptions,
  TracerProviderLike,
} from "./src/otel/options.ts";

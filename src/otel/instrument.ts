/**
 * {@linkcode instrument}: the OpenTelemetry middleware and the broker metrics
 * of one bus, installed in one call.
 *
 * @module
 */

import { excerpt, InvalidArgumentError } from "../errors.ts";
import { EventBus } from "../eventbus.ts";
import { busBrokers, observeBrokers } from "./broker_metrics.ts";
import { TelemetryMiddleware } from "./middleware.ts";
import { type OpenTelemetryOptions, resolveOptions } from "./options.ts";

/**
 * What {@linkcode instrument} returns: `close()` (or `using`) stops the
 * broker metrics and turns the installed middleware into a pass-through.
 *
 * @example
 * ```ts
 * import { EventBus } from "@opensecflow/eventbus";
 * import { type BusInstrumentation, instrument } from "@opensecflow/eventbus/otel";
 * const instrumentation: BusInstrumentation = instrument(new EventBus());
 * instrumentation.close();
 * ```
 */
export interface BusInstrumentation extends Disposable {
  /** Stops observing the brokers and stops tracing and measuring the bus. Idempotent. */
  close(): void;
}

/**
 * Instruments a bus: installs the {@linkcode openTelemetry} middleware (spans
 * and messaging metrics) and observes `stats()` of the bus's brokers:
 *
 * | metric                                       | kind           | from `stats()`                 |
 * | -------------------------------------------- | -------------- | ------------------------------ |
 * | `messaging.eventbus.broker.queued`           | up-down counter | `queued`                      |
 * | `messaging.eventbus.broker.pending_requests` | up-down counter | `pendingRequests`             |
 * | `messaging.eventbus.broker.retrying`         | up-down counter | `retrying` (MemoryBroker)     |
 * | `messaging.eventbus.broker.dropped`          | counter        | `dropped`                      |
 * | `messaging.eventbus.broker.retried`          | counter        | `retried` (RedisBroker)        |
 * | `messaging.eventbus.broker.dead_lettered`    | counter        | `deadLettered` (RedisBroker)   |
 * | `messaging.eventbus.broker.claimed`          | counter        | `claimed` (RedisBroker)        |
 *
 * The meter is taken at this call, so register the OpenTelemetry SDK first
 * (or pass the providers). Spans follow the global tracer provider as it
 * changes: while neither provider has an SDK behind it, the bus skips the
 * middleware at the cost of one check per call, and an SDK registered later
 * starts tracing at the next call.
 *
 * Each carries `messaging.system: "eventbus"` and `messaging.eventbus.scope`
 * (`process`, `app`, or `shared` when one broker serves both scopes). A field
 * a broker does not report is not observed for it.
 *
 * @example
 * ```ts
 * import { EventBus } from "@opensecflow/eventbus";
 * import { instrument } from "@opensecflow/eventbus/otel";
 *
 * await using bus = new EventBus();
 * using _telemetry = instrument(bus); // global providers; or { tracerProvider, meterProvider }
 * bus.subscribe("order.created", function ship(event) {
 *   console.log("shipping", event.id);
 * });
 * await bus.start();
 * ```
 */
export function instrument(bus: EventBus, options?: OpenTelemetryOptions): BusInstrumentation {
  if (!(bus instanceof EventBus)) {
    throw new InvalidArgumentError("bus", `must be an EventBus, got ${excerpt(bus)}`);
  }
  const telemetry = resolveOptions(options);
  const middleware = new TelemetryMiddleware(telemetry);
  // Looked up at each collection, never kept: the bus's brokers may change.
  const unobserve = observeBrokers(
    telemetry.meter,
    () => busBrokers(bus.processBroker, bus.appBroker),
  );
  bus.use(middleware);
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    middleware.closed = true;
    unobserve();
  };
  return { close, [Symbol.dispose]: close };
}

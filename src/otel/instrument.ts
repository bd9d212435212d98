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
 * Register the OpenTelemetry SDK first: when neither provider has an SDK
 * behind it at this call, nothing is installed on the bus (it keeps its full
 * speed) and only the no-op broker metrics are registered.
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
  // With no SDK behind either provider every span and measurement would be a
  // no-op: installing nothing keeps the bus at full speed.
  if (telemetry.tracing() || middleware.measured) bus.use(middleware);
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    middleware.closed = true;
    unobserve();
  };
  return { close, [Symbol.dispose]: close };
}

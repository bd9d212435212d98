/**
 * Watching a bus from a test: {@linkcode waitFor} an event, and
 * {@linkcode recordPublished} every event published. Both tap the bus as a
 * middleware and remove themselves when done.
 *
 * @module
 */

import type { EventDefinition, EventOf } from "../define_event.ts";
import { EventBusError, InvalidArgumentError } from "../errors.ts";
import type { CloudEvent } from "../event.ts";
import { busInternals, type EventBus } from "../eventbus.ts";
import { checkTimeout } from "../handler_support.ts";
import type { Middleware } from "../middleware.ts";

/**
 * Options of {@linkcode waitFor}.
 *
 * @example
 * ```ts
 * import type { WaitForOptions } from "@opensecflow/eventbus/testing";
 * import type { CloudEvent } from "@opensecflow/eventbus";
 * const options: WaitForOptions<CloudEvent> = { where: (e) => e.subject === "A1", timeout: 500 };
 * ```
 */
export interface WaitForOptions<E> {
  /** Only events this returns true for. */
  where?: (event: E) => boolean;
  /** Milliseconds before rejecting with `WaitTimeoutError`; default 5000. */
  timeout?: number;
  /** Cancels the wait. */
  signal?: AbortSignal;
}

/**
 * No matching event arrived in time.
 *
 * @example
 * ```ts
 * import { WaitTimeoutError } from "@opensecflow/eventbus/testing";
 * const error = new WaitTimeoutError("order.created", 500);
 * console.log(error.code); // "WAIT_TIMEOUT"
 * ```
 */
export class WaitTimeoutError extends EventBusError {
  /** The event type waited for. */
  readonly type: string;
  /** Milliseconds waited. */
  readonly timeout: number;

  /** Creates the error. */
  constructor(type: string, timeout: number) {
    super("WAIT_TIMEOUT", `no "${type}" event was published or handled within ${timeout} ms`);
    this.type = type;
    this.timeout = timeout;
  }
}

function typeOf(target: unknown): string {
  if (typeof target === "string" && target.length > 0) return target;
  if (
    typeof target === "function" && typeof (target as EventDefinition).type === "string" &&
    typeof (target as EventDefinition).parse === "function"
  ) {
    return (target as EventDefinition).type;
  }
  throw new InvalidArgumentError(
    "target",
    "must be an event definition from defineEvent() or an event type string",
  );
}

/** The event as the caller asked for it: typed for a definition, else as is. */
function asTarget(target: EventDefinition | string, event: CloudEvent): CloudEvent {
  if (typeof target === "string" || event instanceof target) return event;
  return target.parse(event);
}

/**
 * Resolves with the first event of a definition (typed) or type that is
 * published on the bus or handled by it (an event from another instance
 * counts once a handler of this bus gets it), and that `where` accepts.
 * Rejects with `WaitTimeoutError` after `timeout` ms.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { defineEvent, EventBus, EventScope } from "@opensecflow/eventbus";
 * import { waitFor } from "@opensecflow/eventbus/testing";
 * const Shipped = defineEvent({
 *   type: "order.shipped", scope: EventScope.PROCESS, source: "/s",
 *   data: z.object({ orderId: z.string() }),
 * });
 * await using bus = new EventBus();
 * await bus.start();
 * const shipped = waitFor(bus, Shipped, { where: (e) => e.data.orderId === "A1" });
 * await bus.publish(new Shipped({ data: { orderId: "A1" } }));
 * console.log((await shipped).data.orderId); // "A1"
 * ```
 */
export function waitFor<D extends EventDefinition>(
  bus: EventBus,
  target: D,
  options?: WaitForOptions<EventOf<D>>,
): Promise<EventOf<D>>;
/** Waits for an event of a type string, as a plain `CloudEvent`. */
export function waitFor(
  bus: EventBus,
  target: string,
  options?: WaitForOptions<CloudEvent>,
): Promise<CloudEvent>;
/** Waits for an event of a definition or type. */
export function waitFor(
  bus: EventBus,
  target: EventDefinition | string,
  options: WaitForOptions<CloudEvent> = {},
): Promise<CloudEvent> {
  let type: string;
  let timeout: number;
  try {
    type = typeOf(target);
    if (options === null || typeof options !== "object") {
      throw new InvalidArgumentError("options", "must be an object");
    }
    if (options.where !== undefined && typeof options.where !== "function") {
      throw new InvalidArgumentError("where", "must be a function");
    }
    timeout = checkTimeout(options.timeout, 5_000);
    if (options.signal?.aborted) throw options.signal.reason;
  } catch (error) {
    return Promise.reject(error);
  }
  const internals = busInternals(bus);
  return new Promise<CloudEvent>((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      internals.removeMiddleware(tap);
    };
    const offer = (event: CloudEvent): void => {
      if (event.type !== type) return;
      let typed: CloudEvent;
      try {
        typed = asTarget(target, event);
        if (options.where !== undefined && !options.where(typed)) return;
      } catch (error) {
        done();
        reject(error);
        return;
      }
      done();
      resolve(typed);
    };
    const tap: Middleware = {
      publish(call, next) {
        offer(call.event);
        return next();
      },
      handle(call, next) {
        offer(call.event);
        return next();
      },
    };
    const onAbort = (): void => {
      done();
      reject(options.signal!.reason);
    };
    const timer = setTimeout(() => {
      done();
      reject(new WaitTimeoutError(type, timeout));
    }, timeout);
    options.signal?.addEventListener("abort", onAbort, { once: true });
    bus.use(tap);
  });
}

/**
 * What {@linkcode recordPublished} returns: the events published on a bus
 * since it was called, in order.
 *
 * @example
 * ```ts
 * import { EventBus } from "@opensecflow/eventbus";
 * import { recordPublished } from "@opensecflow/eventbus/testing";
 * using recorder = recordPublished(new EventBus());
 * console.log(recorder.events.length); // 0
 * ```
 */
export interface PublishedRecorder extends Disposable {
  /** Every event the bus accepted for publishing, in order. */
  readonly events: readonly CloudEvent[];
  /** The recorded events of one definition, typed. */
  of<D extends EventDefinition>(definition: D): EventOf<D>[];
  /** Stops recording; the events stay. */
  stop(): void;
}

/**
 * Records every event published on the bus (accepted by its broker) until
 * stopped or disposed.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { defineEvent, EventBus } from "@opensecflow/eventbus";
 * import { recordPublished } from "@opensecflow/eventbus/testing";
 * const Paid = defineEvent({ type: "order.paid", source: "/p", data: z.object({ orderId: z.string() }) });
 * await using bus = new EventBus();
 * await bus.start();
 * using published = recordPublished(bus);
 * await bus.publish(new Paid({ data: { orderId: "A1" } }));
 * console.log(published.of(Paid)[0].data.orderId); // "A1"
 * ```
 */
export function recordPublished(bus: EventBus): PublishedRecorder {
  const internals = busInternals(bus);
  const events: CloudEvent[] = [];
  const tap: Middleware = {
    async publish(call, next) {
      await next();
      events.push(call.event);
    },
  };
  bus.use(tap);
  let stopped = false;
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    internals.removeMiddleware(tap);
  };
  return {
    events,
    of<D extends EventDefinition>(definition: D): EventOf<D>[] {
      const type = typeOf(definition);
      return events.filter((event) => event.type === type).map((event) =>
        asTarget(definition, event) as EventOf<D>
      );
    },
    stop,
    [Symbol.dispose]: stop,
  };
}

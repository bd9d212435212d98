/**
 * `testBus`: runs the handlers of an application's bus in memory, with
 * handler failures surfacing to the test, whatever brokers the application
 * wired (Redis included), without changing application code.
 *
 * @module
 */

import type { HandlerFailure, PublishOptions, RequestOptions } from "../broker.ts";
import type { DropEvent } from "../broker_events.ts";
import { EventBusError, InvalidArgumentError } from "../errors.ts";
import type { CloudEvent } from "../event.ts";
import { busInternals, type EventBus } from "../eventbus.ts";
import { type Logger, silentLogger } from "../logger.ts";
import { MemoryBroker } from "../memory_broker.ts";

/**
 * Options of {@linkcode testBus}.
 *
 * @example
 * ```ts
 * import type { TestBusOptions } from "@opensecflow/eventbus/testing";
 * const options: TestBusOptions = { logger: console, maxDeliveries: 3 };
 * ```
 */
export interface TestBusOptions {
  /** Where the in-memory brokers log; default silent (failures are thrown instead). */
  logger?: Logger;
  /** Deliveries of a failing message before it counts as failed; default 1. */
  maxDeliveries?: number;
}

/**
 * A bus running in memory for a test. `publish` and `request` wait until
 * every handler the event set off (and whatever those published in turn) has
 * finished, and reject with a handler's error when one failed.
 *
 * @example
 * ```ts
 * import { EventBus } from "@opensecflow/eventbus";
 * import { testBus } from "@opensecflow/eventbus/testing";
 * const bus = new EventBus();
 * await using harness = await testBus(bus);
 * console.log(harness.bus === bus); // true
 * ```
 */
export interface TestBus extends AsyncDisposable {
  /** The application's bus, now running in memory. */
  readonly bus: EventBus;
  /** Publishes, waits for every handler, and rejects with the first failure. */
  publish(event: CloudEvent, options?: PublishOptions): Promise<void>;
  /** Sends a request; the reply, or the handler's failure. */
  request<R = unknown>(event: CloudEvent, options?: RequestOptions): Promise<R>;
  /**
   * Waits until no handler runs or waits, then rejects with what failed
   * since the last check (one failure: its error; several: an `AggregateError`).
   */
  settled(): Promise<void>;
  /** Stops the bus, gives it back its own brokers, and starts it again if it was started. */
  stop(): Promise<void>;
}

/**
 * A message that never reached a handler (refused by its schema, rejected,
 * given up on) while a test ran.
 *
 * @example
 * ```ts
 * import { DroppedMessageError } from "@opensecflow/eventbus/testing";
 * const error = new DroppedMessageError("events.order.created", "audit", "rejected: bad data");
 * console.log(error.code); // "DROPPED"
 * ```
 */
export class DroppedMessageError extends EventBusError {
  /** Channel of the message. */
  readonly channel: string;
  /** Subscription it was meant for. */
  readonly subscription: string | undefined;

  /** Creates the error from a drop's channel, subscription and reason. */
  constructor(channel: string, subscription: string | undefined, reason: string) {
    super(
      "DROPPED",
      `a message on "${channel}"${
        subscription === undefined ? "" : ` for "${subscription}"`
      } was dropped: ${reason}`,
    );
    this.channel = channel;
    this.subscription = subscription;
  }
}

/** Buses a harness runs now: a second harness on one bus would hand back the first one's brokers. */
const underTest = new WeakSet<EventBus>();

/**
 * Moves every handler of `bus` onto in-memory brokers and starts it: the
 * FastStream `TestBroker` for this library. A started bus (one the
 * application's own setup started) is stopped first, awaited, so its real
 * brokers consume nothing while the test runs; stopping the harness (or
 * disposing it) stops the in-memory brokers, gives the bus its own brokers
 * back and starts it again if it was started. A bus runs under one harness
 * at a time.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { defineEvent, EventBus } from "@opensecflow/eventbus";
 * import { testBus } from "@opensecflow/eventbus/testing";
 *
 * const OrderCreated = defineEvent({
 *   type: "order.created",
 *   source: "/orders",
 *   data: z.object({ orderId: z.string() }),
 * });
 * const bus = new EventBus(); // in the application: { app: new RedisBroker(...) }
 * const charged: string[] = [];
 * bus.subscribe(OrderCreated, function charge(e) {
 *   if (e.data.orderId === "bad") throw new Error("card declined");
 *   charged.push(e.data.orderId);
 * });
 *
 * await using harness = await testBus(bus);
 * await harness.publish(new OrderCreated({ data: { orderId: "A1" } }));
 * console.assert(charged[0] === "A1");
 * await harness.publish(new OrderCreated({ data: { orderId: "bad" } }))
 *   .catch((error) => console.assert(error.message === "card declined"));
 * ```
 *
 * @example A bus the application already started
 * ```ts
 * import { EventBus } from "@opensecflow/eventbus";
 * import { testBus } from "@opensecflow/eventbus/testing";
 *
 * const bus = new EventBus();
 * await bus.start(); // the application's own setup
 * const own = bus.appBroker;
 * {
 *   await using harness = await testBus(bus); // stops the bus, then runs it in memory
 *   console.assert(harness.bus.appBroker !== own && own.state === "stopped");
 * }
 * console.assert(bus.state === "started" && bus.appBroker === own); // as it was
 * await bus.stop();
 * ```
 */
export async function testBus(bus: EventBus, options: TestBusOptions = {}): Promise<TestBus> {
  if (options === null || typeof options !== "object") {
    throw new InvalidArgumentError("options", "must be an object");
  }
  const internals = busInternals(bus);
  if (underTest.has(bus)) {
    throw new InvalidArgumentError(
      "bus",
      "already runs under testBus(): stop that harness before starting another",
    );
  }
  const failures: Error[] = [];
  const original = { process: bus.processBroker, app: bus.appBroker };
  const brokers = memoryBrokers(original.app === original.process, options, failures);
  underTest.add(bus);
  // A start in progress counts as started: the application asked for a running bus.
  const wasRunning = bus.state === "started" || bus.state === "starting";
  const putBack = async (): Promise<void> => {
    let stopFailure: unknown;
    try {
      await bus.stop();
    } catch (error) {
      stopFailure = error;
    }
    try {
      if (bus.processBroker !== original.process || bus.appBroker !== original.app) {
        internals.replaceBrokers(original);
      }
    } finally {
      underTest.delete(bus);
    }
    if (wasRunning) await bus.start();
    if (stopFailure !== undefined) throw stopFailure;
  };

  try {
    // Joins a start or stop in progress, so the real brokers are idle before the swap.
    if (bus.state !== "stopped") await bus.stop();
    internals.replaceBrokers(brokers);
    await bus.start();
  } catch (error) {
    try {
      await putBack();
    } catch (restoreError) {
      throw new AggregateError(
        [error, restoreError],
        "testBus: taking over the bus failed, and so did putting it back as it was",
      );
    }
    throw error;
  }
  const { process: processBroker, app: appBroker } = brokers;

  const settled = async (): Promise<void> => {
    await processBroker.idle();
    if (appBroker !== processBroker) await appBroker.idle();
    // A process handler may have published to the app broker meanwhile, or back.
    await processBroker.idle();
    const found = failures.splice(0);
    if (found.length === 1) throw found[0];
    if (found.length > 1) {
      throw new AggregateError(found, `${found.length} handler calls failed`);
    }
  };
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => stopping ??= putBack();
  return {
    bus,
    async publish(event: CloudEvent, publishOptions?: PublishOptions): Promise<void> {
      await bus.publish(event, publishOptions);
      await settled();
    },
    async request<R = unknown>(event: CloudEvent, requestOptions?: RequestOptions): Promise<R> {
      try {
        return await bus.request<R>(event, requestOptions);
      } finally {
        await settled();
      }
    },
    settled,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/**
 * The in-memory brokers of a harness, one when the bus has one broker for
 * both scopes; each failed handler call and each drop lands in `failures`.
 */
function memoryBrokers(
  shared: boolean,
  options: TestBusOptions,
  failures: Error[],
): { process: MemoryBroker; app: MemoryBroker } {
  const brokerOptions = {
    logger: options.logger ?? silentLogger,
    onError: (failure: HandlerFailure): void => {
      failures.push(
        failure.error instanceof Error ? failure.error : new Error(String(failure.error)),
      );
    },
    maxDeliveries: options.maxDeliveries,
  };
  const processBroker = new MemoryBroker(brokerOptions);
  const appBroker = shared ? processBroker : new MemoryBroker(brokerOptions);
  for (const broker of new Set([processBroker, appBroker])) {
    broker.addEventListener("drop", (event) => {
      const drop = event as DropEvent;
      failures.push(new DroppedMessageError(drop.channel, drop.subscription, drop.reason));
    });
  }
  return { process: processBroker, app: appBroker };
}

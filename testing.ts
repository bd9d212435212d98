/**
 * Test helpers, FastStream's `TestBroker` for this library: run an
 * application's bus in memory with handler failures surfacing to the test
 * ({@linkcode testBus}), wait for an event ({@linkcode waitFor}) and record
 * what was published ({@linkcode recordPublished}).
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { defineEvent, EventBus } from "@opensecflow/eventbus";
 * import { recordPublished, testBus } from "@opensecflow/eventbus/testing";
 *
 * const OrderCreated = defineEvent({ type: "order.created", source: "/o", data: z.object({ id: z.string() }) });
 * const bus = new EventBus();
 * bus.subscribe(OrderCreated, function audit() {});
 * await using harness = await testBus(bus);
 * using published = recordPublished(bus);
 * await harness.publish(new OrderCreated({ data: { id: "A1" } }));
 * console.log(published.of(OrderCreated).length); // 1
 * ```
 *
 * @module
 */

export {
  DroppedMessageError,
  type TestBus,
  testBus,
  type TestBusOptions,
} from "./src/testing/test_bus.ts";
export {
  type PublishedRecorder,
  recordPublished,
  waitFor,
  type WaitForOptions,
  WaitTimeoutError,
} from "./src/testing/observe.ts";

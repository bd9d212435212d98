/**
 * Testing an application's handlers without Redis: `testBus` runs the bus the
 * application built (its app scope wired to Redis) entirely in memory, and a
 * failing handler fails the publish; `waitFor` and `recordPublished` watch
 * what the handlers publish.
 *
 * Run: deno run -A examples/22_testing_helpers.ts
 * (In a test file the same lines go inside `Deno.test(...)`.)
 */

import assert from "node:assert/strict";
import { z } from "zod";
import { defineEvent, EventBus, EventScope } from "../mod.ts";
import { RedisBroker } from "../redis.ts";
import { recordPublished, testBus, waitFor } from "../testing.ts";

// --- the application -------------------------------------------------------
const OrderPlaced = defineEvent({
  type: "order.placed",
  source: "/checkout",
  data: z.object({ orderId: z.string(), total: z.number() }),
});
const ReceiptSent = defineEvent({
  type: "receipt.sent",
  scope: EventScope.PROCESS,
  source: "/mail",
  data: z.object({ orderId: z.string(), to: z.string() }),
});

function createApp(): EventBus {
  const bus = new EventBus({ app: new RedisBroker({ url: "redis://redis.internal:6379" }) });
  bus.subscribe(OrderPlaced, async function sendReceipt(e) {
    if (e.data.total < 0) throw new RangeError(`negative total on ${e.data.orderId}`);
    await bus.publish(
      new ReceiptSent({ data: { orderId: e.data.orderId, to: "ada@example.com" } }),
    );
  });
  return bus;
}

// --- the test --------------------------------------------------------------
const bus = createApp();
await using harness = await testBus(bus); // no Redis needed: the handlers run in memory
using published = recordPublished(bus);

const receipt = waitFor(bus, ReceiptSent, { where: (e) => e.data.orderId === "A1" });
await harness.publish(new OrderPlaced({ data: { orderId: "A1", total: 30 } }));
console.log("receipt sent to", (await receipt).data.to);
assert.deepEqual(published.of(ReceiptSent).map((e) => e.data.orderId), ["A1"]);

await assert.rejects(
  harness.publish(new OrderPlaced({ data: { orderId: "B2", total: -1 } })),
  RangeError,
);
console.log("a failing handler failed the publish: RangeError");
console.log("published:", published.events.map((e) => e.type).join(", "));

/**
 * Fan-out: several handlers of one event type each get every event.
 *
 * Run: deno run -A examples/12_eventbus_multiple_handlers.ts
 *
 * @module
 */
import { z } from "zod";
import { defineEvent, EventBus } from "../mod.ts";

const OrderShipped = defineEvent({
  type: "order.shipped",
  source: "/shipping",
  data: z.object({ orderId: z.string(), trackingNumber: z.string() }),
});

console.log("=== Multiple handlers for one event ===");

await using bus = new EventBus();
bus.subscribe(OrderShipped, function sendNotification(event) {
  console.log(`notification sent for order ${event.data.orderId}`);
});
bus.subscribe(OrderShipped, function updateInventory(event) {
  console.log(`inventory updated for order ${event.data.orderId}`);
});
// A handler by type string gets the plain CloudEvent, from either scope.
bus.subscribe("order.shipped", function logShipment(event) {
  console.log(`shipment logged: ${event.type} ${event.id}`);
});

await bus.start();
await bus.publish(new OrderShipped({ data: { orderId: "ORD-002", trackingNumber: "TRK-123456" } }));

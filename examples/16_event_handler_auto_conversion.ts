/**
 * Automatic conversion: a handler declared with `eventHandler` always sees a
 * typed event, whether the bus delivers it or code calls it directly with a
 * CloudEvents JSON object (as it would arrive from another service).
 *
 * Run: deno run -A examples/16_event_handler_auto_conversion.ts
 *
 * @module
 */
import { z } from "zod";
import { defineEvent, eventHandler, EventScope, initEventBus, ValidationError } from "../mod.ts";

const OrderCreated = defineEvent({
  type: "order.created",
  scope: EventScope.PROCESS,
  source: "/orders",
  data: z.object({
    orderId: z.string(),
    amount: z.coerce.number().positive(),
    items: z.array(z.string()),
  }),
});

console.log("=== eventHandler auto conversion ===");

const handleOrder = eventHandler(OrderCreated)(function handleOrder(event) {
  console.log(
    `${event.constructor.name} ${event.data.orderId}: ${event.data.items.length} items, total ${
      event.data.amount.toFixed(2)
    }`,
  );
});

// 1. Through the bus: the handler gets an OrderCreated instance.
const bus = initEventBus();
await bus.start();
await bus.publish(
  new OrderCreated({ data: { orderId: "ORD-1", amount: 299.99, items: ["Laptop", "Mouse"] } }),
);
await bus.stop();

// 2. Called directly with a JSON object: converted and validated (the schema coerces "19.5").
handleOrder({
  specversion: "1.0",
  id: "ext-1",
  source: "/partner",
  type: "order.created",
  data: { orderId: "ORD-2", amount: "19.5", items: ["Cable"] },
});

// 3. A payload that breaks the schema never reaches the handler.
try {
  handleOrder({
    specversion: "1.0",
    id: "ext-2",
    source: "/partner",
    type: "order.created",
    data: { orderId: 3 },
  });
} catch (error) {
  if (!(error instanceof ValidationError)) throw error;
  console.log(`rejected: ${error.issues.map((issue) => issue.path).join(", ")}`);
}

/**
 * The demo behind `deno task demo`: typed CloudEvents, their JSON form, and
 * the bus routing them by scope on the embedded in-memory brokers.
 *
 * @module
 */
import { z } from "zod";
import { CloudEvent, defineEvent, EventBus, EventScope, ValidationError } from "../mod.ts";

console.log("== 1. Define typed events ==");
const OrderCreated = defineEvent({
  type: "com.example.order.created",
  scope: EventScope.APP,
  source: "/orders",
  data: z.object({ orderId: z.string(), amount: z.number().positive() }),
});
const CacheInvalidated = defineEvent({
  type: "com.example.cache.invalidated",
  scope: EventScope.PROCESS,
  source: "/cache",
  data: z.object({ key: z.string() }),
});
console.log(`${OrderCreated.name}: type ${OrderCreated.type}, scope ${OrderCreated.scope}`);

console.log("\n== 2. Build, serialize, parse ==");
const order = new OrderCreated({
  data: { orderId: "A1", amount: 12.5 },
  extensions: { tenant: "acme" },
});
const wire = JSON.stringify(order);
console.log("structured JSON:", wire);
const parsed = OrderCreated.parse(wire);
console.log(
  `parsed back: ${parsed.data.orderId} ${parsed.data.amount}, tenant=${parsed.extensions.tenant}`,
);
console.log(
  "batch:",
  CloudEvent.batchToJSON([order, new CacheInvalidated({ data: { key: "k1" } })]).length,
  "bytes",
);

console.log("\n== 3. Bad input is refused with every problem named ==");
try {
  CloudEvent.fromJSON({
    specversion: "1.0",
    id: "",
    type: "t",
    source: "/s",
    time: "lunchtime",
    Bad: 1,
  });
} catch (error) {
  if (!(error instanceof ValidationError)) throw error;
  for (const issue of error.issues) console.log(`  ${issue.path}: ${issue.message}`);
}

console.log("\n== 4. The bus: routing by scope ==");
{
  await using bus = new EventBus();
  bus.subscribe(OrderCreated, function chargeCustomer(e) {
    console.log(`[app scope] charging ${e.data.amount} for order ${e.data.orderId}`);
  });
  bus.subscribe(CacheInvalidated, function dropCache(e) {
    console.log(`[process scope] dropping cache key ${e.data.key}`);
  });
  bus.subscribe("com.example.order.created", function audit(e) {
    console.log(`[audit] ${e.type} ${e.id}`);
  });
  console.log("handlers:", JSON.stringify(bus.handlers()));
  await bus.start();
  await bus.publish(order);
  await bus.publish(new CacheInvalidated({ data: { key: "user:42" } }));
}
console.log("\nbus stopped; queued events were handled before stop() returned");

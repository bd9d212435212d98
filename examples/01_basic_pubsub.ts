/**
 * Basic publish/subscribe on the in-memory broker. The API is the one every
 * broker shares: swap in a RedisBroker and nothing else changes.
 *
 * Run: deno run -A examples/01_basic_pubsub.ts
 */
import { AsyncQueueBroker } from "../mod.ts";

interface Order {
  orderId: string;
  amount: number;
}

console.log("=== Basic publish/subscribe ===");

const broker = new AsyncQueueBroker();

broker.subscriber("events.order.created")(async function handleOrder(order: Order) {
  await Promise.resolve(); // real work would go here
  console.log(`  Received order event: ${JSON.stringify(order)}`);
});

await broker.start();
await broker.publish({ orderId: "ORD-001", amount: 99.9 }, "events.order.created");
// stop() is graceful: it waits until the handler above has run.
await broker.stop();
console.log(`  Broker ${broker.state}; consumed ${broker.stats().consumed} message(s)`);

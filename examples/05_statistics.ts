/**
 * Broker statistics: counters and queue sizes.
 *
 * Run: deno run -A examples/05_statistics.ts
 */
import { MemoryBroker, silentLogger } from "../mod.ts";

console.log("=== Statistics ===");

// The silent logger keeps the failing call below out of the output; onError still sees it.
const broker = new MemoryBroker({
  logger: silentLogger,
  onError: (failure) =>
    console.log(`  (handler ${failure.subscription} failed: ${String(failure.error)})`),
});

broker.subscriber("metrics")(function recordMetric(data: { value: number }) {
  if (data.value === 3) throw new Error("bad value"); // counted in errors
});

await broker.start();
for (let i = 0; i < 5; i++) await broker.publish({ value: i }, "metrics");
const [subscription] = broker.stats().subscriptions;
console.log(`  Subscription ${subscription.name}: concurrency ${subscription.concurrency}`);
await broker.stop(); // waits for the queue to drain
const stats = broker.stats();
console.log(`  Published:   ${stats.published}`);
console.log(`  Consumed:    ${stats.consumed}`);
console.log(`  Errors:      ${stats.errors}`);
console.log(`  Dropped:     ${stats.dropped}`);
console.log(`  Channels:    ${stats.channels}`);
console.log(`  Subscribers: ${stats.subscribers}`);
console.log(`  Queued:      ${stats.queued}`);
console.log(`  State:       ${broker.state}`);

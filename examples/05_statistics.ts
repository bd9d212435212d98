/**
 * Broker statistics: counters and queue sizes.
 *
 * Run: deno run -A examples/05_statistics.ts
 */
import { MemoryBroker } from "../mod.ts";

console.log("=== Statistics ===");

const broker = new MemoryBroker({ logger: { ...console, error: () => {} } });

broker.subscriber("metrics")(function handler(data: { value: number }) {
  if (data.value === 3) throw new Error("bad value"); // counted in errors
});

await broker.start();
for (let i = 0; i < 5; i++) await broker.publish({ value: i }, "metrics");
const during = broker.stats();
await broker.stop(); // waits for the queue to drain
const stats = broker.stats();
console.log(`  Published:   ${stats.published}`);
console.log(`  Consumed:    ${stats.consumed}`);
console.log(`  Errors:      ${stats.errors}`);
console.log(`  Dropped:     ${stats.dropped}`);
console.log(`  Channels:    ${stats.channels}`);
console.log(`  Subscribers: ${stats.subscribers}`);
console.log(`  Queued right after publishing: ${during.queued}`);
console.log(`  State:       ${broker.state}`);

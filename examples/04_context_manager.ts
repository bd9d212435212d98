/**
 * `await using`: the broker stops (gracefully) when the block ends, even when
 * the block throws.
 *
 * Run: deno run -A examples/04_context_manager.ts
 */
import { MemoryBroker } from "../mod.ts";

console.log("=== await using ===");

let outside: MemoryBroker;
{
  await using broker = new MemoryBroker();
  outside = broker;
  broker.subscriber("chat")(function onMessage(data: { text: string }) {
    console.log(`  Chat message: ${data.text}`);
  });
  await broker.start();
  await broker.publish({ text: "Hello World" }, "chat");
}
console.log(`  Broker stopped automatically (state: ${outside.state})`);

/**
 * Request/reply: `request()` resolves with the handler's return value.
 *
 * Run: deno run -A examples/06_rpc_pattern.ts
 */
import { MemoryBroker, NoSubscribersError, RequestTimeoutError } from "../mod.ts";

console.log("=== RPC request/reply ===");

const broker = new MemoryBroker();

broker.subscriber("calculator.add")(function addService(data: { a: number; b: number }) {
  const result = data.a + data.b;
  console.log(`  [Service] Computing ${data.a} + ${data.b} = ${result}`);
  return { result };
});

broker.subscriber("calculator.multiply")(function multiplyService(data: { x: number; y: number }) {
  const result = data.x * data.y;
  console.log(`  [Service] Computing ${data.x} * ${data.y} = ${result}`);
  return { result };
});

let finishSlow!: () => void;
const slowWork = new Promise<void>((resolve) => (finishSlow = resolve));
broker.subscriber("calculator.slow")(async function slowService() {
  await slowWork; // answers only after the client has given up
  return { result: 0 };
});

await broker.start();

type Reply = { result: number };

console.log("  [Client] Sending request: 5 + 3");
const sum = await broker.request<Reply>({ a: 5, b: 3 }, "calculator.add", { timeout: 1000 });
console.log(`  [Client] Got response: ${sum.result}`);

console.log("  [Client] Sending request: 7 * 6");
const product = await broker.request<Reply>({ x: 7, y: 6 }, "calculator.multiply", {
  timeout: 1000,
});
console.log(`  [Client] Got response: ${product.result}`);

console.log("  [Client] Sending 3 concurrent requests...");
const replies = await Promise.all(
  [0, 1, 2].map((i) =>
    broker.request<Reply>({ a: i, b: i + 1 }, "calculator.add", { timeout: 1000 })
  ),
);
console.log(
  `  [Client] Got ${replies.length} responses: ${replies.map((r) => r.result).join(", ")}`,
);

try {
  await broker.request({}, "calculator.slow", { timeout: 50 });
} catch (error) {
  if (error instanceof RequestTimeoutError) console.log(`  [Client] Timed out: ${error.message}`);
}
finishSlow();
try {
  await broker.request({}, "calculator.divide", { timeout: 1000 });
} catch (error) {
  if (error instanceof NoSubscribersError) console.log(`  [Client] ${error.message}`);
}

await broker.stop();
console.log(`  Pending requests after stop: ${broker.stats().pendingRequests}`);

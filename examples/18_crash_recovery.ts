/**
 * Crash recovery on Redis Streams: worker A takes three orders and its
 * process dies before acknowledging any of them. The orders stay pending in
 * the consumer group; worker B, another instance of the same service (same
 * `group`, same subscription name), claims them once they have been idle for
 * `claimIdleMs` and handles every one. Nothing is lost.
 *
 * Needs a Redis on 127.0.0.1:6379. Uses its own key prefix and deletes its
 * keys at the end.
 *
 * Run: deno run -A examples/18_crash_recovery.ts
 *
 * @module
 */
import { Redis } from "ioredis";
import { type MessageContext, silentLogger } from "../mod.ts";
import { RedisBroker } from "../redis.ts";

const ORDERS = ["ORD-1", "ORD-2", "ORD-3"];
const CHANNEL = "orders";
const GROUP = "fulfilment"; // the service name: its instances share the work
const NAME = "ship"; // the subscription's durable name

interface Order {
  orderId: string;
}

// Worker A runs in a child process so that it can really crash.
if (Deno.args[0] === "--worker-a") {
  const keyPrefix = Deno.args[1];
  const workerA = new RedisBroker({
    keyPrefix,
    group: GROUP,
    consumer: "worker-a",
    logger: silentLogger,
  });
  const taken = new Set<string>();
  workerA.subscribe(CHANNEL, (order: Order) => {
    console.log(`worker A: took ${order.orderId}`);
    taken.add(order.orderId);
    if (taken.size === ORDERS.length) {
      console.log("worker A: crashes before acknowledging anything");
      Deno.exit(1);
    }
    return new Promise(() => {}); // shipping takes forever, then the crash
  }, { name: NAME, concurrency: ORDERS.length });
  await workerA.start();
  console.log("worker A: ready");
  await new Promise(() => {}); // waits for orders until it crashes
}

const keyPrefix = `example18:${crypto.randomUUID().slice(0, 8)}:`;

// 1. Start worker A and wait until it listens.
const child = new Deno.Command(Deno.execPath(), {
  args: ["run", "-A", new URL(import.meta.url).pathname, "--worker-a", keyPrefix],
  stdout: "piped",
  stderr: "inherit",
}).spawn();
const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
let buffered = "";
async function nextLine(): Promise<string | undefined> {
  while (!buffered.includes("\n")) {
    const { value, done } = await lines.read();
    if (done) return undefined;
    buffered += value;
  }
  const at = buffered.indexOf("\n");
  const line = buffered.slice(0, at);
  buffered = buffered.slice(at + 1);
  console.log(`  | ${line}`);
  return line;
}
while ((await nextLine()) !== "worker A: ready") {
  // worker A's start-up lines are printed as they come
}

// 2. Publish three orders; worker A takes them all and crashes.
const publisher = new RedisBroker({ keyPrefix, group: "checkout", logger: silentLogger });
await publisher.start();
for (const orderId of ORDERS) await publisher.publish({ orderId }, CHANNEL);
await publisher.stop();
console.log(`published ${ORDERS.join(", ")}`);
while ((await nextLine()) !== undefined) {
  // print the rest of worker A's output until its process is gone
}
const status = await child.status;
console.log(`worker A exited with code ${status.code}; its orders are pending, unacknowledged`);

// 3. Worker B, same group and subscription name, claims what A left behind.
const workerB = new RedisBroker({
  keyPrefix,
  group: GROUP,
  consumer: "worker-b",
  claimIdleMs: 500, // entries idle this long belong to a dead consumer
  logger: silentLogger,
});
const shipped = new Set<string>();
const allShipped = Promise.withResolvers<void>();
workerB.subscribe(CHANNEL, (order: Order, context: MessageContext) => {
  console.log(`worker B: shipped ${order.orderId} (delivery attempt ${context.attempt})`);
  shipped.add(order.orderId);
  if (shipped.size === ORDERS.length) allShipped.resolve();
}, { name: NAME });
await workerB.start();
const deadline = setTimeout(
  () => allShipped.reject(new Error("worker B did not recover every order")),
  30_000,
);
await allShipped.promise;
clearTimeout(deadline);
await workerB.stop();

// 4. Clean up the example's keys.
const redis = new Redis("redis://127.0.0.1:6379");
let cursor = "0";
do {
  const [next, keys] = await redis.scan(cursor, "MATCH", `${keyPrefix}*`, "COUNT", 100);
  if (keys.length > 0) await redis.unlink(...keys);
  cursor = next;
} while (cursor !== "0");
redis.disconnect();
console.log(`recovered ${shipped.size} of ${ORDERS.length} orders after the crash: nothing lost`);

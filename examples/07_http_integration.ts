/**
 * HTTP integration: a broker whose lifecycle is bound to a `Deno.serve`
 * server, and a POST endpoint that publishes. The counterpart of the Python
 * library's FastAPI lifespan example.
 *
 * - the broker starts before the server takes requests;
 * - `POST /orders` publishes the JSON body to `events.order.created`;
 * - SIGINT/SIGTERM stop the server (in-flight requests finish), then the
 *   broker (queued messages are handled) before the process exits.
 *
 * Run:   deno run -A examples/07_http_integration.ts          (serves on PORT, default 8000)
 *        curl -X POST localhost:8000/orders -H 'content-type: application/json' -d '{"orderId":"A1"}'
 * Smoke: deno run -A examples/07_http_integration.ts --smoke  (port 0, sends its own requests, exits)
 *
 * @module
 */
import { MemoryBroker } from "../mod.ts";

const smoke = Deno.args.includes("--smoke");
const broker = new MemoryBroker();

// Resolves each time an order is handled: the smoke run waits on it.
let handled: (order: unknown) => void = () => {};

broker.subscribe("events.order.created", function onOrderCreated(order: { orderId: string }) {
  console.log(`order created: ${JSON.stringify(order)}`);
  handled(order);
});

async function createOrder(request: Request): Promise<Response> {
  let order: unknown;
  try {
    order = await request.json();
  } catch {
    return Response.json({ error: "the body must be JSON" }, { status: 400 });
  }
  if (
    order === null || typeof order !== "object" ||
    typeof (order as { orderId?: unknown }).orderId !== "string"
  ) {
    return Response.json({ error: "expected { orderId: string }" }, { status: 400 });
  }
  await broker.publish(order, "events.order.created");
  return Response.json({ status: "ok" });
}

function route(request: Request): Promise<Response> | Response {
  const { pathname } = new URL(request.url);
  if (pathname === "/orders" && request.method === "POST") return createOrder(request);
  return Response.json({ error: "not found" }, { status: 404 });
}

// Lifespan: start the broker, then serve; on shutdown, the reverse.
await broker.start();
const server = Deno.serve({
  port: smoke ? 0 : Number(Deno.env.get("PORT") ?? 8000),
  hostname: "127.0.0.1",
  onListen: ({ port }) => console.log(`listening on http://127.0.0.1:${port}`),
}, route);

// Graceful stop: the server finishes in-flight requests, then the broker
// drains its queues. Removing the listeners lets the process end by itself.
const signals = ["SIGINT", "SIGTERM"] as const;
function onSignal(): void {
  shutdown("signal received").catch((error) => console.error("shutdown failed", error));
}
for (const signal of signals) Deno.addSignalListener(signal, onSignal);

async function shutdown(reason: string): Promise<void> {
  console.log(`${reason}: shutting down`);
  for (const signal of signals) Deno.removeSignalListener(signal, onSignal);
  await server.shutdown();
  await broker.stop();
  console.log("broker stopped");
}

if (smoke) {
  const base = `http://127.0.0.1:${server.addr.port}`;
  const seen = new Promise((resolve) => (handled = resolve));
  const ok = await fetch(`${base}/orders`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ orderId: "ORD-001", amount: 99.99 }),
  });
  console.log(`POST /orders -> ${ok.status} ${JSON.stringify(await ok.json())}`);
  await seen;
  const bad = await fetch(`${base}/orders`, { method: "POST", body: "not json" });
  console.log(`POST /orders (bad body) -> ${bad.status} ${JSON.stringify(await bad.json())}`);
  await shutdown("smoke test done");
}

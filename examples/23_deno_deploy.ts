/**
 * A Deno Deploy app: `Deno.serve` with process events in memory and app
 * events on the Deno KV queue (`KvBroker`), which Deploy provides without
 * any server. Deployable as it is: on Deploy `Deno.openKv()` opens the
 * project's database, and every isolate that starts registers the queue
 * listener (the bus starts at the top level, before serving).
 *
 * Routes:
 * - `POST /orders`      `{ "orderId": "...", "amount": 12.5 }` -> publishes `order.placed` (app scope)
 * - `GET  /orders/:id`  the receipt the `order.placed` handler stored in KV
 * - `GET  /stats`       page views (process scope, this isolate only) and broker counters
 *
 * Run:   deno run -A --unstable-kv examples/23_deno_deploy.ts            (PORT, default 8000; KV_PATH, default Deno's)
 *        curl -X POST localhost:8000/orders -H 'content-type: application/json' -d '{"orderId":"A1","amount":12.5}'
 * Smoke: deno run -A --unstable-kv examples/23_deno_deploy.ts --smoke    (in-memory KV, port 0, own requests, exits)
 *
 * @module
 */
import { z } from "zod";
import { defineEvent, EventBus, EventScope, ValidationError } from "../mod.ts";
import { KvBroker } from "../kv.ts";

const OrderPlaced = defineEvent({
  type: "order.placed",
  scope: EventScope.APP, // every isolate of the deployment: one of them handles it
  source: "/orders",
  data: z.object({ orderId: z.string().min(1), amount: z.number().positive() }),
});

const PageViewed = defineEvent({
  type: "page.viewed",
  scope: EventScope.PROCESS, // this isolate only, in memory
  source: "/web",
  data: z.object({ path: z.string() }),
});

const smoke = Deno.args.includes("--smoke");
// On Deploy: the project's database. Locally: KV_PATH, or Deno's default location.
const kv = await Deno.openKv(smoke ? ":memory:" : Deno.env.get("KV_PATH"));
const bus = new EventBus({ app: new KvBroker({ kv, group: "shop" }) });

let pageViews = 0;
bus.subscribe(PageViewed, function countView() {
  pageViews++;
});

let onReceipt: (orderId: string) => void = () => {};
bus.subscribe(OrderPlaced, async function storeReceipt(event, context) {
  const receipt = { ...event.data, event: event.id, attempt: context.attempt };
  await kv.set(["receipts", event.data.orderId], receipt);
  console.log(`receipt stored for ${event.data.orderId}`);
  onReceipt(event.data.orderId);
});

async function handle(request: Request): Promise<Response> {
  const url = new URL(request.url);
  await bus.publish(new PageViewed({ data: { path: url.pathname } }));
  if (request.method === "POST" && url.pathname === "/orders") {
    const body = await request.json().catch(() => undefined);
    try {
      const event = new OrderPlaced({ data: body });
      await bus.publish(event); // resolves once KV committed it
      return Response.json({ accepted: true, event_id: event.id }, { status: 202 });
    } catch (error) {
      if (error instanceof ValidationError) {
        return Response.json({ accepted: false, issues: error.issues }, { status: 400 });
      }
      throw error;
    }
  }
  const order = url.pathname.match(/^\/orders\/([^/]+)$/);
  if (request.method === "GET" && order) {
    const receipt = await kv.get(["receipts", decodeURIComponent(order[1])]);
    return receipt.value === null
      ? Response.json({ found: false }, { status: 404 })
      : Response.json(receipt.value);
  }
  if (request.method === "GET" && url.pathname === "/stats") {
    const { published, consumed, deadLettered } = (bus.appBroker as KvBroker).stats();
    return Response.json({ pageViews, app: { published, consumed, deadLettered } });
  }
  return new Response("not found", { status: 404 });
}

await bus.start();
const server = Deno.serve({
  port: smoke ? 0 : Number(Deno.env.get("PORT") ?? 8000),
  onListen: ({ hostname, port }) => console.log(`listening on http://${hostname}:${port}`),
}, handle);

async function shutdown(reason: string): Promise<void> {
  console.log(`${reason}: stopping`);
  await server.shutdown();
  await bus.stop();
  kv.close();
  console.log("bus stopped");
}

if (smoke) {
  const base = `http://127.0.0.1:${server.addr.port}`;
  const stored = new Promise<string>((resolve) => (onReceipt = resolve));
  const show = async (label: string, response: Response) =>
    console.log(`${label} -> ${response.status} ${await response.text()}`);

  await show(
    "POST /orders",
    await fetch(`${base}/orders`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ orderId: "A1", amount: 12.5 }),
    }),
  );
  await show(
    "POST /orders (bad amount)",
    await fetch(`${base}/orders`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ orderId: "A2", amount: -1 }),
    }),
  );
  await stored;
  await show("GET /orders/A1", await fetch(`${base}/orders/A1`));
  await show("GET /stats", await fetch(`${base}/stats`));
  await shutdown("smoke test done");
} else if (Deno.env.get("DENO_DEPLOYMENT_ID") === undefined) {
  // Locally, Ctrl-C stops gracefully; Deploy stops isolates on its own.
  Deno.addSignalListener("SIGINT", () => void shutdown("SIGINT"));
}

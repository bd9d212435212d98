/**
 * HTTP server with the event bus: module-level handlers, `initEventBus` at
 * start-up, graceful stop on SIGINT/SIGTERM. The counterpart of the Python
 * library's FastAPI + EventBus example.
 *
 * Endpoints:
 * - `GET  /`                 what the server offers
 * - `POST /events/process`   publish an `order.created` event (PROCESS scope, in memory)
 * - `POST /events/app`       publish a `notification.sent` event (APP scope: every instance)
 * - `GET  /events/handlers`  the registered handlers
 * - `POST /events`           any CloudEvent over HTTP (binary, structured or batch mode)
 *
 * The APP scope uses Redis when `REDIS_URL` is set (e.g. redis://127.0.0.1:6379),
 * else an in-memory broker (single instance).
 *
 * Run:   deno run -A examples/15_http_eventbus_integration.ts          (PORT, default 8000)
 *        curl -X POST localhost:8000/events/process -H 'content-type: application/json' \
 *          -d '{"orderId":"ORD-001","customerId":"CUST-123","amount":99.99}'
 *        curl -X POST localhost:8000/events/app -H 'content-type: application/json' \
 *          -d '{"userId":"USER-001","message":"Hello!","channel":"email"}'
 * Smoke: deno run -A examples/15_http_eventbus_integration.ts --smoke  (port 0, own requests, exits)
 *
 * @module
 */
import { z } from "zod";
import {
  type Broker,
  type CloudEvent,
  defineEvent,
  type EventBus,
  eventHandler,
  EventScope,
  initEventBus,
  ValidationError,
} from "../mod.ts";
import { createReceiver, toHttpRequest } from "../http.ts";

// ============================================================
// Event definitions
// ============================================================

const OrderCreated = defineEvent({
  type: "order.created",
  scope: EventScope.PROCESS,
  source: "/order-service",
  data: z.object({
    orderId: z.string().min(1),
    customerId: z.string().min(1),
    amount: z.number().positive(),
  }),
});

const NotificationSent = defineEvent({
  type: "notification.sent",
  scope: EventScope.APP,
  source: "/notification-service",
  data: z.object({
    userId: z.string().min(1),
    message: z.string(),
    channel: z.enum(["email", "sms", "push"]),
  }),
});

// ============================================================
// Module-level handlers: declared now, attached by initEventBus()
// ============================================================

let handledCount = 0;
let onHandled: () => void = () => {};

eventHandler(OrderCreated)(async function handleOrderCreated(event) {
  console.log(`processing order ${event.data.orderId} for customer ${event.data.customerId}`);
  await Promise.resolve(); // real work would go here
  console.log(`order ${event.data.orderId} processed`);
  handledCount++;
  onHandled();
});

eventHandler(NotificationSent)(async function handleNotification(event) {
  console.log(`sending ${event.data.channel} notification to user ${event.data.userId}`);
  await Promise.resolve();
  console.log(`notification sent via ${event.data.channel}`);
  handledCount++;
  onHandled();
});

// ============================================================
// Routes
// ============================================================

async function publishFrom<D>(
  bus: EventBus,
  request: Request,
  build: (body: D) => CloudEvent & { scope: string },
  describe: (body: D) => string,
): Promise<Response> {
  let body: D;
  try {
    body = await request.json();
  } catch {
    return Response.json({ success: false, error: "the body must be JSON" }, { status: 400 });
  }
  let event: CloudEvent & { scope: string };
  try {
    event = build(body);
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    return Response.json({ success: false, error: error.message, issues: error.issues }, {
      status: 400,
    });
  }
  try {
    await bus.publish(event);
  } catch (error) {
    console.error(`failed to publish ${event.type}:`, error);
    return Response.json({ success: false, error: "the event was not published" }, { status: 503 });
  }
  return Response.json({
    success: true,
    event_id: event.id,
    event_type: event.type,
    scope: event.scope,
    message: describe(body),
  });
}

function routes(bus: EventBus): (request: Request) => Promise<Response> | Response {
  const cloudEvents = createReceiver({ bus, definitions: [OrderCreated, NotificationSent] });
  return (request) => {
    const route = `${request.method} ${new URL(request.url).pathname}`;
    switch (route) {
      case "GET /":
        return Response.json({
          message: "EventBus HTTP integration",
          endpoints: {
            "POST /events/process": "publish a PROCESS scope event (in memory)",
            "POST /events/app": "publish an APP scope event (every instance)",
            "GET /events/handlers": "list the registered handlers",
            "POST /events": "receive CloudEvents over HTTP",
          },
        });
      case "POST /events/process":
        return publishFrom<{ orderId: string; customerId: string; amount: number }>(
          bus,
          request,
          (body) => new OrderCreated({ data: body }),
          (body) => `PROCESS event published: order ${body.orderId} created`,
        );
      case "POST /events/app":
        return publishFrom<{ userId: string; message: string; channel: "email" }>(
          bus,
          request,
          (body) => new NotificationSent({ data: body }),
          (body) => `APP event published: notification to user ${body.userId}`,
        );
      case "GET /events/handlers": {
        const handlers = bus.handlers();
        return Response.json({ total_event_types: Object.keys(handlers).length, handlers });
      }
    }
    if (new URL(request.url).pathname === "/events") return cloudEvents(request);
    return Response.json({ error: "not found" }, { status: 404 });
  };
}

// ============================================================
// Start-up and graceful stop
// ============================================================

async function appBroker(): Promise<Broker | undefined> {
  const url = Deno.env.get("REDIS_URL");
  if (!url) {
    console.log("REDIS_URL not set: the APP scope uses an in-memory broker (single instance)");
    return undefined;
  }
  const { RedisBroker } = await import("../redis.ts");
  return new RedisBroker({ url, keyPrefix: Deno.env.get("REDIS_KEY_PREFIX") ?? "example15:" });
}

const smoke = Deno.args.includes("--smoke");
const bus = initEventBus({ app: await appBroker() });
await bus.start(); // before the server takes requests
console.log("event bus started");

const server = Deno.serve({
  port: smoke ? 0 : Number(Deno.env.get("PORT") ?? 8000),
  hostname: "127.0.0.1",
  onListen: ({ port }) => console.log(`listening on http://127.0.0.1:${port}`),
}, routes(bus));

const signals = ["SIGINT", "SIGTERM"] as const;
function onSignal(): void {
  shutdown("signal received").catch((error) => console.error("shutdown failed", error));
}
for (const signal of signals) Deno.addSignalListener(signal, onSignal);

async function shutdown(reason: string): Promise<void> {
  console.log(`${reason}: stopping`);
  for (const signal of signals) Deno.removeSignalListener(signal, onSignal);
  await server.shutdown(); // finish in-flight requests, take no new ones
  await bus.stop(); // then let queued handlers finish
  console.log("event bus stopped");
}

// ============================================================
// Smoke run: the requests of the curl lines above, then stop
// ============================================================

if (smoke) {
  const base = `http://127.0.0.1:${server.addr.port}`;
  const handled = (count: number) =>
    new Promise<void>((resolve) => {
      onHandled = () => handledCount >= count && resolve();
      onHandled();
    });
  const call = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(base + path, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    console.log(`${method} ${path} -> ${response.status} ${JSON.stringify(await response.json())}`);
  };
  await call("GET", "/");
  await call("POST", "/events/process", {
    orderId: "ORD-001",
    customerId: "CUST-123",
    amount: 99.99,
  });
  await call("POST", "/events/app", { userId: "USER-001", message: "Hello!", channel: "email" });
  await call("POST", "/events/process", { orderId: "ORD-002", customerId: "CUST-123", amount: -5 });
  await call("GET", "/events/handlers");
  const incoming = new OrderCreated({
    source: "/partner",
    data: { orderId: "ORD-003", customerId: "CUST-9", amount: 5 },
  });
  const response = await fetch(toHttpRequest(incoming, `${base}/events`, { mode: "binary" }));
  console.log(`POST /events (binary CloudEvent) -> ${response.status} ${await response.text()}`);
  await handled(3);
  console.log(`handled ${handledCount} events`);
  await shutdown("smoke test done");
}

/**
 * The event bus in a Hono application: the CloudEvents receiver mounted as a
 * route, a route of its own that reads CloudEvents with `parseRequest` and
 * decides what to publish, a JSON endpoint publishing typed events, the
 * handler list, and the bus started before serving and stopped after.
 *
 * Routes:
 * - `POST /webhooks/cloudevents`  CloudEvents over HTTP (binary, structured, batch)
 * - `POST /imports`               a batch of `user.signed_up`; already known emails are skipped
 * - `POST /signups`               `{ "email": "..." }` -> publishes `user.signed_up`
 * - `GET  /handlers`              registered handlers
 *
 * Run:   deno run -A examples/19_hono_integration.ts          (PORT, default 8000)
 *        curl -X POST localhost:8000/signups -H 'content-type: application/json' -d '{"email":"ada@example.com"}'
 * Smoke: deno run -A examples/19_hono_integration.ts --smoke  (port 0, own requests, exits)
 *
 * @module
 */
import { Hono } from "hono";
import { z } from "zod";
import { defineEvent, EventBus, type EventOf, EventScope, ValidationError } from "../mod.ts";
import { createReceiver, HttpRequestError, parseRequest, toHttpRequest } from "../http.ts";

const UserSignedUp = defineEvent({
  type: "user.signed_up",
  scope: EventScope.APP,
  source: "/signups",
  data: z.object({ email: z.email() }),
});

const bus = new EventBus();
const signedUp = new Set<string>();
const welcomed: string[] = [];
let onWelcome: () => void = () => {};

bus.subscribe(UserSignedUp, function sendWelcomeMail(event) {
  console.log(`welcome mail to ${event.data.email} (event ${event.source})`);
  welcomed.push(event.data.email);
  onWelcome();
});

const app = new Hono();

// The CloudEvents handler is a plain fetch handler: hand it Hono's raw Request.
const receive = createReceiver({ bus, definitions: [UserSignedUp], allowUnknownTypes: false });
app.post("/webhooks/cloudevents", (c) => receive(c.req.raw));

// A route of its own: parseRequest reads and validates the CloudEvents of
// the request, and the route decides what to publish and what to answer. Its
// errors carry the answer the receiver would give (400, 413, 415...).
app.post("/imports", async (c) => {
  let events;
  try {
    events = await parseRequest(c.req.raw, {
      definitions: [UserSignedUp],
      allowUnknownTypes: false,
      modes: ["batch"],
    });
  } catch (error) {
    if (error instanceof HttpRequestError) return error.toResponse();
    throw error;
  }
  const fresh = events
    .filter((event): event is EventOf<typeof UserSignedUp> => event instanceof UserSignedUp)
    .filter((event) => !signedUp.has(event.data.email));
  for (const event of fresh) signedUp.add(event.data.email);
  await bus.publishBatch(fresh);
  return c.json({ imported: fresh.length, skipped: events.length - fresh.length }, 201);
});

app.post("/signups", async (c) => {
  const body = await c.req.json().catch(() => undefined);
  try {
    const event = new UserSignedUp({ data: body });
    signedUp.add(event.data.email);
    await bus.publish(event);
    return c.json({ success: true, event_id: event.id }, 201);
  } catch (error) {
    if (error instanceof ValidationError) {
      return c.json({ success: false, issues: error.issues }, 400);
    }
    throw error;
  }
});

app.get("/handlers", (c) => c.json(bus.handlers()));

const smoke = Deno.args.includes("--smoke");
await bus.start();
const server = Deno.serve({
  port: smoke ? 0 : Number(Deno.env.get("PORT") ?? 8000),
  hostname: "127.0.0.1",
  onListen: ({ port }) => console.log(`listening on http://127.0.0.1:${port}`),
}, app.fetch);

const signals = ["SIGINT", "SIGTERM"] as const;
function onSignal(): void {
  shutdown("signal received").catch((error) => console.error("shutdown failed", error));
}
for (const signal of signals) Deno.addSignalListener(signal, onSignal);

async function shutdown(reason: string): Promise<void> {
  console.log(`${reason}: stopping`);
  for (const signal of signals) Deno.removeSignalListener(signal, onSignal);
  await server.shutdown();
  await bus.stop();
  console.log("bus stopped");
}

if (smoke) {
  const base = `http://127.0.0.1:${server.addr.port}`;
  const allWelcomed = new Promise<void>((resolve) => {
    onWelcome = () => welcomed.length === 3 && resolve();
  });
  const show = async (label: string, response: Response) =>
    console.log(`${label} -> ${response.status} ${await response.text()}`);

  await show(
    "POST /signups",
    await fetch(`${base}/signups`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: "ada@example.com" }),
    }),
  );
  await show(
    "POST /signups (bad email)",
    await fetch(`${base}/signups`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: "nope" }),
    }),
  );
  const partner = new UserSignedUp({ source: "/partner", data: { email: "grace@example.com" } });
  await show(
    "POST /webhooks/cloudevents (structured)",
    await fetch(toHttpRequest(partner, `${base}/webhooks/cloudevents`, { mode: "structured" })),
  );
  await show(
    "POST /webhooks/cloudevents (unknown type)",
    await fetch(`${base}/webhooks/cloudevents`, {
      method: "POST",
      headers: { "ce-specversion": "1.0", "ce-id": "x-1", "ce-source": "/x", "ce-type": "other" },
    }),
  );
  const imports = [
    new UserSignedUp({ source: "/crm", data: { email: "ada@example.com" } }),
    new UserSignedUp({ source: "/crm", data: { email: "linus@example.com" } }),
  ];
  await show("POST /imports (batch)", await fetch(toHttpRequest(imports, `${base}/imports`)));
  await show(
    "POST /imports (bad email)",
    await fetch(`${base}/imports`, {
      method: "POST",
      headers: { "content-type": "application/cloudevents-batch+json" },
      body: JSON.stringify([{ ...imports[0].toJSON(), data: { email: "nope" } }]),
    }),
  );
  await show("GET /handlers", await fetch(`${base}/handlers`));
  await allWelcomed;
  console.log(`welcomed: ${welcomed.join(", ")}`);
  await shutdown("smoke test done");
}

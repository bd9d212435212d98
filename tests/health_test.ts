import assert from "node:assert/strict";
import { type Broker, EventBus, MemoryBroker, silentLogger } from "../mod.ts";
import { healthHandler } from "../http.ts";

Deno.test("health: ok only while started; each broker lists its subscriptions", async () => {
  const bus = new EventBus({ logger: silentLogger });
  bus.subscribe("order.created", function audit() {});
  const before = await bus.health();
  assert.equal(before.ok, false);
  assert.equal(before.state, "stopped");
  await bus.start();
  const health = await bus.health();
  assert.equal(health.ok, true);
  assert.equal(health.process.state, "started");
  assert.deepEqual(health.app.subscriptions, [
    { channel: "events.order.created", subscription: "audit", queued: 0, running: 0 },
  ]);
  await bus.stop();
  assert.equal((await bus.health()).ok, false);
});

Deno.test("health: a broker whose health() throws is reported unhealthy, never a rejection", async () => {
  const failing = new MemoryBroker({ logger: silentLogger });
  (failing as Broker).health = () => Promise.reject(new Error("cannot reach the server"));
  await using bus = new EventBus({ app: failing, logger: silentLogger });
  await bus.start();
  const health = await bus.health();
  assert.equal(health.ok, false);
  assert.equal(health.process.ok, true);
  assert.equal(health.app.ok, false);
  assert.equal(health.app.error, "cannot reach the server");
});

Deno.test("healthHandler: 200 when healthy, 503 when not, 405 for other methods", async () => {
  const bus = new EventBus({ logger: silentLogger });
  const probe = healthHandler(bus);
  const down = await probe(new Request("http://localhost/healthz"));
  assert.equal(down.status, 503);
  assert.equal((await down.json()).ok, false);
  await bus.start();
  const up = await probe(new Request("http://localhost/healthz"));
  assert.equal(up.status, 200);
  assert.equal(up.headers.get("content-type"), "application/json");
  assert.equal((await up.json()).process.state, "started");
  const head = await probe(new Request("http://localhost/healthz", { method: "HEAD" }));
  assert.equal(head.status, 200);
  assert.equal(await head.text(), "");
  const post = await probe(new Request("http://localhost/healthz", { method: "POST" }));
  assert.equal(post.status, 405);
  await post.body?.cancel();
  await bus.stop();
  assert.throws(() => healthHandler({} as EventBus), /health/);
});

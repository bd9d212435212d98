import assert from "node:assert/strict";
import { EventBus, RejectMessage, silentLogger } from "../../mod.ts";
import { healthHandler } from "../../http.ts";
import { RedisBroker } from "../../redis.ts";
import {
  adminClient,
  deferred,
  deleteKeys,
  SHARED_REDIS_URL,
  uniquePrefix,
  waitUntil,
  withDeadline,
} from "./_fault_util.ts";
import { RedisServer } from "./_redis_server.ts";

const DEADLINE = 20_000;

Deno.test("health (stream): latency, lag and pending per subscription, dead letters per channel", async () => {
  const admin = await adminClient();
  const keyPrefix = uniquePrefix("health");
  const broker = new RedisBroker({
    url: SHARED_REDIS_URL,
    keyPrefix,
    logger: silentLogger,
    blockMs: 200,
  });
  try {
    const release = deferred();
    const started = deferred();
    broker.subscribe("jobs", async function slow(n: number) {
      if (n === 0) throw new RejectMessage("never");
      started.resolve();
      await release.promise;
    });
    await broker.start();
    await broker.publish(0, "jobs"); // dead-lettered at once
    await waitUntil(async () => (await broker.deadLetters("jobs")).length === 1, DEADLINE, "dlq");
    await broker.publish(1, "jobs");
    await withDeadline(started.promise, DEADLINE, "the handler started");
    const health = await broker.health();
    assert.equal(health.ok, true);
    assert.equal(health.connected, true);
    assert.equal(typeof health.latencyMs, "number");
    assert.deepEqual(health.deadLetters, { jobs: 1 });
    const [sub] = health.subscriptions;
    assert.equal(sub.subscription, "slow");
    assert.equal(sub.running, 1);
    assert.equal(sub.pending, 1, "the running entry is pending in the group");
    assert.equal(sub.lag, 0, "everything was read");
    release.resolve();
  } finally {
    await broker.stop({ timeout: 1_000 });
    await deleteKeys(admin, keyPrefix);
    admin.disconnect();
  }
});

Deno.test("health: after its Redis died the broker is unhealthy (never a hang), and the probe answers 503", async () => {
  await using server = await RedisServer.start();
  const broker = new RedisBroker({
    url: server.url(),
    // Long enough to connect on a loaded machine; it also bounds the check after the kill.
    connectTimeout: 2_000,
    logger: silentLogger,
    blockMs: 100,
  });
  const bus = new EventBus({ app: broker, logger: silentLogger });
  broker.subscribe("jobs", function idle() {});
  try {
    const probe = healthHandler(bus);
    assert.equal((await probe(new Request("http://localhost/healthz"))).status, 503, "not started");
    await bus.start();
    const up = await probe(new Request("http://localhost/healthz"));
    assert.equal(up.status, 200);
    assert.equal((await up.json()).app.connected, true);
    await server.stop("kill");
    const health = await broker.health();
    assert.equal(health.ok, false);
    assert.equal(typeof health.error, "string");
    const down = await probe(new Request("http://localhost/healthz"));
    assert.equal(down.status, 503);
    assert.equal((await down.json()).app.ok, false);
  } finally {
    await bus.stop({ timeout: 500 }).catch(() => {});
  }
});

/**
 * A Redis that keeps nothing on disk restarts: the stream and its consumer
 * groups are gone. Publishes queued during the outage recreate the stream
 * when the connection comes back, before the consumer notices its group is
 * missing; the group must then be recreated from the start of the stream so
 * those events are still delivered.
 */

import assert from "node:assert/strict";
import { RedisBroker } from "../../redis.ts";
import { silentLogger } from "../../mod.ts";
import { RedisServer } from "./_redis_server.ts";
import { stopAll, waitUntil } from "./_fault_util.ts";

const BEFORE = 10;
const DURING = 100;
const DEADLINE = 20_000;

Deno.test("volatile restart: publishes made during the outage are handled after it", async () => {
  await using server = await RedisServer.start({ args: ["--save", "", "--appendonly", "no"] });
  const common = {
    url: server.url(),
    keyPrefix: "volatile:",
    group: "volatile-service",
    publishTimeout: 15_000,
    connectTimeout: 2_000,
    blockMs: 200,
    logger: silentLogger,
  };
  const publisher = new RedisBroker({ ...common, consumer: "publisher" });
  const consumer = new RedisBroker({ ...common, consumer: "consumer" });
  const handled = new Set<number>();
  consumer.subscribe("ledger", (message: { n: number }) => {
    handled.add(message.n);
  }, { name: "book" });
  try {
    await consumer.start();
    await publisher.start();
    for (let n = 0; n < BEFORE; n++) await publisher.publish({ n }, "ledger");
    await waitUntil(() => handled.size === BEFORE, DEADLINE, "the events before the outage");

    await server.stop("kill");
    const during = Array.from(
      { length: DURING },
      (_, i) => publisher.publish({ n: BEFORE + i }, "ledger"),
    );
    await server.restart();
    const results = await Promise.allSettled(during);
    const resolved = results.flatMap((r, i) => (r.status === "fulfilled" ? [BEFORE + i] : []));
    assert.ok(resolved.length > 0, "some outage publishes went through after the restart");
    await waitUntil(
      () => resolved.every((n) => handled.has(n)),
      DEADLINE,
      "every outage publish that resolved is handled",
      () => `missing ${resolved.filter((n) => !handled.has(n)).length} of ${resolved.length}`,
    );
  } finally {
    await stopAll([publisher, consumer]);
  }
});

/**
 * Redis restart: 10,000 events published while the server (our own, with an
 * fsync'ed append-only file) is killed once and started again on the same
 * port. Every publish settles; those that resolved are handled; those made
 * during the outage reject with a BrokerError instead of hanging.
 */

import assert from "node:assert/strict";
import { RedisBroker } from "../../redis.ts";
import { BrokerError, silentLogger } from "../../mod.ts";
import { RedisServer } from "./_redis_server.ts";
import { deferred, stopAll, waitUntil, withDeadline } from "./_fault_util.ts";

const EVENTS = 10_000;
/** Publishes in flight at once. */
const WINDOW = 64;
/** The server is killed once this many publishes have been issued. */
const KILL_AT = EVENTS / 2;
/** Rejections to see before the server comes back; new publishes wait past that. */
const OUTAGE_REJECTIONS = 50;
/**
 * Far above an fsync or scheduling stall (every write is fsync'ed), so only
 * the outage rejects publishes; it still yields its rejections, a little later.
 */
const PUBLISH_TIMEOUT_MS = 2_000;
const CHANNEL = "ledger";

Deno.test("restart: every event whose publish resolved is handled; outage publishes reject with BrokerError", async () => {
  await using server = await RedisServer.start({
    args: ["--appendonly", "yes", "--appendfsync", "always"],
  });
  const common = {
    url: server.url(),
    keyPrefix: "restart:",
    group: "restart-service",
    publishTimeout: PUBLISH_TIMEOUT_MS,
    connectTimeout: 2_000,
    claimIdleMs: 500,
    blockMs: 200,
    logger: silentLogger,
  };
  const publisher = new RedisBroker({ ...common, consumer: "publisher" });
  const consumer = new RedisBroker({ ...common, consumer: "consumer" });
  const handled = new Set<number>();
  consumer.subscribe(CHANNEL, (message: { n: number }) => {
    handled.add(message.n);
  }, { name: "book", concurrency: 16 });

  const resolved: number[] = [];
  const rejected: { n: number; error: unknown }[] = [];
  let down = false;
  const firstOutageRejections = deferred();
  let restarted: Promise<void> | undefined;
  try {
    await consumer.start();
    await publisher.start();

    const inFlight = new Set<Promise<void>>();
    const settled: Promise<unknown>[] = [];
    for (let n = 0; n < EVENTS; n++) {
      if (n === KILL_AT) {
        down = true;
        await server.stop("kill");
        restarted = firstOutageRejections.promise.then(() => server.restart()).then(() => {
          down = false;
        });
      }
      // Keep the outage short: once enough publishes have failed, wait for the restart.
      if (down && rejected.length >= OUTAGE_REJECTIONS) await restarted;
      while (inFlight.size >= WINDOW) {
        await withDeadline(Promise.race(inFlight), 30_000, `a publish settles (at event ${n})`);
      }
      const publish = publisher.publish({ n }, CHANNEL).then(
        () => {
          resolved.push(n);
        },
        (error) => {
          rejected.push({ n, error });
          if (down && rejected.length >= OUTAGE_REJECTIONS) firstOutageRejections.resolve();
        },
      );
      const tracked = publish.finally(() => inFlight.delete(tracked));
      inFlight.add(tracked);
      settled.push(tracked);
    }
    // Every publish settles: nothing hangs, whatever the outage did to it.
    await withDeadline(Promise.allSettled(settled), 60_000, "every publish settles");
    await withDeadline(restarted ?? Promise.resolve(), 30_000, "server restarted");

    assert.equal(resolved.length + rejected.length, EVENTS);
    console.log(
      `${resolved.length} publishes resolved, ${rejected.length} rejected, e.g.: ${
        String((rejected[0]?.error as Error | undefined)?.message)
      }`,
    );
    assert.ok(rejected.length >= OUTAGE_REJECTIONS, `rejected ${rejected.length}`);
    for (const { error } of rejected) {
      assert.ok(error instanceof BrokerError, `publish rejected with ${String(error)}`);
      assert.ok(error.message.length > 0);
    }
    // Only publishes still in flight at the kill, or made after it, may fail.
    assert.ok(
      rejected.every(({ n }) => n >= KILL_AT - WINDOW),
      "no publish failed before the kill",
    );
    assert.ok(resolved.some((n) => n < KILL_AT), "publishes resolved before the outage");
    assert.ok(
      resolved.some((n) => n > KILL_AT + OUTAGE_REJECTIONS),
      "publishes resolved after the restart",
    );

    await waitUntil(
      () => resolved.every((n) => handled.has(n)),
      60_000,
      "every event whose publish resolved is handled",
      () => {
        const missing = resolved.filter((n) => !handled.has(n));
        return `${missing.length} missing, e.g. ${missing.slice(0, 10).join(", ")}`;
      },
    );
  } finally {
    down = false;
    firstOutageRejections.resolve();
    await restarted?.catch(() => {});
    await stopAll([publisher, consumer]);
  }
});

/**
 * Scopes: PROCESS events stay in the process that published them (in-memory
 * broker); APP events travel through Redis Streams and reach every service
 * that listens. Two buses in one script stand for two services, "billing"
 * and "mailer", each with its own consumer group.
 *
 * Needs a Redis on 127.0.0.1:6379 (REDIS_URL to use another). Uses its own
 * key prefix and deletes its keys at the end.
 *
 * Run: deno run -A examples/10_eventbus_scopes.ts
 *
 * @module
 */
import { Redis } from "ioredis";
import { z } from "zod";
import { defineEvent, EventBus, EventScope, silentLogger } from "../mod.ts";
import { RedisBroker } from "../redis.ts";

const url = Deno.env.get("REDIS_URL") ?? "redis://127.0.0.1:6379";
const keyPrefix = `example10:${crypto.randomUUID().slice(0, 8)}:`;

const UserRegistered = defineEvent({
  type: "user.registered",
  scope: EventScope.APP,
  source: "/users",
  data: z.object({ userId: z.string(), email: z.string().email() }),
});
const CacheWarmed = defineEvent({
  type: "cache.warmed",
  scope: EventScope.PROCESS,
  source: "/cache",
  data: z.object({ entries: z.number().int() }),
});

/** One service: a bus whose app scope is Redis, with the service name as consumer group. */
function service(name: string): EventBus {
  return new EventBus({
    app: new RedisBroker({ url, keyPrefix, group: name, logger: silentLogger }),
    logger: silentLogger,
  });
}

const billing = service("billing");
const mailer = service("mailer");

let remaining = 2;
const bothGotIt = Promise.withResolvers<void>();
const arrived = () => --remaining === 0 && bothGotIt.resolve();

billing.subscribe(UserRegistered, function openAccount(event) {
  console.log(`[billing] opening an account for ${event.data.userId}`);
  arrived();
});
mailer.subscribe(UserRegistered, function sendWelcome(event) {
  console.log(`[mailer] sending a welcome mail to ${event.data.email}`);
  arrived();
});
billing.subscribe(CacheWarmed, function logWarmup(event) {
  console.log(`[billing] own cache warmed: ${event.data.entries} entries (process scope)`);
});
mailer.subscribe(CacheWarmed, function neverHere() {
  console.log("[mailer] this never prints: process events stay in their process");
});

try {
  // start() resolves once the consumer groups exist, so nothing published after it is missed.
  await billing.start();
  await mailer.start();

  await billing.publish(new CacheWarmed({ data: { entries: 128 } }));
  await billing.publish(new UserRegistered({ data: { userId: "U-7", email: "ada@example.com" } }));
  await bothGotIt.promise;
  console.log("the app event reached both services; the process event stayed in billing");
} finally {
  await billing.stop();
  await mailer.stop();
  const redis = new Redis(url, { lazyConnect: true });
  await redis.connect();
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${keyPrefix}*`, "COUNT", 100);
    if (keys.length > 0) await redis.del(...keys);
    cursor = next;
  } while (cursor !== "0");
  await redis.quit();
}

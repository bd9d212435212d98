/**
 * EventBus basics: typed events, a handler per type, scope routing.
 *
 * Run: deno run -A examples/08_eventbus_basic.ts
 *
 * @module
 */
import { z } from "zod";
import { defineEvent, EventBus, EventScope } from "../mod.ts";

// A PROCESS event stays inside this process; an APP event would reach every
// instance of the application through the app broker.
const CacheInvalidated = defineEvent({
  type: "cache.invalidated",
  scope: EventScope.PROCESS,
  source: "/cache",
  data: z.object({ key: z.string() }),
});

const UserRegistered = defineEvent({
  type: "user.registered",
  scope: EventScope.APP,
  source: "/users",
  data: z.object({ userId: z.string(), email: z.string().email() }),
});

console.log("=== EventBus basics ===");

// With no brokers given, both scopes use an in-memory broker.
const bus = new EventBus();

bus.subscribe(CacheInvalidated, function dropCacheEntry(event) {
  console.log(`[process] cache entry dropped: ${event.data.key}`);
});

bus.subscribe(UserRegistered, function greetUser(event) {
  console.log(`[app] welcome ${event.data.email} (user ${event.data.userId})`);
});

await bus.start();
await bus.publish(new CacheInvalidated({ data: { key: "user:42" } }));
await bus.publish(new UserRegistered({ data: { userId: "U-001", email: "ada@example.com" } }));

// stop() lets queued handlers finish before it resolves.
await bus.stop();
console.log("bus stopped");

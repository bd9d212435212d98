/**
 * Module-level registration: `eventHandler` declares handlers where they are
 * written (as functions or as decorators on class methods), `initEventBus`
 * attaches them all exactly once at start-up.
 *
 * Run: deno run -A examples/09_eventbus_decorator.ts
 *
 * @module
 */
import { z } from "zod";
import { defineEvent, eventHandler, initEventBus } from "../mod.ts";

const UserRegistered = defineEvent({
  type: "user.registered",
  source: "/users",
  data: z.object({ userId: z.string(), email: z.string().email() }),
});
type UserRegistered = InstanceType<typeof UserRegistered>;

console.log("=== EventBus with decorator registration ===");

// Declared before the bus exists: they wait in a pending list.
eventHandler(UserRegistered)(function sendWelcomeEmail(event) {
  console.log(`sending welcome email to ${event.data.email}`);
});

// A static method works with TC39 decorators and with legacy ones
// (`experimentalDecorators: true`, as NestJS and TypeORM projects compile).
class Profiles {
  @eventHandler(UserRegistered)
  static createProfile(event: UserRegistered): void {
    console.log(`creating profile for user ${event.data.userId}`);
  }
}
console.log(`declared handlers on ${Profiles.name}`);

// An instance method is attached once per instance, each under its own name:
// Audit.record, Audit.record#2, ... TC39 decorators attach it as the instance
// is constructed; with legacy decorators, call subscribeInstance(instance).
class Audit {
  constructor(readonly log: string) {}

  @eventHandler(UserRegistered)
  record(event: UserRegistered): void {
    console.log(`[${this.log}] recorded ${event.data.userId}`);
  }
}
new Audit("audit-a");
new Audit("audit-b");

const bus = initEventBus();
console.log("handlers:", JSON.stringify(bus.handlers()));
await bus.start();
await bus.publish(new UserRegistered({ data: { userId: "U-001", email: "user@example.com" } }));
await bus.stop();
console.log("bus stopped");

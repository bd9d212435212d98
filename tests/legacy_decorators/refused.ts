/**
 * What the decorators still refuse at type level under legacy decorators
 * (`experimentalDecorators: true`, this folder's deno.json): a property, an
 * accessor, and a method whose parameter is not the decorated event. Each
 * such decorator carries `@ts-expect-error`, so this file type-checks only
 * while every one of them is a type error (an unused directive is an error
 * too); legacy_decorators_test.ts checks it with this folder's deno.json and
 * with the repository's (TC39 decorators), which refuses the same lines.
 * Instance methods are accepted in both protocols (see instances.ts).
 *
 * @module
 */
import { z } from "zod";
import { defineEvent, eventHandler, MemoryBroker } from "../../mod.ts";

const Ping = defineEvent({
  type: "legacy.refused.ping",
  source: "/legacy",
  data: z.object({}),
});
const Pong = defineEvent({
  type: "legacy.refused.pong",
  source: "/legacy",
  data: z.object({}),
});
const broker = new MemoryBroker();

export class Billing {
  // @ts-expect-error a property is no method
  @eventHandler(Ping)
  total = 0;

  // @ts-expect-error an accessor is no method
  @broker.subscriber("jobs")
  get pending(): number {
    return 0;
  }

  // @ts-expect-error a handler of Ping takes a Ping
  @eventHandler(Ping)
  charge(_e: InstanceType<typeof Pong>): void {}
}

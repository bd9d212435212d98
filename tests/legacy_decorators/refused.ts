/**
 * Instance methods under legacy decorators: with this folder's deno.json
 * (`experimentalDecorators: true`) this file does NOT type-check, on purpose.
 * Both decorators take only the class as their legacy target, so each
 * decorated instance method below is a type error, and
 * legacy_decorators_test.ts checks that the type checker reports exactly
 * these two lines. With TC39 decorators (the repository's own deno.json) the
 * same file is valid: there, instance methods are subscribed per instance.
 *
 * @module
 */
import { z } from "zod";
import { defineEvent, eventHandler, MemoryBroker } from "../../mod.ts";

const Ping = defineEvent({
  type: "legacy.refused",
  source: "/legacy",
  data: z.object({}),
});
const broker = new MemoryBroker();

export class Billing {
  @eventHandler(Ping)
  charge(_e: InstanceType<typeof Ping>): void {}

  @broker.subscriber("jobs")
  work(_job: string): void {}
}

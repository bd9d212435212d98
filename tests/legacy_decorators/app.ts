/**
 * Decorators compiled the way NestJS and TypeORM projects compile them, with
 * `experimentalDecorators: true` (see deno.json next to this file): static
 * methods subscribe; a property is refused at run time (and by the type
 * checker: see refused.ts). Instance methods are subscribed by
 * `subscribeInstance` (see instances.ts). Prints one line per outcome for
 * legacy_decorators_test.ts.
 *
 * Run: deno run --check -A --config tests/legacy_decorators/deno.json tests/legacy_decorators/app.ts
 *
 * @module
 */
import { z } from "zod";
import {
  defineEvent,
  eventHandler,
  EventScope,
  initEventBus,
  InvalidArgumentError,
  MemoryBroker,
  resetEventBus,
} from "../../mod.ts";

const Ping = defineEvent({
  type: "legacy.ping",
  scope: EventScope.PROCESS,
  source: "/legacy",
  data: z.object({ n: z.number() }),
});
type Ping = InstanceType<typeof Ping>;

let pinged: (line: string) => void = () => {};
let ran: (line: string) => void = () => {};

class Pings {
  static readonly label = "pings";

  @eventHandler(Ping)
  static onPing(e: Ping): void {
    pinged(`eventHandler static: ${this.label} got ${e.data.n}`);
  }
}

const broker = new MemoryBroker();

class Jobs {
  static readonly label = "jobs";

  @broker.subscriber("jobs")
  static run(job: string): void {
    ran(`subscriber static: ${this.label} ran ${job}`);
  }
}

function refusal(declare: () => unknown): string {
  try {
    declare();
    return "accepted";
  } catch (error) {
    return error instanceof InvalidArgumentError ? `refused: ${error.message}` : String(error);
  }
}

// A property is a type error (refused.ts shows it); cast to `any` here to see
// the run-time refusal as well.
// deno-lint-ignore no-explicit-any
const untyped = (decorator: unknown): any => decorator;

console.log(`property eventHandler ${
  refusal(() => {
    class Billing {
      @untyped(eventHandler(Ping))
      charge = 0;
    }
    return Billing;
  })
}`);
console.log(`property subscriber ${
  refusal(() => {
    class Worker {
      @untyped(broker.subscriber("jobs"))
      work = 0;
    }
    return Worker;
  })
}`);

const bus = initEventBus();
console.log(`handlers: ${JSON.stringify(bus.handlers()["legacy.ping"])}`);
await bus.start();
const got = new Promise<string>((resolve) => (pinged = resolve));
await bus.publish(new Ping({ data: { n: 7 } }));
console.log(await got);
// Called directly, the decorated method converts a CloudEvents JSON object.
const direct = new Promise<string>((resolve) => (pinged = resolve));
(Pings.onPing as (input: unknown) => void)({
  specversion: "1.0",
  id: "d1",
  source: "/direct",
  type: "legacy.ping",
  data: { n: 8 },
});
console.log(`direct call: ${await direct}`);
await resetEventBus();

await broker.start();
const done = new Promise<string>((resolve) => (ran = resolve));
await broker.publish("J-1", "jobs");
console.log(await done);
await broker.stop();
console.log(`classes: ${Pings.name}, ${Jobs.name}`);

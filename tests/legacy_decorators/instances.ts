/**
 * Instance methods under legacy decorators (`experimentalDecorators: true`,
 * see deno.json next to this file), subscribed by `subscribeInstance`. Not a
 * `_test.ts` file on purpose: it must be compiled with this folder's
 * deno.json, so legacy_decorators_test.ts runs it as
 *
 *     deno test -A --config tests/legacy_decorators/deno.json tests/legacy_decorators/instances.ts
 *
 * @module
 */
import assert from "node:assert/strict";
import { z } from "zod";
import {
  defineEvent,
  eventHandler,
  EventScope,
  initEventBus,
  InvalidArgumentError,
  MemoryBroker,
  type MessageContext,
  resetEventBus,
  silentLogger,
  subscribeInstance,
} from "../../mod.ts";
import { countdown, withDeadline } from "../_deferred.ts";

const DEADLINE = 5_000;

function refusedInstance(pattern: RegExp): (e: unknown) => boolean {
  return (e) =>
    e instanceof InvalidArgumentError && e.argument === "instance" && pattern.test(e.message);
}

Deno.test("legacy instances: this file is compiled with legacy decorators", () => {
  let protocol = "none";
  const probe = (...args: unknown[]): void => {
    protocol = args.length === 3 && typeof args[1] === "string" ? "legacy" : "tc39";
  };
  class Probe {
    @probe
    method(): void {}
  }
  assert.equal(Probe.name, "Probe");
  assert.equal(protocol, "legacy", "run this file with --config tests/legacy_decorators/deno.json");
});

Deno.test("legacy instances: broker.subscriber on an instance method records it; subscribeInstance subscribes it bound to the instance", async () => {
  await using broker = new MemoryBroker({ logger: silentLogger });
  const seen: string[] = [];
  const calls = countdown(1);
  class Worker {
    constructor(readonly label: string) {}

    @broker.subscriber("jobs")
    handle(job: string, context: MessageContext): void {
      seen.push(`${this.label}:${job}:${context.subscription}`);
      calls.hit();
    }
  }
  const worker = new Worker("w");
  assert.equal(broker.stats().subscribers, 0, "decorating subscribes nothing by itself");
  const subscription = subscribeInstance(worker);
  assert.deepEqual(subscription.names, ["Worker.handle"]);
  assert.equal(broker.stats().subscribers, 1);
  await broker.start();
  await broker.publish("J-1", "jobs");
  await withDeadline(calls.reached, DEADLINE, "the instance handler");
  assert.deepEqual(seen, ["w:J-1:Worker.handle"]);
  // Called directly, the method is the one written.
  worker.handle("direct", { subscription: "by hand" } as MessageContext);
  assert.deepEqual(seen, ["w:J-1:Worker.handle", "w:direct:by hand"]);
  await subscription.unsubscribe();
});

Deno.test("legacy instances: two instances get distinct names, with and without { name }", async () => {
  await using broker = new MemoryBroker({ logger: silentLogger });
  const seen: string[] = [];
  const calls = countdown(4);
  class Worker {
    constructor(readonly label: string) {}

    @broker.subscriber("jobs")
    handle(_job: string, context: MessageContext): void {
      seen.push(`${this.label}:${context.subscription}`);
      calls.hit();
    }

    @broker.subscriber("jobs", { name: "auditor" })
    audit(_job: string, context: MessageContext): void {
      seen.push(`${this.label}:${context.subscription}`);
      calls.hit();
    }
  }
  const a = subscribeInstance(new Worker("a"));
  const b = subscribeInstance(new Worker("b"));
  assert.deepEqual(a.names, ["Worker.handle", "auditor"]);
  assert.deepEqual(b.names, ["Worker.handle#2", "auditor#2"]);
  await broker.start();
  await broker.publish("J-2", "jobs");
  await withDeadline(calls.reached, DEADLINE, "both instances, both methods");
  assert.deepEqual(seen.sort(), [
    "a:Worker.handle",
    "a:auditor",
    "b:Worker.handle#2",
    "b:auditor#2",
  ]);
  await a.unsubscribe();
  await b.unsubscribe();
});

const Booked = defineEvent({
  type: "legacy.instance.booked",
  scope: EventScope.PROCESS,
  source: "/legacy",
  data: z.object({ n: z.number() }),
});
type Booked = InstanceType<typeof Booked>;

Deno.test("legacy instances: eventHandler on an instance method attaches to the module-level bus, before or after initEventBus", async () => {
  await resetEventBus();
  const seen: string[] = [];
  let calls = countdown(2);
  class Ledger {
    constructor(readonly label: string) {}

    @eventHandler(Booked)
    book(e: Booked, context: MessageContext): void {
      seen.push(`${this.label}:${e.data.n}:${context.subscription}`);
      calls.hit();
    }
  }
  // Before the bus exists: declared, attached by initEventBus.
  const early = subscribeInstance(new Ledger("early"));
  const bus = initEventBus({ logger: silentLogger });
  // After: attached at once.
  const late = subscribeInstance(new Ledger("late"));
  assert.deepEqual([early.names, late.names], [["Ledger.book"], ["Ledger.book#2"]]);
  assert.deepEqual(bus.handlers()["legacy.instance.booked"], [
    { name: "Ledger.book", scope: "process" },
    { name: "Ledger.book#2", scope: "process" },
  ]);
  await bus.start();
  await bus.publish(new Booked({ data: { n: 1 } }));
  await withDeadline(calls.reached, DEADLINE, "both ledgers");
  assert.deepEqual(seen.sort(), ["early:1:Ledger.book", "late:1:Ledger.book#2"]);
  // Called directly, the method converts a CloudEvents JSON object, as a TC39 one does.
  calls = countdown(1);
  const ledger = new Ledger("direct");
  (ledger.book as (input: unknown) => void)({
    specversion: "1.0",
    id: "d1",
    source: "/direct",
    type: "legacy.instance.booked",
    data: { n: 2 },
  });
  assert.equal(seen.at(-1), "direct:2:book");
  await early.unsubscribe();
  await late.unsubscribe();
  assert.equal(bus.handlers()["legacy.instance.booked"], undefined);
  await resetEventBus();
});

Deno.test("legacy instances: a subclass inherits its base classes' decorated methods, of both decorators", async () => {
  await resetEventBus();
  await using broker = new MemoryBroker({ logger: silentLogger });
  const seen: string[] = [];
  const calls = countdown(3);
  class Base {
    constructor(readonly label: string) {}

    @eventHandler(Booked)
    onBooked(e: Booked): void {
      seen.push(`${this.label}:booked ${e.data.n}`);
      calls.hit();
    }

    @broker.subscriber("base.jobs")
    onBaseJob(job: string, context: MessageContext): void {
      seen.push(`${this.label}:${job}:${context.subscription}`);
      calls.hit();
    }
  }
  class Child extends Base {
    @broker.subscriber("child.jobs")
    onChildJob(job: string, context: MessageContext): void {
      seen.push(`${this.label}:${job}:${context.subscription}`);
      calls.hit();
    }
  }
  const bus = initEventBus({ logger: silentLogger });
  await using child = subscribeInstance(new Child("child"));
  assert.deepEqual(child.names, ["Child.onBooked", "Child.onBaseJob", "Child.onChildJob"]);
  await bus.start();
  await broker.start();
  await bus.publish(new Booked({ data: { n: 3 } }));
  await broker.publish("B-1", "base.jobs");
  await broker.publish("C-1", "child.jobs");
  await withDeadline(calls.reached, DEADLINE, "every inherited method");
  assert.deepEqual(seen.sort(), [
    "child:B-1:Child.onBaseJob",
    "child:C-1:Child.onChildJob",
    "child:booked 3",
  ]);
  await resetEventBus();
});

Deno.test("legacy instances: subscribing one instance twice is refused; after unsubscribe it subscribes again under the same names", async () => {
  await using broker = new MemoryBroker({ logger: silentLogger });
  class Worker {
    @broker.subscriber("jobs")
    handle(_job: string): void {}
  }
  const worker = new Worker();
  const first = subscribeInstance(worker);
  assert.throws(() => subscribeInstance(worker), refusedInstance(/Worker is already subscribed/));
  assert.equal(broker.stats().subscribers, 1, "the refused call subscribed nothing");
  const other = subscribeInstance(new Worker());
  await first.unsubscribe();
  assert.equal(broker.stats().subscribers, 1);
  const again = subscribeInstance(worker);
  assert.deepEqual([first.names, other.names, again.names], [
    ["Worker.handle"],
    ["Worker.handle#2"],
    ["Worker.handle"],
  ]);
  assert.equal(broker.stats().subscribers, 2);
  await again.unsubscribe();
  await other.unsubscribe();
});

Deno.test("legacy instances: an object without decorated instance methods is refused, saying what to do", async () => {
  await using broker = new MemoryBroker({ logger: silentLogger });
  class Plain {
    handle(_job: string): void {}
  }
  class Worker {
    @broker.subscriber("jobs")
    handle(_job: string): void {}
  }
  const noMethods = refusedInstance(
    /has no instance method decorated with @eventHandler\(\) or @broker\.subscriber\(\).*pass an instance \(not the class or its prototype\)/,
  );
  assert.throws(() => subscribeInstance(new Plain()), noMethods);
  assert.throws(() => subscribeInstance(new Plain()), refusedInstance(/^instance: Plain has/));
  assert.throws(() => subscribeInstance({}), noMethods);
  assert.throws(() => subscribeInstance(Worker), noMethods);
  assert.throws(() => subscribeInstance(Worker), refusedInstance(/^instance: the class Worker/));
  assert.throws(() => subscribeInstance(Worker.prototype), noMethods);
  assert.throws(
    () => subscribeInstance(Worker.prototype),
    refusedInstance(/^instance: the prototype of Worker/),
  );
  assert.throws(
    () => subscribeInstance(42 as unknown as object),
    refusedInstance(/must be an object.*got 42/),
  );
  assert.throws(
    () => subscribeInstance(null as unknown as object),
    refusedInstance(/must be an object/),
  );
  assert.equal(broker.stats().subscribers, 0);
});

Deno.test("legacy instances: the returned handle unsubscribes every method, once, and by await using", async () => {
  await resetEventBus();
  await using broker = new MemoryBroker({ logger: silentLogger });
  class Desk {
    @broker.subscriber("desk.jobs")
    onJob(_job: string): void {}

    @eventHandler(Booked)
    onBooked(_e: Booked): void {}
  }
  const bus = initEventBus({ logger: silentLogger });
  const desk = subscribeInstance(new Desk());
  assert.equal(broker.stats().subscribers, 1);
  assert.deepEqual(bus.handlers()["legacy.instance.booked"], [{
    name: "Desk.onBooked",
    scope: "process",
  }]);
  const closing = desk.unsubscribe();
  assert.equal(desk.unsubscribe(), closing, "a second call returns the same promise");
  await closing;
  assert.equal(broker.stats().subscribers, 0);
  assert.equal(bus.handlers()["legacy.instance.booked"], undefined);
  // Withdrawn from the pending list too: the next bus does not attach it.
  await resetEventBus();
  assert.equal(
    initEventBus({ logger: silentLogger }).handlers()["legacy.instance.booked"],
    undefined,
  );
  {
    await using _scoped = subscribeInstance(new Desk());
    assert.equal(broker.stats().subscribers, 1);
  }
  assert.equal(broker.stats().subscribers, 0, "await using unsubscribed at scope exit");
  await resetEventBus();
});

Deno.test("legacy instances: subscribing is all or nothing: a refused method undoes the ones before it", async () => {
  await using broker = new MemoryBroker({ logger: silentLogger });
  class Twice {
    @broker.subscriber("jobs", { name: "same" })
    first(_job: string): void {}

    @broker.subscriber("jobs", { name: "same" })
    second(_job: string): void {}
  }
  const twice = new Twice();
  assert.throws(
    () => subscribeInstance(twice),
    (e: unknown) =>
      e instanceof InvalidArgumentError &&
      /already has a subscription named "same"/.test(e.message),
  );
  assert.equal(broker.stats().subscribers, 0, "the first method's subscription was undone");
  // Not marked as subscribed: the next call is refused for the same reason, not as a double.
  assert.throws(() => subscribeInstance(twice), /already has a subscription named "same"/);
});

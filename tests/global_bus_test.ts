import assert from "node:assert/strict";
import { z } from "zod";
import {
  defineEvent,
  EventBusStateError,
  eventHandler,
  EventScope,
  getEventBus,
  type Handler,
  initEventBus,
  InvalidArgumentError,
  MemoryBroker,
  resetEventBus,
  silentLogger,
  subscribeInstance,
  type SubscribeOptions,
  type Subscription,
  ValidationError,
} from "../mod.ts";
import { countdown, deferred, withDeadline } from "./_deferred.ts";

const DEADLINE = 5_000;

const Conversion = defineEvent({
  type: "test.autoconversion.event",
  scope: EventScope.PROCESS,
  source: "/test",
  data: z.object({ value: z.number().int() }),
});
type Conversion = InstanceType<typeof Conversion>;

const Detailed = defineEvent({
  type: "test.detailed.event",
  scope: EventScope.PROCESS,
  source: "/test",
  data: z.object({ orderId: z.string(), amount: z.number(), items: z.array(z.string()) }),
});

// Declared at module level, before any bus exists: they wait in the pending list.
const received: Conversion[] = [];
let arrived = countdown(1);
const onConversion = eventHandler(Conversion)(function onConversion(e) {
  received.push(e);
  arrived.hit();
});

const staticCalls: number[] = [];
const instanceCalls: string[] = [];
let methodCalls = countdown(1);

class Service {
  constructor(readonly label: string) {}

  @eventHandler(Detailed)
  static audit(e: InstanceType<typeof Detailed>): void {
    staticCalls.push(e.data.amount);
    methodCalls.hit();
  }

  @eventHandler(Detailed)
  record(e: InstanceType<typeof Detailed>): void {
    instanceCalls.push(`${this.label}:${e.data.orderId}`);
    methodCalls.hit();
  }
}

async function freshBus() {
  await resetEventBus();
  received.length = 0;
  staticCalls.length = 0;
  instanceCalls.length = 0;
  const bus = initEventBus({ logger: silentLogger });
  await bus.start();
  return bus;
}

Deno.test("global: getEventBus before initEventBus throws a clear error", async () => {
  await resetEventBus();
  assert.throws(
    () => getEventBus(),
    (e: unknown) => e instanceof EventBusStateError && e.code === "NOT_INITIALIZED",
  );
});

Deno.test("global: pending handlers are attached exactly once; a second init is an error", async () => {
  const bus = await freshBus();
  assert.throws(
    () => initEventBus(),
    (e: unknown) => e instanceof EventBusStateError && e.code === "ALREADY_INITIALIZED",
  );
  assert.equal(getEventBus(), bus);
  assert.deepEqual(bus.handlers()["test.autoconversion.event"], [{
    name: "onConversion",
    scope: "process",
  }]);
  arrived = countdown(1);
  await bus.publish(new Conversion({ data: { value: 42 } }));
  await withDeadline(arrived.reached, DEADLINE, "delivery");
  // FIFO on one channel: a second event arriving alone proves the first was not delivered twice.
  arrived = countdown(1);
  await bus.publish(new Conversion({ data: { value: 43 } }));
  await withDeadline(arrived.reached, DEADLINE, "delivery");
  assert.deepEqual(received.map((e) => e.data.value), [42, 43]);
  assert.ok(received[0] instanceof Conversion);
  await resetEventBus();
});

Deno.test("global: several events to one handler arrive in order", async () => {
  const bus = await freshBus();
  arrived = countdown(3);
  for (const value of [10, 20, 30]) await bus.publish(new Conversion({ data: { value } }));
  await withDeadline(arrived.reached, DEADLINE, "three events");
  assert.deepEqual(received.map((e) => e.data.value), [10, 20, 30]);
  await resetEventBus();
});

Deno.test("global: a direct call with a plain CloudEvents object converts it; an instance passes through", () => {
  received.length = 0;
  arrived = countdown(2);
  onConversion({
    specversion: "1.0",
    id: "p1",
    source: "/direct",
    type: "test.autoconversion.event",
    data: { value: 7 },
  });
  const instance = new Conversion({ data: { value: 8 } });
  onConversion(instance);
  assert.ok(received[0] instanceof Conversion);
  assert.equal(received[0].data.value, 7);
  assert.equal(received[0].id, "p1");
  assert.equal(received[1], instance);
});

Deno.test("global: a direct call with a wrong payload or a non-object is rejected", () => {
  assert.throws(
    () =>
      onConversion({
        specversion: "1.0",
        id: "p",
        source: "/d",
        type: "test.autoconversion.event",
        data: { value: "x" },
      }),
    ValidationError,
  );
  assert.throws(
    () =>
      onConversion({
        specversion: "1.0",
        id: "p",
        source: "/d",
        type: "other.type",
        data: { value: 1 },
      }),
    ValidationError,
  );
  assert.throws(() => onConversion("text" as never), InvalidArgumentError);
  assert.throws(() => onConversion(null as never), InvalidArgumentError);
});

Deno.test("global: decorators on static and instance methods receive typed events", async () => {
  const bus = await freshBus();
  // Instances made after init attach at construction.
  new Service("a");
  new Service("b");
  methodCalls = countdown(3);
  await bus.publish(
    new Detailed({ data: { orderId: "ORD-123", amount: 99.99, items: ["x", "y"] } }),
  );
  await withDeadline(methodCalls.reached, DEADLINE, "static + two instances");
  assert.deepEqual(staticCalls, [99.99]);
  assert.deepEqual(instanceCalls.sort(), ["a:ORD-123", "b:ORD-123"]);
  const names = bus.handlers()["test.detailed.event"].map((h) => h.name).sort();
  assert.deepEqual(names, ["Service.audit", "Service.record", "Service.record#2"]);
  await resetEventBus();
});

Deno.test("global: handlers declared after init attach at once", async () => {
  const bus = await freshBus();
  const Late = defineEvent({
    type: "test.late",
    scope: EventScope.PROCESS,
    source: "/l",
    data: z.object({}),
  });
  const got = deferred();
  eventHandler(Late)(function late() {
    got.resolve();
  });
  await bus.publish(new Late({ data: {} }));
  await withDeadline(got.promise, DEADLINE, "late handler");
  await resetEventBus();
});

Deno.test("global: eventHandler rejects a non-definition and bad options at declaration", () => {
  assert.throws(() => eventHandler("order.created" as never), InvalidArgumentError);
  assert.throws(() => eventHandler(Conversion, { concurrency: 0 }), InvalidArgumentError);
  assert.throws(() => eventHandler(Conversion, { name: "" }), InvalidArgumentError);
});

Deno.test("global: an anonymous handler is named by the broker", async () => {
  await resetEventBus();
  const Anon = defineEvent({
    type: "test.anon",
    scope: EventScope.PROCESS,
    source: "/a",
    data: z.object({}),
  });
  const got = deferred();
  eventHandler(Anon)((_e) => got.resolve());
  const bus = initEventBus({ logger: silentLogger });
  assert.match(bus.handlers()["test.anon"][0].name, /^anonymous#\d+$/);
  await bus.start();
  await bus.publish(new Anon({ data: {} }));
  await withDeadline(got.promise, DEADLINE, "anonymous handler");
  await resetEventBus();
});

Deno.test("global: when a broker refuses a declared handler, initEventBus throws and sets no bus", async () => {
  await resetEventBus();
  const Refused = defineEvent({
    type: "test.refused",
    scope: EventScope.PROCESS,
    source: "/r",
    data: z.object({}),
  });
  eventHandler(Refused)(function refused() {});
  class Picky extends MemoryBroker {
    override subscribe<T>(
      channel: string,
      handler: Handler<T>,
      options?: SubscribeOptions,
    ): Subscription {
      if (channel === "events.test.refused") throw new InvalidArgumentError("channel", "refused");
      return super.subscribe(channel, handler, options);
    }
  }
  assert.throws(
    () => initEventBus({ process: new Picky({ logger: silentLogger }) }),
    InvalidArgumentError,
  );
  assert.throws(() => getEventBus(), EventBusStateError);
});

const Legacy = defineEvent({
  type: "test.legacy.static",
  scope: EventScope.PROCESS,
  source: "/legacy",
  data: z.object({ n: z.number() }),
});
type Legacy = InstanceType<typeof Legacy>;

Deno.test("global: a legacy decorator call (target, key, descriptor) on a static method attaches it bound to the class", async () => {
  await resetEventBus();
  const seen: string[] = [];
  let calls = countdown(1);
  class Ledger {
    static readonly label = "ledger";
    static book(e: Legacy): void {
      seen.push(`${this.label}:${e.data.n}`);
      calls.hit();
    }
  }
  // What `experimentalDecorators` code does for `@eventHandler(Legacy) static book`.
  const descriptor = eventHandler(Legacy)(
    Ledger,
    "book",
    Object.getOwnPropertyDescriptor(Ledger, "book")!,
  );
  Object.defineProperty(Ledger, "book", descriptor);
  const bus = initEventBus({ logger: silentLogger });
  assert.deepEqual(bus.handlers()["test.legacy.static"], [{
    name: "Ledger.book",
    scope: "process",
  }]);
  await bus.start();
  await bus.publish(new Legacy({ data: { n: 1 } }));
  await withDeadline(calls.reached, DEADLINE, "the legacy static handler");
  // Called directly, the decorated method converts a CloudEvents JSON object.
  calls = countdown(1);
  (Ledger.book as (input: unknown) => void)({
    specversion: "1.0",
    id: "d1",
    source: "/direct",
    type: "test.legacy.static",
    data: { n: 2 },
  });
  assert.deepEqual(seen, ["ledger:1", "ledger:2"]);
  await resetEventBus();
});

const Filed = defineEvent({
  type: "test.legacy.instance",
  scope: EventScope.PROCESS,
  source: "/legacy",
  data: z.object({ n: z.number() }),
});
type Filed = InstanceType<typeof Filed>;

Deno.test("global: a legacy decorator call (prototype, key, descriptor) on an instance method records it; subscribeInstance attaches each instance", async () => {
  await resetEventBus();
  const seen: string[] = [];
  const calls = countdown(2);
  class Desk {
    constructor(readonly label: string) {}
    record(e: Filed): void {
      seen.push(`${this.label}:${e.data.n}`);
      calls.hit();
    }
  }
  const proto = Desk.prototype;
  // What `experimentalDecorators` code does for `@eventHandler(Filed, { name: "desk" }) record`.
  const descriptor = eventHandler(Filed, { name: "desk" })(
    proto,
    "record",
    Object.getOwnPropertyDescriptor(proto, "record")!,
  );
  Object.defineProperty(proto, "record", descriptor);
  const bus = initEventBus({ logger: silentLogger });
  assert.equal(bus.handlers()["test.legacy.instance"], undefined, "nothing before an instance");
  const a = subscribeInstance(new Desk("a"));
  const b = subscribeInstance(new Desk("b"));
  assert.deepEqual(bus.handlers()["test.legacy.instance"], [
    { name: "desk", scope: "process" },
    { name: "desk#2", scope: "process" },
  ]);
  await bus.start();
  await bus.publish(new Filed({ data: { n: 5 } }));
  await withDeadline(calls.reached, DEADLINE, "both legacy instances");
  assert.deepEqual(seen.sort(), ["a:5", "b:5"]);
  await a.unsubscribe();
  await b.unsubscribe();
  assert.equal(bus.handlers()["test.legacy.instance"], undefined);
  await resetEventBus();
});

Deno.test("global: a legacy decorator call on an accessor or a property is refused, naming it", async () => {
  await resetEventBus();
  class Desk {
    get total(): number {
      return 1;
    }
  }
  const decorate = eventHandler(Legacy, { name: "refusedLegacy" }) as unknown as (
    target: object,
    key: string,
    descriptor: PropertyDescriptor | undefined,
  ) => unknown;
  const proto = Desk.prototype;
  assert.throws(
    () => decorate(proto, "total", Object.getOwnPropertyDescriptor(proto, "total")),
    (e: unknown) =>
      e instanceof InvalidArgumentError && e.argument === "Desk.total" &&
      /methods only/.test(e.message),
  );
  assert.throws(
    () => decorate(proto, "field", undefined),
    (e: unknown) => e instanceof InvalidArgumentError && e.argument === "Desk.field",
  );
  const bus = initEventBus({ logger: silentLogger });
  const names = Object.values(bus.handlers()).flat().map((h) => h.name);
  assert.ok(!names.includes("refusedLegacy"), "a refused declaration is not kept");
  await resetEventBus();
});

Deno.test("global: subscribeInstance on an instance TC39 decorators attached is refused, attaching nothing twice", async () => {
  await resetEventBus();
  class Clerk {
    @eventHandler(Filed, { name: "clerk" })
    file(_e: Filed): void {}
  }
  const clerk = new Clerk();
  const bus = initEventBus({ logger: silentLogger });
  assert.throws(
    () => subscribeInstance(clerk),
    (e: unknown) =>
      e instanceof InvalidArgumentError && e.argument === "instance" &&
      /Clerk was subscribed when it was constructed \(TC39 decorators\)/.test(e.message),
  );
  assert.deepEqual(bus.handlers()["test.legacy.instance"], [{ name: "clerk", scope: "process" }]);
  await resetEventBus();
});

Deno.test("global: a TC39 decorator on something other than a method is refused", () => {
  const context = {
    kind: "field",
    name: "total",
    static: false,
  } as unknown as ClassMethodDecoratorContext;
  assert.throws(
    () => eventHandler(Legacy)(function total() {}, context),
    (e: unknown) =>
      e instanceof InvalidArgumentError && e.argument === "total" &&
      /methods only, not a field/.test(e.message),
  );
});

import assert from "node:assert/strict";
import {
  type Handler,
  InvalidArgumentError,
  MemoryBroker,
  type MessageContext,
  silentLogger,
  subscribeInstance,
} from "../mod.ts";
import { countdown, withDeadline } from "./_deferred.ts";

const DEADLINE = 5_000;

Deno.test("subscriber: a TC39 decorator on an instance method subscribes each instance under a distinct name", async () => {
  await using broker = new MemoryBroker({ logger: silentLogger });
  const seen: string[] = [];
  const calls = countdown(3);
  class Worker {
    constructor(readonly label: string) {}

    @broker.subscriber("jobs")
    handle(job: string, context: MessageContext): void {
      seen.push(`${this.label}:${job}:${context.subscription}`);
      calls.hit();
    }
  }
  new Worker("a");
  new Worker("b");
  new Worker("c");
  await broker.start();
  await broker.publish("J-1", "jobs");
  await withDeadline(calls.reached, DEADLINE, "three instances");
  assert.deepEqual(seen.sort(), [
    "a:J-1:Worker.handle",
    "b:J-1:Worker.handle#2",
    "c:J-1:Worker.handle#3",
  ]);
  assert.equal(broker.stats().subscribers, 3);
});

Deno.test("subscriber: instance methods of one name in two classes subscribe side by side", async () => {
  await using broker = new MemoryBroker({ logger: silentLogger });
  const seen: string[] = [];
  const calls = countdown(3);
  class Billing {
    @broker.subscriber("orders")
    handle(_order: string, context: MessageContext): void {
      seen.push(context.subscription);
      calls.hit();
    }
  }
  class Shipping {
    @broker.subscriber("orders")
    handle(_order: string, context: MessageContext): void {
      seen.push(context.subscription);
      calls.hit();
    }
  }
  new Billing();
  new Shipping();
  new Shipping();
  await broker.start();
  await broker.publish("O-1", "orders");
  await withDeadline(calls.reached, DEADLINE, "every instance of both classes");
  assert.deepEqual(seen.sort(), ["Billing.handle", "Shipping.handle", "Shipping.handle#2"]);
});

Deno.test("subscriber: a TC39 decorator on a static method subscribes it once, bound to the class", async () => {
  await using broker = new MemoryBroker({ logger: silentLogger });
  const seen: string[] = [];
  const calls = countdown(1);
  class Jobs {
    static readonly label = "jobs";

    @broker.subscriber("static.jobs", { name: "runner" })
    static run(job: string, context: MessageContext): void {
      seen.push(`${this.label}:${job}:${context.subscription}`);
      calls.hit();
    }
  }
  await broker.start();
  await broker.publish("J-2", "static.jobs");
  await withDeadline(calls.reached, DEADLINE, "the static handler");
  assert.deepEqual(seen, ["jobs:J-2:runner"]);
  assert.equal(Jobs.label, "jobs");
});

Deno.test("subscriber: a legacy decorator call (target, key, descriptor) on a static method subscribes it bound to the class", async () => {
  await using broker = new MemoryBroker({ logger: silentLogger });
  const seen: string[] = [];
  const calls = countdown(1);
  class Jobs {
    static readonly label = "legacy";
    static run(job: string, context: MessageContext): void {
      seen.push(`${this.label}:${job}:${context.subscription}`);
      calls.hit();
    }
  }
  // What `experimentalDecorators` code does for `@broker.subscriber("legacy.jobs") static run`.
  const result = broker.subscriber("legacy.jobs")(
    Jobs,
    "run",
    Object.getOwnPropertyDescriptor(Jobs, "run") as TypedPropertyDescriptor<Handler>,
  );
  assert.equal(result, undefined, "the method is left as it is");
  await broker.start();
  await broker.publish("J-3", "legacy.jobs");
  await withDeadline(calls.reached, DEADLINE, "the legacy static handler");
  assert.deepEqual(seen, ["legacy:J-3:Jobs.run"]);
});

Deno.test("subscriber: a legacy decorator call (prototype, key, descriptor) on an instance method records it; subscribeInstance subscribes each instance", async () => {
  await using broker = new MemoryBroker({ logger: silentLogger });
  const seen: string[] = [];
  const calls = countdown(2);
  class Worker {
    constructor(readonly label: string) {}
    handle(job: string, context: MessageContext): void {
      seen.push(`${this.label}:${job}:${context.subscription}`);
      calls.hit();
    }
  }
  const proto = Worker.prototype;
  const handle = proto.handle;
  // What `experimentalDecorators` code does for `@broker.subscriber("legacy.jobs") handle`.
  const result = broker.subscriber("legacy.jobs")(
    proto,
    "handle",
    Object.getOwnPropertyDescriptor(proto, "handle") as TypedPropertyDescriptor<Handler>,
  );
  assert.equal(result, undefined, "the method is left as it is");
  assert.equal(proto.handle, handle);
  assert.equal(broker.stats().subscribers, 0, "nothing is subscribed before an instance is");
  const a = subscribeInstance(new Worker("a"));
  const b = subscribeInstance(new Worker("b"));
  assert.deepEqual([a.names, b.names], [["Worker.handle"], ["Worker.handle#2"]]);
  await broker.start();
  await broker.publish("J-4", "legacy.jobs");
  await withDeadline(calls.reached, DEADLINE, "both legacy instances");
  assert.deepEqual(seen.sort(), ["a:J-4:Worker.handle", "b:J-4:Worker.handle#2"]);
  await a.unsubscribe();
  assert.equal(broker.stats().subscribers, 1);
  await b.unsubscribe();
  assert.equal(broker.stats().subscribers, 0);
});

Deno.test("subscriber: a legacy decorator call on a property or an accessor is refused and subscribes nothing", async () => {
  await using broker = new MemoryBroker({ logger: silentLogger });
  class Worker {
    get total(): number {
      return 1;
    }
  }
  const decorate = broker.subscriber("refused.jobs") as unknown as (
    target: object,
    key: string,
    descriptor: PropertyDescriptor | undefined,
  ) => unknown;
  const proto = Worker.prototype;
  assert.throws(
    () => decorate(proto, "total", Object.getOwnPropertyDescriptor(proto, "total")),
    (e: unknown) =>
      e instanceof InvalidArgumentError && e.argument === "Worker.total" &&
      /methods only/.test(e.message),
  );
  assert.throws(
    () => decorate(proto, "field", undefined),
    (e: unknown) =>
      e instanceof InvalidArgumentError && e.argument === "Worker.field" &&
      /methods only/.test(e.message),
  );
  assert.equal(broker.stats().subscribers, 0);
});

Deno.test("subscriber: subscribeInstance on an instance TC39 decorators subscribed is refused, subscribing nothing twice", async () => {
  await using broker = new MemoryBroker({ logger: silentLogger });
  class Worker {
    @broker.subscriber("tc39.jobs")
    handle(_job: string): void {}
  }
  const worker = new Worker();
  assert.equal(broker.stats().subscribers, 1);
  assert.throws(
    () => subscribeInstance(worker),
    (e: unknown) =>
      e instanceof InvalidArgumentError && e.argument === "instance" &&
      /Worker was subscribed when it was constructed \(TC39 decorators\).*drop the call/.test(
        e.message,
      ),
  );
  assert.equal(broker.stats().subscribers, 1);
});

Deno.test("subscriber: a TC39 decorator on something other than a method is refused", () => {
  const broker = new MemoryBroker({ logger: silentLogger });
  const context = {
    kind: "getter",
    name: "total",
    static: false,
  } as unknown as ClassMethodDecoratorContext;
  assert.throws(
    () => broker.subscriber("getters")(function total() {}, context),
    (e: unknown) =>
      e instanceof InvalidArgumentError && e.argument === "total" &&
      /methods only, not a getter/.test(e.message),
  );
  assert.equal(broker.stats().subscribers, 0);
});

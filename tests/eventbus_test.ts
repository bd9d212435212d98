import assert from "node:assert/strict";
import { z } from "zod";
import {
  type Broker,
  CloudEvent,
  defineEvent,
  type DropEvent,
  EventBus,
  EventBusError,
  EventScope,
  type Handler,
  HandlerErrorEvent,
  type HandlerFailure,
  InvalidArgumentError,
  MemoryBroker,
  type MessageContext,
  NotStartedError,
  type PublishOptions,
  RejectMessage,
  silentLogger,
  type StateChangeEvent,
  type SubscribeOptions,
  type Subscription,
  ValidationError,
} from "../mod.ts";
import { countdown, deferred, withDeadline } from "./_deferred.ts";
import { recordingLogger } from "./_logger.ts";

const DEADLINE = 5_000;

const OrderCreated = defineEvent({
  type: "test.order.created",
  scope: EventScope.PROCESS,
  source: "/orders",
  data: z.object({ orderId: z.string(), amount: z.number(), items: z.array(z.string()) }),
});

const UserJoined = defineEvent({
  type: "test.user.joined",
  source: "/users",
  data: z.object({ userId: z.string() }),
});

/** A broker that records every publish and subscribe it sees, delegating to a MemoryBroker. */
class SpyBroker extends MemoryBroker {
  published: string[] = [];
  subscribed: string[] = [];
  override publish(message: unknown, channel: string, options?: PublishOptions): Promise<void> {
    this.published.push(channel);
    return super.publish(message, channel, options);
  }
  override subscribe<T>(
    channel: string,
    handler: Handler<T>,
    options?: SubscribeOptions,
  ): Subscription {
    this.subscribed.push(channel);
    return super.subscribe(channel, handler, options);
  }
}

function quietBus(options: ConstructorParameters<typeof EventBus>[0] = {}): EventBus {
  return new EventBus({ logger: silentLogger, ...options });
}

Deno.test("bus: a typed handler receives a typed event with the right field types", async () => {
  await using bus = quietBus();
  const got = deferred<InstanceType<typeof OrderCreated>>();
  bus.subscribe(OrderCreated, function onOrder(e) {
    got.resolve(e);
  });
  await bus.start();
  await bus.publish(
    new OrderCreated({ data: { orderId: "ORD-1", amount: 99.99, items: ["a", "b"] } }),
  );
  const e = await withDeadline(got.promise, DEADLINE, "handler call");
  assert.ok(e instanceof OrderCreated);
  assert.equal(typeof e.data.orderId, "string");
  assert.equal(e.data.amount, 99.99);
  assert.deepEqual(e.data.items, ["a", "b"]);
});

Deno.test("bus: several events to one handler arrive in publish order", async () => {
  await using bus = quietBus();
  const seen: number[] = [];
  const done = countdown(50);
  bus.subscribe(OrderCreated, function collect(e) {
    seen.push(e.data.amount);
    done.hit();
  });
  await bus.start();
  for (let i = 0; i < 50; i++) {
    await bus.publish(new OrderCreated({ data: { orderId: `O${i}`, amount: i, items: [] } }));
  }
  await withDeadline(done.reached, DEADLINE, "50 events");
  assert.deepEqual(seen, Array.from({ length: 50 }, (_, i) => i));
});

Deno.test("bus: two event types each reach only their own handler", async () => {
  await using bus = quietBus();
  const orders: string[] = [];
  const users: string[] = [];
  const done = countdown(2);
  bus.subscribe(OrderCreated, function onOrder(e) {
    orders.push(e.type);
    done.hit();
  });
  bus.subscribe(UserJoined, function onUser(e) {
    users.push(e.type);
    done.hit();
  });
  await bus.start();
  await bus.publish(new OrderCreated({ data: { orderId: "1", amount: 1, items: [] } }));
  await bus.publish(new UserJoined({ data: { userId: "u1" } }));
  await withDeadline(done.reached, DEADLINE, "both handlers");
  assert.deepEqual(orders, ["test.order.created"]);
  assert.deepEqual(users, ["test.user.joined"]);
});

Deno.test("bus: scope routing: PROCESS events only on the process broker, APP only on the app broker", async () => {
  const processBroker = new SpyBroker({ logger: silentLogger });
  const appBroker = new SpyBroker({ logger: silentLogger });
  await using bus = quietBus({ process: processBroker, app: appBroker });
  const done = countdown(2);
  bus.subscribe(OrderCreated, function a() {
    done.hit();
  });
  bus.subscribe(UserJoined, function b() {
    done.hit();
  });
  assert.deepEqual(processBroker.subscribed, ["events.test.order.created"]);
  assert.deepEqual(appBroker.subscribed, ["events.test.user.joined"]);
  await bus.start();
  await bus.publish(new OrderCreated({ data: { orderId: "1", amount: 1, items: [] } }));
  await bus.publish(new UserJoined({ data: { userId: "u" } }));
  await withDeadline(done.reached, DEADLINE, "routing");
  assert.deepEqual(processBroker.published, ["events.test.order.created"]);
  assert.deepEqual(appBroker.published, ["events.test.user.joined"]);
});

Deno.test("bus: a plain CloudEvent routes as APP, and a type-string handler hears both scopes", async () => {
  const processBroker = new SpyBroker({ logger: silentLogger });
  const appBroker = new SpyBroker({ logger: silentLogger });
  await using bus = quietBus({ process: processBroker, app: appBroker, channelPrefix: "x." });
  const seen: string[] = [];
  const received: unknown[] = [];
  const done = countdown(2);
  bus.subscribe("test.order.created", function any(e, ctx) {
    // Recorded, not asserted here: a failed assertion in a handler is only reported.
    received.push(e);
    seen.push(ctx.channel);
    done.hit();
  });
  await bus.start();
  await bus.publish(new OrderCreated({ data: { orderId: "1", amount: 1, items: [] } }));
  await bus.publish(new CloudEvent({ type: "test.order.created", source: "/raw" }));
  await withDeadline(done.reached, DEADLINE, "both scopes");
  assert.deepEqual(processBroker.published, ["x.test.order.created"]);
  assert.deepEqual(appBroker.published, ["x.test.order.created"]);
  assert.equal(seen.length, 2);
  assert.ok(received.every((e) => e instanceof CloudEvent));
});

Deno.test("bus: one broker as both scopes never delivers twice", async () => {
  const shared = new SpyBroker({ logger: silentLogger });
  await using bus = quietBus({ process: shared, app: shared });
  let calls = 0;
  const first = deferred();
  bus.subscribe("test.user.joined", function byType() {
    calls++;
    first.resolve();
  });
  await bus.start();
  await bus.publish(new UserJoined({ data: { userId: "u" } }));
  await withDeadline(first.promise, DEADLINE, "delivery");
  // A second, later event proves the first was not queued twice: FIFO order means
  // that once the marker arrives, any duplicate of the first would have arrived too.
  const marker = deferred();
  bus.subscribe("test.marker", function marked() {
    marker.resolve();
  });
  await bus.publish(new CloudEvent({ type: "test.marker", source: "/m" }));
  await withDeadline(marker.promise, DEADLINE, "marker");
  assert.equal(calls, 1);
  assert.equal(shared.subscribed.length, 2);
});

Deno.test("bus: extension attributes and every core attribute reach the handler unchanged", async () => {
  await using bus = quietBus();
  const got = deferred<CloudEvent>();
  bus.subscribe(UserJoined, function keep(e) {
    got.resolve(e);
  });
  await bus.start();
  const sent = new UserJoined({
    id: "evt-1",
    source: "/custom",
    subject: "u-1",
    time: "2024-05-01T10:00:00.123Z",
    dataschema: "https://example.com/schema",
    datacontenttype: "application/json",
    extensions: { tenant: "acme", priority: 3, traced: true },
    data: { userId: "u-1" },
  });
  await bus.publish(sent);
  const e = await withDeadline(got.promise, DEADLINE, "delivery");
  assert.deepEqual(e.toJSON(), sent.toJSON());
});

Deno.test("bus: a plain event whose data fails the subscribed definition is refused at publish", async () => {
  await using bus = quietBus();
  let called = false;
  bus.subscribe(UserJoined, function strict() {
    called = true;
  });
  await bus.start();
  await assert.rejects(
    bus.publish(
      new CloudEvent({ id: "bad-1", type: "test.user.joined", source: "/x", data: { userId: 42 } }),
    ),
    (error: unknown) =>
      error instanceof ValidationError && /bad-1.*data\.userId/s.test(error.message),
  );
  // A plain event that matches is accepted and reaches the typed handler.
  const handled = deferred();
  bus.subscribe(UserJoined, () => handled.resolve(), { name: "second" });
  await bus.publish(
    new CloudEvent({ id: "ok-1", type: "test.user.joined", source: "/x", data: { userId: "u" } }),
  );
  await withDeadline(handled.promise, DEADLINE, "typed handler");
  assert.equal(called, true);
});

Deno.test("bus: an incoming payload failing the schema never reaches the handler; it is dropped once and reported", async () => {
  const logger = recordingLogger();
  await using bus = new EventBus({ logger });
  const drops: DropEvent[] = [];
  const dropped = deferred();
  bus.addEventListener("drop", (event) => {
    drops.push(event as DropEvent);
    dropped.resolve();
  });
  let called = false;
  bus.subscribe(UserJoined, function strict() {
    called = true;
  });
  await bus.start();
  // As it could arrive from another service: straight onto the broker channel.
  await bus.appBroker.publish(
    new CloudEvent({ id: "bad-1", type: "test.user.joined", source: "/x", data: { userId: 42 } }),
    bus.channelFor("test.user.joined"),
  );
  await withDeadline(dropped.promise, DEADLINE, "drop report");
  assert.equal(called, false);
  assert.equal(drops.length, 1);
  assert.equal(drops[0].subscription, "strict");
  assert.match(drops[0].reason, /bad-1.*data\.userId/s);
  assert.equal(bus.appBroker.stats().dropped, 1);
  assert.equal(bus.appBroker.stats().errors, 0);
  // Reported once: one log line, not one per layer.
  assert.equal(logger.lines.filter((line) => line.includes("bad-1")).length, 1);
});

Deno.test("bus: publish before start and after stop rejects with NotStartedError", async () => {
  const bus = quietBus();
  await assert.rejects(bus.publish(new UserJoined({ data: { userId: "u" } })), NotStartedError);
  await bus.start();
  await bus.stop();
  await assert.rejects(bus.publish(new UserJoined({ data: { userId: "u" } })), NotStartedError);
});

Deno.test("bus: publish of something that is not an event rejects with a typed error", async () => {
  await using bus = quietBus();
  await bus.start();
  await assert.rejects(bus.publish({ type: "x" } as unknown as CloudEvent), InvalidArgumentError);
});

class FailingBroker extends MemoryBroker {
  constructor(private failOn: "start" | "stop", private label: string) {
    super({ logger: silentLogger });
  }
  override async start(): Promise<void> {
    if (this.failOn === "start") throw new Error(`${this.label} cannot start`);
    await super.start();
  }
  override async stop(): Promise<void> {
    await super.stop();
    if (this.failOn === "stop") throw new Error(`${this.label} cannot stop`);
  }
}

Deno.test("bus: when the app broker fails to start, the process broker is stopped again", async () => {
  const processBroker = new MemoryBroker({ logger: silentLogger });
  const bus = quietBus({ process: processBroker, app: new FailingBroker("start", "app") });
  await assert.rejects(bus.start(), /app cannot start/);
  assert.equal(processBroker.state, "stopped");
  assert.equal(bus.state, "stopped");
});

Deno.test("bus: stop stops both brokers and aggregates every failure", async () => {
  const processBroker = new FailingBroker("stop", "process");
  const appBroker = new FailingBroker("stop", "app");
  const bus = quietBus({ process: processBroker, app: appBroker });
  await bus.start();
  const error = await bus.stop().then(() => undefined, (e) => e);
  assert.ok(error instanceof AggregateError);
  assert.deepEqual(error.errors.map((e: Error) => e.message).sort(), [
    "app cannot stop",
    "process cannot stop",
  ]);
  assert.equal(processBroker.state, "stopped");
  assert.equal(appBroker.state, "stopped");
});

Deno.test("bus: request/reply through the event's scope", async () => {
  await using bus = quietBus();
  bus.subscribe(OrderCreated, function quote(e) {
    return { total: e.data.amount * 2 };
  });
  await bus.start();
  const reply = await bus.request(
    new OrderCreated({ data: { orderId: "1", amount: 21, items: [] } }),
    {
      timeout: DEADLINE,
    },
  );
  assert.deepEqual(reply, { total: 42 });
});

Deno.test("bus: handlers() lists handler names and scopes by type; unsubscribe removes them", async () => {
  const bus = quietBus();
  const sub = bus.subscribe(OrderCreated, function billing() {});
  bus.subscribe("test.user.joined", function audit() {});
  assert.deepEqual(bus.handlers(), {
    "test.order.created": [{ name: "billing", scope: "process" }],
    "test.user.joined": [{ name: "audit", scope: "process" }, { name: "audit", scope: "app" }],
  });
  await sub.unsubscribe();
  assert.deepEqual(Object.keys(bus.handlers()), ["test.user.joined"]);
});

Deno.test("bus: middleware runs around publish and handler calls, first added outermost", async () => {
  await using bus = quietBus();
  const trace: string[] = [];
  const handled = deferred();
  bus.use({
    async publish(call, next) {
      trace.push(`outer publish ${call.scope} ${call.channel}`);
      await next();
      trace.push("outer publish done");
    },
    async handle(call, next) {
      trace.push(`outer handle ${call.subscription}`);
      const result = await next();
      trace.push("outer handle returned");
      if (call.subscription === "work") handled.resolve();
      return result;
    },
  }).use({
    async handle(_call, next) {
      trace.push("inner handle");
      return await next();
    },
  });
  bus.subscribe(OrderCreated, function work() {
    trace.push("handler");
  });
  await bus.start();
  await bus.publish(new OrderCreated({ data: { orderId: "1", amount: 1, items: [] } }));
  await bus.publish(new CloudEvent({ type: "test.done", source: "/d" }));
  await withDeadline(handled.promise, DEADLINE, "handlers");
  // Publish and handler chains may interleave (a broker may run the handler before
  // publish resolves), so each chain's order is checked on its own.
  assert.deepEqual(trace.filter((line) => line.includes("publish")), [
    "outer publish process events.test.order.created",
    "outer publish done",
    "outer publish app events.test.done",
    "outer publish done",
  ]);
  assert.deepEqual(trace.filter((line) => !line.includes("publish")).slice(0, 4), [
    "outer handle work",
    "inner handle",
    "handler",
    "outer handle returned",
  ]);
});

Deno.test("bus: invalid arguments throw InvalidArgumentError", () => {
  const bus = quietBus();
  assert.throws(() => bus.subscribe({} as never, () => {}), InvalidArgumentError);
  assert.throws(() => bus.subscribe("", function f() {}), InvalidArgumentError);
  assert.throws(() => bus.subscribe(OrderCreated, 42 as never), InvalidArgumentError);
  assert.throws(() => bus.use({} as never), InvalidArgumentError);
  assert.throws(() => new EventBus({ channelPrefix: "a b" }), InvalidArgumentError);
  assert.throws(() => new EventBus({ app: {} as Broker }), InvalidArgumentError);
});

Deno.test("bus: the handler context carries the channel and attempt", async () => {
  await using bus = quietBus();
  const got = deferred<MessageContext>();
  bus.subscribe(UserJoined, function ctx(_e, context) {
    got.resolve(context);
  });
  await bus.start();
  const e = new UserJoined({ data: { userId: "u" } });
  await bus.publish(e, { headers: { "x-trace": "t1" } });
  const context = await withDeadline(got.promise, DEADLINE, "delivery");
  assert.equal(context.channel, "events.test.user.joined");
  assert.equal(context.messageId, e.id);
  assert.equal(context.attempt, 1);
  assert.equal(context.headers["x-trace"], "t1");
});

Deno.test("bus: a type-string subscription refused by the second broker leaves nothing behind", () => {
  class Refusing extends MemoryBroker {
    override subscribe<T>(_c: string, _h: Handler<T>, _o?: SubscribeOptions): Subscription {
      throw new InvalidArgumentError("name", "refused");
    }
  }
  const processBroker = new MemoryBroker({ logger: silentLogger });
  const bus = quietBus({ process: processBroker, app: new Refusing({ logger: silentLogger }) });
  assert.throws(() => bus.subscribe("test.x", function both() {}), InvalidArgumentError);
  assert.equal(processBroker.stats().subscribers, 0);
  assert.deepEqual(bus.handlers(), {});
});

Deno.test("bus: an anonymous handler gets the broker's generated name everywhere", async () => {
  const failures: HandlerFailure[] = [];
  const reported = deferred();
  await using bus = quietBus({
    onError: (f) => {
      failures.push(f);
      reported.resolve();
    },
  });
  const sub = bus.subscribe(UserJoined, (_e) => {
    throw new Error("boom");
  });
  assert.match(sub.name, /^anonymous#\d+$/);
  assert.deepEqual(bus.handlers()["test.user.joined"], [{ name: sub.name, scope: "app" }]);
  await bus.start();
  await bus.publish(new UserJoined({ data: { userId: "u" } }));
  await withDeadline(reported.promise, DEADLINE, "failure");
  assert.equal(failures[0].subscription, sub.name);
});

Deno.test("bus: start/stop calls are serialized and the last one decides the state", async () => {
  const bus = quietBus();
  await bus.start();
  const stopping = bus.stop();
  await assert.rejects(bus.publish(new UserJoined({ data: { userId: "u" } })), NotStartedError);
  const starting = bus.start();
  await Promise.all([stopping, starting]);
  assert.equal(bus.state, "started");
  await bus.publish(new UserJoined({ data: { userId: "u" } }));
  const a = bus.stop();
  const b = bus.start();
  const c = bus.stop();
  await Promise.all([a, b, c]);
  assert.equal(bus.state, "stopped");
  assert.equal(bus.processBroker.state, "stopped");
  assert.equal(bus.appBroker.state, "stopped");
});

Deno.test("bus: stop with bad options is refused before anything stops", async () => {
  const bus = quietBus();
  await bus.start();
  await assert.rejects(bus.stop({ timeout: -1 }), InvalidArgumentError);
  await assert.rejects(bus.stop({ timeout: 2 ** 31 }), InvalidArgumentError);
  assert.equal(bus.state, "started");
  assert.equal(bus.processBroker.state, "started");
  await bus.stop();
});

Deno.test("bus: a logger without the console methods is refused", () => {
  assert.throws(() => new EventBus({ logger: 42 as never }), InvalidArgumentError);
  assert.throws(() => new EventBus({ logger: { info() {} } as never }), InvalidArgumentError);
});

Deno.test("bus: middleware must call next() exactly once, and publish hooks wrap requests", async () => {
  await using bus = quietBus();
  const seen: string[] = [];
  bus.subscribe(OrderCreated, function quote(e) {
    return e.data.amount + 1;
  });
  await bus.start();
  const skipper = quietBus();
  skipper.use({ publish: () => Promise.resolve() });
  await skipper.start();
  await assert.rejects(
    skipper.publish(new UserJoined({ data: { userId: "u" } })),
    (e: unknown) => e instanceof EventBusError && e.code === "MIDDLEWARE",
  );
  await skipper.stop();
  const twice = quietBus();
  twice.use({
    async publish(_call, next) {
      await next();
      await next();
    },
  });
  await twice.start();
  await assert.rejects(
    twice.publish(new UserJoined({ data: { userId: "u" } })),
    (e: unknown) => e instanceof EventBusError && e.code === "MIDDLEWARE",
  );
  await twice.stop();
  const thrower = quietBus();
  thrower.use({
    publish() {
      throw new Error("sync throw");
    },
  });
  await thrower.start();
  const result = thrower.publish(new UserJoined({ data: { userId: "u" } }));
  assert.ok(result instanceof Promise, "a throwing hook still yields a promise");
  await assert.rejects(result, /sync throw/);
  await thrower.stop();
  bus.use({
    async publish(call, next) {
      seen.push(call.channel);
      await next();
    },
  });
  const reply = await bus.request(
    new OrderCreated({ data: { orderId: "1", amount: 41, items: [] } }),
    {
      timeout: DEADLINE,
    },
  );
  assert.equal(reply, 42);
  assert.deepEqual(seen, ["events.test.order.created"]);
});

Deno.test("bus: a logger that throws leaves the brokers' state the bus's own", async () => {
  const thrower = (): never => {
    throw new Error("the logger is broken");
  };
  const brokenLogger = { debug: thrower, info: thrower, warn: thrower, error: thrower };
  const processBroker = new MemoryBroker({ logger: silentLogger });
  const appBroker = new MemoryBroker({ logger: silentLogger });
  const bus = new EventBus({ process: processBroker, app: appBroker, logger: brokenLogger });
  await bus.start();
  assert.equal(bus.state, "started");
  assert.equal(processBroker.state, "started");
  assert.equal(appBroker.state, "started");
  await bus.stop();
  assert.equal(bus.state, "stopped");
  assert.equal(processBroker.state, "stopped");
  assert.equal(appBroker.state, "stopped");
});

Deno.test("bus: its listeners that throw or reject are logged; handling goes on", async () => {
  const logger = recordingLogger();
  const bothLogged = deferred();
  const error = logger.error;
  logger.error = (message: string) => {
    error(message);
    const listeners = logger.lines.filter((line) => /event listener threw/.test(line));
    if (listeners.length === 2) bothLogged.resolve();
  };
  await using bus = new EventBus({ logger });
  const handled = deferred<string>();
  bus.subscribe(UserJoined, function greet(event) {
    if (event.data.userId === "boom") throw new Error("handler failed");
    handled.resolve(event.data.userId);
  });
  bus.addEventListener("error", () => {
    throw new Error("error listener broken");
  });
  const removed = () => {
    throw new Error("a removed listener must not run");
  };
  bus.addEventListener("error", removed);
  bus.removeEventListener("error", removed);
  await bus.start();
  bus.addEventListener("statechange", () => Promise.reject(new Error("rejected")), { once: true });
  await bus.publish(new UserJoined({ data: { userId: "boom" } }));
  await bus.publish(new UserJoined({ data: { userId: "ada" } }));
  assert.equal(await withDeadline(handled.promise, DEADLINE, "the next event"), "ada");
  await bus.stop();
  await withDeadline(bothLogged.promise, DEADLINE, "both listeners' failures logged");
  const logged = logger.lines.filter((line) => /event listener threw/.test(line));
  assert.deepEqual(logged.sort(), [
    `error a "error" event listener threw`,
    `error a "statechange" event listener threw`,
  ]);
});

Deno.test("bus: consume yields typed events through a ReadableStream; leaving the loop unsubscribes", async () => {
  await using bus = quietBus();
  const orders = bus.consume(OrderCreated, { name: "audit" });
  assert.deepEqual(bus.handlers(), { "test.order.created": [{ name: "audit", scope: "process" }] });
  await bus.start();
  for (let i = 1; i <= 3; i++) {
    await bus.publish(new OrderCreated({ data: { orderId: `O${i}`, amount: i, items: [] } }));
  }
  const amounts: number[] = [];
  const classes: boolean[] = [];
  for await (const order of orders) {
    classes.push(order instanceof OrderCreated);
    const amount: number = order.data.amount; // typed by the definition's schema
    amounts.push(amount);
    if (amounts.length === 2) break;
  }
  assert.deepEqual(amounts, [1, 2]);
  assert.deepEqual(classes, [true, true]);
  assert.deepEqual(bus.handlers(), {}, "leaving the loop unsubscribed");
  assert.equal(bus.processBroker.stats().subscribers, 0);
});

Deno.test("bus: consume of a type string reads plain CloudEvents of both scopes, and unsubscribes both", async () => {
  await using bus = quietBus();
  const events = bus.consume("test.order.created", { name: "any" });
  await bus.start();
  const typed = new OrderCreated({ data: { orderId: "1", amount: 1, items: [] } });
  const plain = new CloudEvent({ type: "test.order.created", source: "/raw" });
  await bus.publish(typed);
  await bus.publish(plain);
  const ids: string[] = [];
  for await (const event of events) {
    assert.ok(event instanceof CloudEvent);
    ids.push(event.id);
    if (ids.length === 2) break;
  }
  assert.deepEqual(ids.sort(), [typed.id, plain.id].sort());
  assert.equal(bus.processBroker.stats().subscribers, 0);
  assert.equal(bus.appBroker.stats().subscribers, 0);
});

Deno.test("bus: subscribe with a signal unsubscribes when it aborts; an aborted one at once", async () => {
  await using bus = quietBus();
  const controller = new AbortController();
  const got: string[] = [];
  const first = deferred();
  bus.subscribe(UserJoined, function abortable(e) {
    got.push(e.data.userId);
    first.resolve();
  }, { signal: controller.signal });
  bus.subscribe("test.order.created", function everywhere() {}, { signal: controller.signal });
  const witness = countdown(3);
  bus.subscribe(UserJoined, function witnessing() {
    witness.hit();
  });
  await bus.start();
  await bus.publish(new UserJoined({ data: { userId: "u1" } }));
  await withDeadline(first.promise, DEADLINE, "delivered before the abort");
  controller.abort();
  assert.deepEqual(bus.handlers(), { "test.user.joined": [{ name: "witnessing", scope: "app" }] });
  assert.equal(bus.processBroker.stats().subscribers, 0);
  assert.equal(bus.appBroker.stats().subscribers, 1);
  await bus.publish(new UserJoined({ data: { userId: "u2" } }));
  await bus.publish(new UserJoined({ data: { userId: "u3" } }));
  await withDeadline(witness.reached, DEADLINE, "the witness got all three");
  assert.deepEqual(got, ["u1"]);

  const closed = bus.subscribe(UserJoined, function never() {}, { signal: AbortSignal.abort() });
  assert.equal(closed.name, "never");
  assert.deepEqual(bus.handlers()["test.user.joined"], [{ name: "witnessing", scope: "app" }]);
  assert.throws(
    () => bus.subscribe(UserJoined, function bad() {}, { signal: {} as AbortSignal }),
    (error: unknown) => error instanceof InvalidArgumentError && error.argument === "signal",
  );
});

Deno.test("bus: error and drop events of both brokers reach the bus's listeners; statechange is the bus's own", async () => {
  const processBroker = new MemoryBroker({ logger: silentLogger });
  const appBroker = new MemoryBroker({ logger: silentLogger });
  const bus = quietBus({ process: processBroker, app: appBroker });
  const errors: HandlerErrorEvent[] = [];
  const drops: DropEvent[] = [];
  const states: string[] = [];
  const brokerStates: string[] = [];
  const errored = deferred();
  const dropped = deferred();
  bus.addEventListener("error", (event) => {
    errors.push(event as HandlerErrorEvent);
    errored.resolve();
  });
  bus.addEventListener("drop", (event) => {
    drops.push(event as DropEvent);
    dropped.resolve();
  });
  bus.addEventListener("statechange", (event) => states.push((event as StateChangeEvent).state));
  processBroker.addEventListener("statechange", (event) => {
    brokerStates.push((event as StateChangeEvent).state);
  });
  bus.subscribe(OrderCreated, function billing() {
    throw new Error("cannot bill");
  });
  bus.subscribe(UserJoined, function welcome() {
    throw new RejectMessage("not welcome");
  });
  await bus.start();
  const order = new OrderCreated({ data: { orderId: "1", amount: 1, items: [] } });
  await bus.publish(order);
  await bus.publish(new UserJoined({ data: { userId: "u" } }));
  await withDeadline(errored.promise, DEADLINE, "the process broker's error event");
  await withDeadline(dropped.promise, DEADLINE, "the app broker's drop event");
  await bus.stop();
  assert.equal(errors.length, 1);
  assert.ok(errors[0] instanceof HandlerErrorEvent);
  assert.equal(errors[0].failure.subscription, "billing");
  assert.equal(errors[0].failure.messageId, order.id);
  assert.equal((errors[0].failure.error as Error).message, "cannot bill");
  assert.equal(drops.length, 1);
  assert.equal(drops[0].channel, bus.channelFor("test.user.joined"));
  assert.equal(drops[0].subscription, "welcome");
  assert.equal(drops[0].count, 1);
  assert.match(drops[0].reason, /not welcome/);
  assert.equal(appBroker.stats().dropped, 1);
  // The brokers change state too; the bus's listeners hear the bus's transitions, once each.
  assert.deepEqual(brokerStates, ["starting", "started", "stopping", "stopped"]);
  assert.deepEqual(states, ["starting", "started", "stopping", "stopped"]);
});

/**
 * The middleware chain as composed once per `use()`: the shortcuts it takes
 * for pass-through hooks keep the rules (next() once, a publish hook must
 * call it, errors propagate), and a middleware that says it passes through
 * is skipped for that call only.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import {
  CloudEvent,
  defineEvent,
  EventBus,
  EventBusError,
  EventScope,
  type HandlerFailure,
  type Middleware,
  silentLogger,
} from "../mod.ts";
import { PASSES_THROUGH } from "../src/middleware.ts";
import { deferred, withDeadline } from "./_deferred.ts";

const DEADLINE = 5_000;

const Ping = defineEvent({
  type: "test.chain.ping",
  scope: EventScope.PROCESS,
  source: "/chain",
  data: z.object({ n: z.number() }),
});

function isMiddlewareError(error: unknown): boolean {
  return error instanceof EventBusError && error.code === "MIDDLEWARE";
}

Deno.test("chain: a publish hook may call next() after an await; one that never calls it is refused after it settles", async () => {
  await using bus = new EventBus({ logger: silentLogger });
  const received = deferred<number>();
  bus.subscribe(Ping, function pong(event) {
    received.resolve(event.data.n);
  });
  let skip = false;
  bus.use({
    async publish(_call, next) {
      await Promise.resolve();
      if (!skip) await next();
    },
  });
  await bus.start();
  await bus.publish(new Ping({ data: { n: 1 } }));
  assert.equal(await withDeadline(received.promise, DEADLINE, "the event"), 1);
  skip = true;
  await assert.rejects(bus.publish(new Ping({ data: { n: 2 } })), isMiddlewareError);
});

Deno.test("chain: next() twice is refused even when the first call returned synchronously", async () => {
  await using bus = new EventBus({ logger: silentLogger });
  let second: Promise<unknown> | undefined;
  bus.use({
    publish(_call, next) {
      const first = next();
      second = next().then(() => "accepted", (error: unknown) => error);
      return first;
    },
  });
  bus.subscribe(Ping, function pong() {});
  await bus.start();
  await bus.publish(new Ping({ data: { n: 1 } }));
  assert.ok(isMiddlewareError(await second));
});

Deno.test("chain: a handler's error propagates through pass-through hooks to the outermost one and is reported", async () => {
  const reported = deferred<HandlerFailure>();
  await using bus = new EventBus({ logger: silentLogger, onError: (f) => reported.resolve(f) });
  const seen: unknown[] = [];
  const passThrough: Middleware = { handle: (_call, next) => next() };
  bus.use({
    async handle(_call, next) {
      try {
        return await next();
      } catch (error) {
        seen.push(error);
        throw error;
      }
    },
  }).use(passThrough).use(passThrough);
  bus.subscribe(Ping, function fail() {
    throw new Error("boom");
  });
  await bus.start();
  await bus.publish(new Ping({ data: { n: 1 } }));
  const failure = await withDeadline(reported.promise, DEADLINE, "the failure");
  assert.equal((failure.error as Error).message, "boom");
  assert.equal(seen.length, 1);
  assert.equal(seen[0], failure.error);
});

Deno.test("chain: a middleware that says it passes through is skipped for that call only; the others run in order", async () => {
  await using bus = new EventBus({ logger: silentLogger });
  const trace: string[] = [];
  let idle = true;
  const sometimes = {
    publish(call: { event: CloudEvent }, next: () => Promise<void>): Promise<void> {
      trace.push(`sometimes publish ${call.event.type}`);
      return next();
    },
    handle(_call: unknown, next: () => Promise<unknown>): Promise<unknown> {
      trace.push("sometimes handle");
      return next();
    },
    [PASSES_THROUGH]: () => idle,
  };
  const tagged = new CloudEvent({ type: "test.chain.tagged", source: "/chain" });
  let handled = deferred<string>();
  bus.subscribe("test.chain.tagged", function tag(event) {
    trace.push("handler");
    handled.resolve(event.type);
  });
  bus.subscribe(Ping, function ping() {});
  // Outermost: replaces the event, to show the replacement crosses a skipped middleware.
  bus.use({
    publish(call, next) {
      trace.push(`outer publish ${call.event.type}`);
      return call.event.type === Ping.type ? next(tagged) : next();
    },
  }).use(sometimes).use({
    publish(call, next) {
      trace.push(`inner publish ${call.event.type}`);
      return next();
    },
  });

  await bus.start();
  await bus.publish(new Ping({ data: { n: 1 } }));
  assert.equal(await withDeadline(handled.promise, DEADLINE, "while idle"), "test.chain.tagged");
  assert.deepEqual(trace, [
    "outer publish test.chain.ping",
    "inner publish test.chain.tagged",
    "handler",
  ]);

  trace.length = 0;
  idle = false;
  handled = deferred<string>();
  await bus.publish(new Ping({ data: { n: 2 } }));
  await withDeadline(handled.promise, DEADLINE, "once awake");
  assert.deepEqual(trace, [
    "outer publish test.chain.ping",
    "sometimes publish test.chain.tagged",
    "inner publish test.chain.tagged",
    "sometimes handle",
    "handler",
  ]);
});

Deno.test("chain: with only idle middleware (two here) the bus calls no hook, and a publish still reaches the handler", async () => {
  await using bus = new EventBus({ logger: silentLogger });
  let calls = 0;
  const idle = () =>
    ({
      publish(_call, next) {
        calls++;
        return next();
      },
      handle(_call, next) {
        calls++;
        return next();
      },
      [PASSES_THROUGH]: () => true,
    }) as Middleware;
  bus.use(idle()).use(idle());
  const received = deferred<number>();
  bus.subscribe(Ping, function pong(event) {
    received.resolve(event.data.n);
  });
  await bus.start();
  await bus.publish(new Ping({ data: { n: 7 } }));
  assert.equal(await withDeadline(received.promise, DEADLINE, "the event"), 7);
  assert.equal(calls, 0);
});

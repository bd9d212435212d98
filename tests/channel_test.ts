/**
 * Every valid CloudEvents type is publishable: types map to channel names by
 * percent-encoding, and `publishBatch` checks a whole batch before
 * publishing any of it.
 */

import assert from "node:assert/strict";
import {
  CloudEvent,
  EventBus,
  InvalidArgumentError,
  NotStartedError,
  silentLogger,
} from "../mod.ts";
import { channelFor } from "../src/channel.ts";

Deno.test("channelFor: ordinary types are unchanged, others percent-encoded as UTF-8", () => {
  assert.equal(channelFor("events.", "order.created"), "events.order.created");
  assert.equal(channelFor("", "com.example/v1:x_y-z~!"), "com.example/v1:x_y-z~!");
  assert.equal(channelFor("events.", "a b"), "events.a%20b");
  assert.equal(channelFor("events.", "50%"), "events.50%25");
  assert.equal(channelFor("events.", "é ✓"), "events.%C3%A9%20%E2%9C%93");
  assert.equal(channelFor("events.", "tab\there"), "events.tab%09here");
  // "a b" and the literal text "a%20b" must not share a channel.
  assert.notEqual(channelFor("", "a b"), channelFor("", "a%20b"));
  assert.throws(() => channelFor("events.", ""), InvalidArgumentError);
  assert.throws(() => channelFor(1 as never, "t"), InvalidArgumentError);
});

Deno.test("bus: a type with a space is subscribed and published like any other", async () => {
  await using bus = new EventBus({ logger: silentLogger });
  const seen: string[] = [];
  const sub = bus.subscribe("order created", function record(event) {
    seen.push(event.id);
  });
  assert.equal(sub.channel, "events.order%20created");
  assert.equal(bus.channelFor("order created"), "events.order%20created");
  await bus.start();
  await bus.publish(new CloudEvent({ id: "1", type: "order created", source: "/s" }));
  await bus.stop();
  assert.deepEqual(seen, ["1"]);
  assert.throws(() => bus.subscribe("", function f() {}), InvalidArgumentError);
  assert.throws(() => bus.subscribe("bell\u0007", function f() {}), InvalidArgumentError);
});

Deno.test("bus.publishBatch publishes in order, and refuses a bad batch before publishing any", async () => {
  await using bus = new EventBus({ logger: silentLogger });
  const published: string[] = [];
  bus.use({
    async publish(call, next) {
      published.push(call.event.id);
      await next();
    },
  });
  const events = ["1", "2", "3"].map((id) => new CloudEvent({ id, type: "t", source: "/s" }));
  await assert.rejects(bus.publishBatch(events), NotStartedError);
  await bus.start();
  await bus.publishBatch(events);
  assert.deepEqual(published, ["1", "2", "3"]);

  published.length = 0;
  const error = await bus.publishBatch([events[0], { id: "fake" } as never]).then(
    () => assert.fail("resolved"),
    (e) => e,
  );
  assert.ok(error instanceof InvalidArgumentError);
  assert.equal(error.argument, "events[1]");
  await assert.rejects(bus.publishBatch("nope" as never), InvalidArgumentError);
  assert.deepEqual(published, []);
  await bus.publishBatch([]);
  assert.deepEqual(published, []);
});

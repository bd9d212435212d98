/**
 * `publishBatch` on Redis: every message is checked before anything is
 * written, so a refused batch leaves no entry behind, through the bus and
 * through the HTTP receiver; a batch is one MULTI/EXEC, which Redis does not
 * roll back when a command fails while EXEC runs.
 */

import assert from "node:assert/strict";
import { RedisBroker } from "../../redis.ts";
import { createReceiver } from "../../http.ts";
import {
  BrokerError,
  CloudEvent,
  EventBus,
  InvalidArgumentError,
  silentLogger,
} from "../../mod.ts";
import { streamKey } from "../../src/redis/keys.ts";
import { Collector } from "../broker_contract.ts";
import { adminClient, deleteKeys, uniquePrefix, withDeadline } from "./_fault_util.ts";

const DEADLINE = 20_000;
const wait = <T>(promise: Promise<T>, what: string): Promise<T> =>
  withDeadline(promise, DEADLINE, what);

const event = (id: string, data: unknown = { n: id }) =>
  new CloudEvent({ id, type: "batch.item", source: "/batch", data });

/** Runs `body` with a started bus on a RedisBroker of its own prefix; deletes its keys after. */
async function withBus(
  options: { maxMessageBytes?: number; dedupeWindow?: number },
  body: (bus: EventBus, ids: Collector<string>, stream: string) => Promise<void>,
): Promise<void> {
  const keyPrefix = uniquePrefix("batch");
  const admin = await adminClient();
  const bus = new EventBus({
    app: new RedisBroker({ keyPrefix, logger: silentLogger, blockMs: 200, ...options }),
    logger: silentLogger,
  });
  const ids = new Collector<string>();
  bus.subscribe("batch.item", function collect(e) {
    ids.add(e.id);
  });
  try {
    await bus.start();
    await body(bus, ids, streamKey(keyPrefix, bus.channelFor("batch.item")));
  } finally {
    await bus.stop({ timeout: 1_000 });
    await deleteKeys(admin, keyPrefix);
    admin.disconnect();
  }
}

Deno.test("RedisBroker batch: one oversize event writes nothing; a good batch arrives whole, in order", async () => {
  const admin = await adminClient();
  try {
    await withBus({ maxMessageBytes: 2_000 }, async (bus, ids, stream) => {
      const batch = [event("1"), event("2", { big: "x".repeat(3_000) }), event("3")];
      await assert.rejects(bus.publishBatch(batch), (error: unknown) => {
        assert.ok(error instanceof InvalidArgumentError, String(error));
        assert.equal(error.argument, "events[1].message");
        assert.match(error.message, /exceeds maxMessageBytes \(2000\)/);
        return true;
      });
      assert.equal(await admin.xlen(stream), 0, "no entry was written");
      const good = Array.from({ length: 100 }, (_, i) => event(`g${i}`));
      await bus.publishBatch(good);
      assert.equal(await admin.xlen(stream), good.length);
      await wait(ids.reached(good.length), "the good batch");
      assert.deepEqual(ids.items, good.map((e) => e.id));
    });
  } finally {
    admin.disconnect();
  }
});

Deno.test("RedisBroker batch with dedupeWindow: an event repeated in a batch is written once", async () => {
  const admin = await adminClient();
  try {
    await withBus({ dedupeWindow: 60_000 }, async (bus, ids, stream) => {
      await bus.publish(event("a"));
      await bus.publishBatch([event("a"), event("b"), event("b"), event("c")]);
      assert.equal(await admin.xlen(stream), 3);
      await wait(ids.reached(3), "a, b and c");
      assert.deepEqual(ids.items, ["a", "b", "c"]);
    });
  } finally {
    admin.disconnect();
  }
});

Deno.test("RedisBroker batch: a command failing inside EXEC rejects, and Redis keeps the others", async () => {
  const keyPrefix = uniquePrefix("batch-exec");
  const admin = await adminClient();
  const broker = new RedisBroker({ keyPrefix, logger: silentLogger });
  try {
    await broker.start();
    // A key of the wrong type: its XADD fails while EXEC runs.
    await admin.set(streamKey(keyPrefix, "wrong"), "not a stream");
    await assert.rejects(
      broker.publishBatch([
        { message: 1, channel: "right" },
        { message: 2, channel: "wrong" },
        { message: 3, channel: "right" },
      ]),
      (error: unknown) => {
        assert.ok(error instanceof BrokerError, String(error));
        assert.match(error.message, /publish to "wrong" failed: WRONGTYPE/);
        return true;
      },
    );
    assert.equal(await admin.xlen(streamKey(keyPrefix, "right")), 2);
  } finally {
    await broker.stop({ timeout: 1_000 });
    await deleteKeys(admin, keyPrefix);
    admin.disconnect();
  }
});

Deno.test("HTTP receiver on RedisBroker: a batch the broker refuses answers 400 and writes nothing", async () => {
  const admin = await adminClient();
  try {
    await withBus({ maxMessageBytes: 2_000 }, async (bus, ids, stream) => {
      const receive = createReceiver({ bus, logger: silentLogger });
      const post = (events: unknown[]) =>
        receive(
          new Request("http://localhost/events", {
            method: "POST",
            headers: { "content-type": "application/cloudevents-batch+json" },
            body: JSON.stringify(events),
          }),
        );
      const wire = (id: string, data: unknown) => ({
        specversion: "1.0",
        id,
        source: "/batch",
        type: "batch.item",
        data,
      });
      const refused = await post([wire("1", { a: 1 }), wire("2", { big: "x".repeat(3_000) })]);
      assert.equal(refused.status, 400);
      const problem = await refused.json();
      assert.match(problem.detail, /events\[1\]\.message: encoded size/);
      assert.match(problem.detail, /nothing was published/);
      assert.equal(await admin.xlen(stream), 0, "no entry was written");
      const accepted = await post([wire("3", { a: 3 }), wire("4", { a: 4 })]);
      assert.equal(accepted.status, 202);
      await wait(ids.reached(2), "the accepted batch");
      assert.deepEqual(ids.items, ["3", "4"]);
    });
  } finally {
    admin.disconnect();
  }
});

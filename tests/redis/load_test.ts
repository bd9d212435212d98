/**
 * Load: two instances of one service (same group, same subscription name)
 * share 100,000 events; every event is handled exactly once (no crash is
 * injected, so no duplicate is allowed) and both instances do real work.
 */

import assert from "node:assert/strict";
import { deadLetterKey, streamKey } from "../../src/redis/keys.ts";
import { RedisBroker } from "../../redis.ts";
import { silentLogger } from "../../mod.ts";
import {
  adminClient,
  deferred,
  deleteKeys,
  stopAll,
  uniquePrefix,
  waitUntil,
  withDeadline,
} from "./_fault_util.ts";

const EVENTS = 100_000;
const WINDOW = 1_000;
const CHANNEL = "work";
const GROUP = "load-service";
const NAME = "crunch";

Deno.test("load: 2 instances in one group share 100,000 events, each handled exactly once", async () => {
  const keyPrefix = uniquePrefix("load");
  const admin = await adminClient();
  const common = { keyPrefix, group: GROUP, logger: silentLogger };
  const instances = [
    new RedisBroker({ ...common, consumer: "instance-1" }),
    new RedisBroker({ ...common, consumer: "instance-2" }),
  ];
  const publisher = new RedisBroker({ ...common, consumer: "publisher" });
  // times[n] = how often event n was handled, across both instances.
  const times = new Uint8Array(EVENTS);
  const perInstance = [0, 0];
  let distinct = 0;
  const all = deferred();
  instances.forEach((broker, index) => {
    broker.subscribe(CHANNEL, (message: { n: number }) => {
      perInstance[index]++;
      if (times[message.n]++ === 0 && ++distinct === EVENTS) all.resolve();
    }, { name: NAME });
  });
  try {
    await Promise.all([...instances, publisher].map((broker) => broker.start()));
    const inFlight = new Set<Promise<void>>();
    for (let n = 0; n < EVENTS; n++) {
      while (inFlight.size >= WINDOW) {
        await withDeadline(Promise.race(inFlight), 30_000, "a publish settles");
      }
      const tracked: Promise<void> = publisher.publish({ n }, CHANNEL).finally(() =>
        inFlight.delete(tracked)
      );
      inFlight.add(tracked);
    }
    await withDeadline(Promise.all(inFlight), 30_000, "the last publishes settle");

    await withDeadline(all.promise, 180_000, "every event handled").catch((error) => {
      throw new Error(`${error.message}: ${distinct} of ${EVENTS} handled`);
    });
    const stream = streamKey(keyPrefix, CHANNEL);
    await waitUntil(
      async () => ((await admin.xpending(stream, `${GROUP}:${NAME}`)) as [number])[0] === 0,
      30_000,
      "every entry acknowledged",
    );

    console.log(`work split between the instances: ${perInstance.join(" / ")}`);
    const duplicated = times.reduce((count, t) => count + (t > 1 ? 1 : 0), 0);
    assert.equal(duplicated, 0, "no event handled twice");
    assert.equal(perInstance[0] + perInstance[1], EVENTS);
    // Both instances did a real share of the work, not a token few events.
    for (const [index, count] of perInstance.entries()) {
      assert.ok(count >= EVENTS * 0.05, `instance ${index + 1} handled only ${count} events`);
    }
    assert.equal(await admin.xlen(deadLetterKey(keyPrefix, CHANNEL)), 0, "nothing dead-lettered");
  } finally {
    await stopAll([...instances, publisher], 5_000);
    await deleteKeys(admin, keyPrefix);
    admin.disconnect();
  }
});

/**
 * Broadcast delivery: three instances of one service, each with its own
 * consumer group, each get every event, including an instance whose blocking
 * connection was killed and that could not reconnect while events were
 * published. Runs on the shared Redis under a unique key prefix; one instance
 * reaches Redis through a proxy so the test can find and cut its connections.
 */

import assert from "node:assert/strict";
import { streamKey } from "../../src/redis/keys.ts";
import { RedisBroker } from "../../redis.ts";
import { silentLogger } from "../../mod.ts";
import {
  adminClient,
  deferred,
  deleteKeys,
  killBlockedRead,
  stopAll,
  uniquePrefix,
  withDeadline,
} from "./_fault_util.ts";
import { TcpProxy } from "./_tcp_proxy.ts";

const BEFORE = 1_000;
const DURING = 200;
const CHANNEL = "announcements";
const GROUP = "bcast-service";
const NAME = "listen";
const DEADLINE_MS = 60_000;

interface Received {
  counts: Map<number, number>;
  reached(total: number): Promise<void>;
}

function receiver(broker: RedisBroker): Received {
  const counts = new Map<number, number>();
  const waiters: { total: number; done: () => void }[] = [];
  broker.subscribe(CHANNEL, (message: { n: number }) => {
    counts.set(message.n, (counts.get(message.n) ?? 0) + 1);
    for (const waiter of waiters) if (counts.size >= waiter.total) waiter.done();
  }, { name: NAME });
  return {
    counts,
    reached(total) {
      const done = deferred();
      if (counts.size >= total) done.resolve();
      else waiters.push({ total, done: () => done.resolve() });
      return done.promise;
    },
  };
}

function assertEvery(received: Received, total: number, label: string, exactlyOnce: boolean): void {
  const missing = [...Array(total).keys()].filter((n) => !received.counts.has(n));
  assert.deepEqual(missing, [], `${label} missed events`);
  assert.equal(received.counts.size, total, `${label} got unknown events`);
  if (exactlyOnce) {
    const twice = [...received.counts].filter(([, count]) => count > 1).map(([n]) => n);
    assert.deepEqual(twice, [], `${label} got events twice`);
  }
}

async function publishRange(publisher: RedisBroker, from: number, to: number): Promise<void> {
  const pending: Promise<void>[] = [];
  for (let n = from; n < to; n++) pending.push(publisher.publish({ n }, CHANNEL));
  await withDeadline(Promise.all(pending), DEADLINE_MS, `publish ${from}..${to - 1}`);
}

Deno.test("broadcast: 3 instances each get every event, also one briefly disconnected meanwhile", async () => {
  const keyPrefix = uniquePrefix("broadcast");
  const admin = await adminClient();
  await using proxy = new TcpProxy(6379);
  const common = { keyPrefix, group: GROUP, delivery: "broadcast" as const, logger: silentLogger };
  const instances = [
    new RedisBroker({ ...common, consumer: "instance-a" }),
    new RedisBroker({ ...common, consumer: "instance-b" }),
    new RedisBroker({ ...common, consumer: "instance-c", url: proxy.url, blockMs: 500 }),
  ];
  const publisher = new RedisBroker({ keyPrefix, group: "bcast-publisher", logger: silentLogger });
  const received = instances.map(receiver);
  const stream = streamKey(keyPrefix, CHANNEL);
  try {
    await Promise.all([...instances, publisher].map((broker) => broker.start()));
    const groups = (await admin.xinfo("GROUPS", stream) as unknown[][]).map((fields) =>
      String(fields[1])
    );
    assert.deepEqual(groups.sort(), [
      `${GROUP}:${NAME}:instance-a`,
      `${GROUP}:${NAME}:instance-b`,
      `${GROUP}:${NAME}:instance-c`,
    ]);

    await publishRange(publisher, 0, BEFORE);
    await withDeadline(
      Promise.all(received.map((r) => r.reached(BEFORE))),
      DEADLINE_MS,
      "every instance gets the first events",
    );
    received.forEach((r, i) => assertEvery(r, BEFORE, `instance ${"abc"[i]}`, true));

    // Cut instance c off: no reconnect possible, then kill its blocked XREADGROUP.
    await proxy.refuse();
    await killBlockedRead(
      admin,
      () => proxy.upstreamAddrs(),
      DEADLINE_MS,
      "instance c blocks in XREADGROUP",
    );

    await publishRange(publisher, BEFORE, BEFORE + DURING);
    await withDeadline(
      Promise.all(received.slice(0, 2).map((r) => r.reached(BEFORE + DURING))),
      DEADLINE_MS,
      "the connected instances get the events published meanwhile",
    );
    proxy.accept();
    await withDeadline(
      received[2].reached(BEFORE + DURING),
      DEADLINE_MS,
      "the reconnected instance gets the events published while it was away",
    );
    // Only c, whose read was cut, may see an event twice (at-least-once).
    received.forEach((r, i) => assertEvery(r, BEFORE + DURING, `instance ${"abc"[i]}`, i < 2));

    // A graceful stop destroys the instance's own broadcast group.
    await stopAll(instances, 5_000);
    assert.deepEqual(await admin.xinfo("GROUPS", stream), []);
  } finally {
    await stopAll([...instances, publisher]);
    await deleteKeys(admin, keyPrefix);
    admin.disconnect();
  }
});

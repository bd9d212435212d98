/**
 * Crash recovery: a consumer takes entries and dies before acknowledging
 * them; another instance of the same service (same group and subscription
 * name) claims them after `claimIdleMs` and handles every one. Two ways to
 * die: the consumer's process is killed (SIGKILL), or the consumer is cut off
 * from Redis (its connections killed with CLIENT KILL, no way back). A third
 * test kills a live consumer's blocked XREADGROUP connection, repeatedly, and
 * checks it keeps reading. Runs on the shared Redis under unique key
 * prefixes, deleted afterwards.
 */

import assert from "node:assert/strict";
import { deadLetterKey, streamKey } from "../../src/redis/keys.ts";
import { RedisBroker } from "../../redis.ts";
import { type MessageContext, silentLogger } from "../../mod.ts";
import {
  adminClient,
  deferred,
  deleteKeys,
  killBlockedRead,
  stopAll,
  uniquePrefix,
  waitUntil,
  withDeadline,
} from "./_fault_util.ts";
import { TcpProxy } from "./_tcp_proxy.ts";

const ENTRIES = 50;
const GROUP = "orders-service";
const NAME = "fulfil";
const CHANNEL = "orders";
const CLAIM_IDLE_MS = 300;
const DEADLINE_MS = 30_000;

/** Consumer-group name of the subscription, as redis_api.md fixes it. */
const REDIS_GROUP = `${GROUP}:${NAME}`;

interface Handled {
  payloads: Set<number>;
  attempts: number[];
  done: Promise<void>;
}

/** Subscribes the surviving consumer B; `done` resolves once it handled every payload. */
function survivor(broker: RedisBroker): Handled {
  const payloads = new Set<number>();
  const attempts: number[] = [];
  const all = deferred();
  broker.subscribe(CHANNEL, (message: { n: number }, context: MessageContext) => {
    payloads.add(message.n);
    attempts.push(context.attempt);
    if (payloads.size === ENTRIES) all.resolve();
  }, { name: NAME });
  return { payloads, attempts, done: all.promise };
}

async function pendingOf(admin: Awaited<ReturnType<typeof adminClient>>, stream: string) {
  const [count, , , consumers] = await admin.xpending(stream, REDIS_GROUP) as [
    number,
    string | null,
    string | null,
    [string, string][] | null,
  ];
  return {
    count,
    consumers: Object.fromEntries((consumers ?? []).map(([c, n]) => [c, Number(n)])),
  };
}

async function assertRecovered(
  admin: Awaited<ReturnType<typeof adminClient>>,
  keyPrefix: string,
  handled: Handled,
): Promise<void> {
  await withDeadline(
    handled.done,
    DEADLINE_MS,
    "survivor handles every entry the dead consumer held",
  );
  assert.deepEqual([...handled.payloads].sort((a, b) => a - b), [...Array(ENTRIES).keys()]);
  // Attempts count handler starts: A started each entry at most once (a start
  // A had no time to write is not counted), so B's run is the first or second.
  assert.ok(
    handled.attempts.every((attempt) => attempt === 1 || attempt === 2),
    `claimed entries must report attempt 1 or 2, got ${JSON.stringify(handled.attempts)}`,
  );
  const stream = streamKey(keyPrefix, CHANNEL);
  await waitUntil(
    async () => (await pendingOf(admin, stream)).count === 0,
    DEADLINE_MS,
    "every claimed entry is acknowledged",
  );
  assert.equal(await admin.xlen(deadLetterKey(keyPrefix, CHANNEL)), 0, "nothing dead-lettered");
}

async function publishAll(keyPrefix: string): Promise<void> {
  const publisher = new RedisBroker({ keyPrefix, group: GROUP, logger: silentLogger });
  await publisher.start();
  try {
    for (let n = 0; n < ENTRIES; n++) await publisher.publish({ n }, CHANNEL);
  } finally {
    await publisher.stop();
  }
}

async function collectLines(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void) {
  let rest = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    rest += chunk;
    let at: number;
    while ((at = rest.indexOf("\n")) >= 0) {
      onLine(rest.slice(0, at));
      rest = rest.slice(at + 1);
    }
  }
}

Deno.test("crash: entries of a consumer process killed mid-handler are claimed and handled by another instance", async () => {
  const keyPrefix = uniquePrefix("crash-process");
  const admin = await adminClient();
  const took = new Set<number>();
  const ready = deferred();
  const tookAll = deferred();
  let stderr = "";
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("./_crash_consumer.ts", import.meta.url).pathname,
      JSON.stringify({
        url: "redis://127.0.0.1:6379",
        keyPrefix,
        group: GROUP,
        name: NAME,
        channel: CHANNEL,
        concurrency: ENTRIES,
      }),
    ],
    cwd: new URL("../../", import.meta.url).pathname,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const exited = child.status;
  const outputs = Promise.all([
    collectLines(child.stdout, (line) => {
      if (line === "ready") ready.resolve();
      if (line.startsWith("took ")) {
        took.add((JSON.parse(line.slice(5)) as { n: number }).n);
        if (took.size === ENTRIES) tookAll.resolve();
      }
    }),
    collectLines(child.stderr, (line) => (stderr += `${line}\n`)),
  ]);
  exited.then((status) => {
    const failure = new Error(`crashing consumer exited early (${status.code}):\n${stderr}`);
    ready.reject(failure);
    tookAll.reject(failure);
  });
  ready.promise.catch(() => {});
  tookAll.promise.catch(() => {});
  const broker = new RedisBroker({
    keyPrefix,
    group: GROUP,
    consumer: "survivor",
    claimIdleMs: CLAIM_IDLE_MS,
    logger: silentLogger,
  });
  try {
    await withDeadline(ready.promise, DEADLINE_MS, "crashing consumer starts");
    await publishAll(keyPrefix);
    await withDeadline(tookAll.promise, DEADLINE_MS, "crashing consumer takes every entry");
    const stream = streamKey(keyPrefix, CHANNEL);
    assert.deepEqual((await pendingOf(admin, stream)).consumers, { "crashing-consumer": ENTRIES });

    child.kill("SIGKILL");
    await exited;

    const handled = survivor(broker);
    await broker.start();
    await assertRecovered(admin, keyPrefix, handled);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // already dead
    }
    await exited;
    await outputs;
    await stopAll([broker]);
    await deleteKeys(admin, keyPrefix);
    admin.disconnect();
  }
});

Deno.test("crash: entries of a consumer cut off from Redis (connections killed, no way back) are claimed by another instance", async () => {
  const keyPrefix = uniquePrefix("crash-cut");
  const admin = await adminClient();
  await using proxy = new TcpProxy(6379);
  const took = new Set<number>();
  const tookAll = deferred();
  const doomed = new RedisBroker({
    url: proxy.url,
    keyPrefix,
    group: GROUP,
    consumer: "cut-off",
    connectTimeout: 2_000,
    publishTimeout: 2_000,
    logger: silentLogger,
  });
  doomed.subscribe(CHANNEL, (message: { n: number }) => {
    took.add(message.n);
    if (took.size === ENTRIES) tookAll.resolve();
    return new Promise<never>(() => {}); // dies before acking
  }, { name: NAME, concurrency: ENTRIES });
  const broker = new RedisBroker({
    keyPrefix,
    group: GROUP,
    consumer: "survivor",
    claimIdleMs: CLAIM_IDLE_MS,
    logger: silentLogger,
  });
  try {
    await doomed.start();
    await publishAll(keyPrefix);
    await withDeadline(tookAll.promise, DEADLINE_MS, "doomed consumer takes every entry");
    const stream = streamKey(keyPrefix, CHANNEL);
    assert.deepEqual((await pendingOf(admin, stream)).consumers, { "cut-off": ENTRIES });

    // No way back first, then kill every connection it has, from Redis' side.
    await proxy.refuse();
    const addrs = proxy.upstreamAddrs();
    assert.ok(addrs.size > 0, "the doomed consumer has connections to kill");
    for (const addr of addrs) await admin.client("KILL", "ADDR", addr);

    const handled = survivor(broker);
    await broker.start();
    await assertRecovered(admin, keyPrefix, handled);

    // A consumer that cannot reach Redis still stops, and promptly.
    await withDeadline(
      doomed.stop({ timeout: 200 }),
      15_000,
      "stop() of a consumer cut off from Redis",
    );
  } finally {
    await stopAll([doomed, broker], 200);
    await deleteKeys(admin, keyPrefix);
    admin.disconnect();
  }
});

Deno.test("crash: a consumer whose blocked XREADGROUP connection is killed resumes reading", async () => {
  const keyPrefix = uniquePrefix("crash-blocking");
  const admin = await adminClient();
  await using proxy = new TcpProxy(6379);
  const seen = new Set<number>();
  let wanted = ENTRIES;
  let reached = deferred();
  const consumer = new RedisBroker({
    url: proxy.url,
    keyPrefix,
    group: GROUP,
    consumer: "reader",
    blockMs: 500,
    logger: silentLogger,
  });
  consumer.subscribe(CHANNEL, (message: { n: number }) => {
    seen.add(message.n);
    if (seen.size === wanted) reached.resolve();
  }, { name: NAME });
  const publisher = new RedisBroker({ keyPrefix, group: "checkout", logger: silentLogger });
  try {
    await consumer.start();
    await publisher.start();
    for (let n = 0; n < ENTRIES; n++) await publisher.publish({ n }, CHANNEL);
    await withDeadline(reached.promise, DEADLINE_MS, "the first entries are handled");

    for (let kill = 1; kill <= 3; kill++) {
      await killBlockedRead(
        admin,
        () => proxy.upstreamAddrs(),
        DEADLINE_MS,
        `the consumer blocks in XREADGROUP (kill ${kill})`,
      );
      wanted = ENTRIES * (kill + 1);
      reached = deferred();
      for (let n = ENTRIES * kill; n < wanted; n++) await publisher.publish({ n }, CHANNEL);
      await withDeadline(reached.promise, DEADLINE_MS, `entries after kill ${kill} are handled`);
    }
    assert.deepEqual([...seen].sort((a, b) => a - b), [...Array(ENTRIES * 4).keys()]);
  } finally {
    await stopAll([consumer, publisher]);
    await deleteKeys(admin, keyPrefix);
    admin.disconnect();
  }
});

/**
 * Crash isolation and honest attempts, on a private redis-server:
 *
 * - consumer processes are killed (SIGKILL) every 0.2-0.5 s while 10,000
 *   events flow with `concurrency: 4`: every event is handled and none is
 *   dead-lettered (no handler ever fails, so none may be);
 * - an event that kills its process, among healthy neighbours, under a
 *   supervisor that restarts the consumer: only it is dead-lettered, with the
 *   crash as the reason, and every neighbour is handled; whether it kills in
 *   its handler's first turn, after a microtask or after its work.
 */

import assert from "node:assert/strict";
import { RedisBroker } from "../../redis.ts";
import { silentLogger } from "../../mod.ts";
import { deadLetterKey, streamKey } from "../../src/redis/keys.ts";
import { RedisServer } from "./_redis_server.ts";
import { adminClient, deferred, stopAll, withDeadline } from "./_fault_util.ts";

const CHANNEL = "work";
const GROUP = "isolation-service";
const NAME = "process";
const CLAIM_IDLE_MS = 200;

interface ChildConfig {
  url: string;
  keyPrefix: string;
  concurrency: number;
  workMs: number;
  batchSize: number;
  consumer?: string;
}

/** A consumer process and what it printed. */
class Child {
  readonly process: Deno.ChildProcess;
  readonly ready = deferred();
  readonly exited: Promise<Deno.CommandStatus>;
  readonly #output: Promise<void>;

  constructor(config: ChildConfig, onLine: (line: string) => void) {
    this.process = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("./_crashing_consumer.ts", import.meta.url).pathname,
        JSON.stringify({
          ...config,
          group: GROUP,
          name: NAME,
          channel: CHANNEL,
          claimIdleMs: CLAIM_IDLE_MS,
        }),
      ],
      cwd: new URL("../../", import.meta.url).pathname,
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    this.exited = this.process.status;
    this.exited.then(() => this.ready.resolve());
    this.#output = readLines(this.process.stdout, (line) => {
      if (line === "ready") this.ready.resolve();
      else onLine(line);
    });
  }

  /** SIGKILL, then waits for the process and its output to end. */
  async kill(): Promise<void> {
    try {
      this.process.kill("SIGKILL");
    } catch {
      // already dead
    }
    await this.exited;
    await this.#output;
  }

  /** Waits for the process to end on its own, and its output. */
  async ended(): Promise<void> {
    await this.exited;
    await this.#output;
  }
}

async function readLines(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void) {
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

/** Counts `start <n>` and `done <n>` lines per event. */
class Tally {
  readonly starts = new Map<number, number>();
  readonly done = new Map<number, number>();

  line = (line: string): void => {
    const [what, n] = line.split(" ");
    const counts = what === "start" ? this.starts : what === "done" ? this.done : undefined;
    counts?.set(Number(n), (counts.get(Number(n)) ?? 0) + 1);
  };
}

/**
 * Polls `check` until it reports `done`; fails with `what` (and `detail()`)
 * when its `progress` has not grown for `stallMs`.
 */
async function waitWhileProgressing(
  check: () => Promise<{ progress: number; done: boolean }>,
  stallMs: number,
  what: string,
  detail: () => string,
): Promise<void> {
  let last = -1;
  let since = Date.now();
  for (let now = await check(); !now.done; now = await check()) {
    if (now.progress > last) [last, since] = [now.progress, Date.now()];
    else if (Date.now() - since > stallMs) {
      throw new Error(`${what}: no progress for ${stallMs} ms (${detail()})`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function randomBetween(min: number, max: number): number {
  return min + Math.floor(Math.random() * (max - min));
}

Deno.test("crash isolation: consumers killed every 0.2-0.5 s during 12,000 events: all handled, none dead-lettered", async () => {
  const EVENTS = 12_000;
  const CHILDREN = 3;
  await using server = await RedisServer.start();
  const url = server.url();
  const keyPrefix = "isolation-kills:";
  const admin = await adminClient(url);
  const tally = new Tally();
  const children = new Set<Child>();
  const spawn = () => {
    const child = new Child(
      { url, keyPrefix, concurrency: 4, workMs: 20, batchSize: 100 },
      tally.line,
    );
    children.add(child);
    return child;
  };
  const publisher = new RedisBroker({ url, keyPrefix, group: GROUP, logger: silentLogger });
  let kills = 0;
  let killing = true;
  const allDone = deferred();
  // The fault schedule: a consumer killed and replaced 0.2-0.5 s after the previous
  // replacement is up. Waiting for it keeps the schedule a fault schedule on a loaded
  // machine, where a process may take longer than 0.5 s to start.
  const killer = (async () => {
    while (killing) {
      await Promise.race([
        allDone.promise,
        new Promise((resolve) => setTimeout(resolve, randomBetween(200, 500))),
      ]);
      if (!killing) break;
      const victims = [...children];
      const victim = victims[Math.floor(Math.random() * victims.length)];
      children.delete(victim);
      const replacement = spawn();
      await victim.kill();
      kills++;
      await Promise.race([allDone.promise, replacement.ready.promise]);
    }
  })();
  try {
    // The group exists before the first publish: created by a broker of the service.
    await publisher.start();
    await admin.xgroup(
      "CREATE",
      streamKey(keyPrefix, CHANNEL),
      `${GROUP}:${NAME}`,
      "$",
      "MKSTREAM",
    );
    for (let i = 0; i < CHILDREN; i++) spawn();
    const publishes: Promise<void>[] = [];
    for (let n = 0; n < EVENTS; n++) publishes.push(publisher.publish({ n }, CHANNEL));
    await withDeadline(Promise.all(publishes), 30_000, "every publish resolves");
    const dlq = deadLetterKey(keyPrefix, CHANNEL);
    // Every event either handled or dead-lettered (which the assertions below refuse).
    // The bound is on progress, not on the whole run: it fails when nothing more
    // is handled for 30 s, however slow the machine.
    await waitWhileProgressing(
      async () => {
        const settled = tally.done.size + await admin.xlen(dlq);
        return { progress: settled, done: settled >= EVENTS };
      },
      30_000,
      "every event handled while consumers are killed",
      () => `${tally.done.size} of ${EVENTS} handled, ${kills} kills`,
    );
    allDone.resolve();
    killing = false;
    await killer;
    const deadLetters = await admin.xlen(dlq);
    const rerun = [...tally.starts.values()].filter((count) => count > 1).length;
    const doneTwice = [...tally.done.values()].filter((count) => count > 1).length;
    console.log(
      `${EVENTS} events, ${kills} consumer kills, ${deadLetters} dead letters, ` +
        `${rerun} events started more than once, ${doneTwice} handled more than once (at-least-once)`,
    );
    assert.ok(kills >= 5, `the consumers were killed (${kills} kills)`);
    assert.equal(deadLetters, 0, "no event dead-lettered: no handler ever failed");
    assert.equal(tally.done.size, EVENTS, "every event handled");
  } finally {
    killing = false;
    allDone.resolve();
    await killer;
    await Promise.all([...children].map((child) => child.kill()));
    await stopAll([publisher]);
    admin.disconnect();
  }
});

for (const poison of ["after-work", "microtask", "sync"] as const) {
  Deno.test(`crash isolation: an event that kills its process (${poison}) is dead-lettered alone; its neighbours are handled`, () =>
    poisonAmongNeighbours(poison));
}

async function poisonAmongNeighbours(poison: "after-work" | "microtask" | "sync"): Promise<void> {
  const NEIGHBOURS = 40;
  const POISON = NEIGHBOURS;
  /**
   * Crashes counted as progress. The poison has 5 starts (the default
   * maxDeliveries), so about that many crashes; uncapped, a poison never
   * dead-lettered would crash the consumer forever and the wait never fail.
   */
  const MAX_RESTARTS = 20;
  await using server = await RedisServer.start();
  const url = server.url();
  const keyPrefix = `isolation-poison-${poison}:`;
  const admin = await adminClient(url);
  const tally = new Tally();
  const publisher = new RedisBroker({ url, keyPrefix, group: GROUP, logger: silentLogger });
  let restarts = 0;
  let supervising = true;
  let current: Child | undefined;
  // The supervisor: restarts the consumer (same name, so it takes back its own entries) when it dies.
  const supervisor = (async () => {
    while (supervising) {
      current = new Child(
        { url, keyPrefix, concurrency: 4, workMs: 20, batchSize: 50, consumer: "worker-1" },
        tally.line,
      );
      await current.ended();
      if (supervising) restarts++;
    }
  })();
  try {
    await publisher.start();
    await admin.xgroup(
      "CREATE",
      streamKey(keyPrefix, CHANNEL),
      `${GROUP}:${NAME}`,
      "$",
      "MKSTREAM",
    );
    // The poison sits among its neighbours: with concurrency 4 it first runs beside three of them.
    for (let n = 0; n < NEIGHBOURS; n++) {
      if (n === 2) await publisher.publish({ n: POISON, poison }, CHANNEL);
      await publisher.publish({ n }, CHANNEL);
    }
    const dlq = deadLetterKey(keyPrefix, CHANNEL);
    // Each crash costs a consumer process start, seconds on a loaded machine: the bound is
    // on progress (a neighbour handled, a crash, the dead letter), not on the whole run.
    await waitWhileProgressing(
      async () => {
        const letters = await admin.xlen(dlq);
        return {
          progress: tally.done.size + Math.min(restarts, MAX_RESTARTS) + letters,
          done: letters > 0 && tally.done.size === NEIGHBOURS,
        };
      },
      30_000,
      "the poison dead-lettered and every neighbour handled",
      () => `${tally.done.size} of ${NEIGHBOURS} handled, ${restarts} restarts`,
    );
    const letters = await publisher.deadLetters(CHANNEL, { count: 10 });
    console.log(
      `${NEIGHBOURS} healthy events + 1 process-killing event (${poison}): ${restarts} crashes, ` +
        `${letters.length} dead letter(s): ${letters.map((l) => l.error).join("; ")}; ` +
        `poison started ${tally.starts.get(POISON)} times`,
    );
    assert.equal(letters.length, 1, "only the process-killing event is dead-lettered");
    assert.deepEqual(letters[0].message, { n: POISON, poison });
    assert.match(letters[0].error, /its consumer died \d+ times while running it/);
    assert.ok(!tally.done.has(POISON));
    for (let n = 0; n < NEIGHBOURS; n++) assert.ok(tally.done.has(n), `neighbour ${n} handled`);
  } finally {
    supervising = false;
    await current?.kill();
    await supervisor;
    await stopAll([publisher]);
    admin.disconnect();
  }
}

/**
 * A consumer's own claim racing with its acknowledgement. When a handler
 * holds the event loop past `claimIdleMs`, the claim timer is due before the
 * XACK is sent. Redis then runs XAUTOCLAIM on an entry this consumer has
 * already handled, and the claim's reply names it. The entry must not run
 * again. Runs on a private server, so MONITOR shows only this test's commands
 * and proves the race took place.
 */

import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { silentLogger } from "../../mod.ts";
import { RedisBroker } from "../../redis.ts";
import { waitUntil } from "./_fault_util.ts";
import { RedisServer } from "./_redis_server.ts";

const CLAIM_IDLE_MS = 100;
const DEADLINE = 20_000;

/** One command as MONITOR reports it: when Redis ran it (ms) and its words. */
interface Seen {
  at: number;
  words: string[];
}

Deno.test("claim: an entry handled while the loop stalled past claimIdleMs is not run again by its consumer's own claim", async () => {
  await using server = await RedisServer.start();
  const watcher = new Redis(server.url(), { lazyConnect: true });
  await watcher.connect();
  const monitor = await watcher.monitor();
  const seen: Seen[] = [];
  monitor.on("monitor", (time: string, args: unknown[]) => {
    seen.push({ at: Number(time) * 1000, words: args.map((word) => String(word).toLowerCase()) });
  });
  const broker = new RedisBroker({
    url: server.url(),
    logger: silentLogger,
    blockMs: 100,
    claimIdleMs: CLAIM_IDLE_MS,
  });
  try {
    const calls: number[] = [];
    broker.subscribe("jobs", function stall(n: number) {
      calls.push(n);
      // The fault under test: the heartbeat and claim timers cannot run while the handler
      // holds the loop, so the entry idles in Redis past claimIdleMs.
      const until = Date.now() + 3 * CLAIM_IDLE_MS;
      while (Date.now() < until) { /* held */ }
    });
    await broker.start();
    const claims = () => seen.filter(({ words }) => words[0] === "xautoclaim");
    // The first claims follow the start; a publish lands at a random point of the claim loop.
    await waitUntil(() => claims().length >= 2, DEADLINE, "the claim loop running");

    /** Whether a claim ran between the `n`th entry's delivery and its XACK, the entry idle past claimIdleMs. */
    const raced = (n: number): boolean => {
      const added = seen.filter(({ words }) => words[0] === "xadd")[n - 1];
      const acked = seen.filter(({ words }) => words[0] === "xack")[n - 1];
      if (added === undefined || acked === undefined) return false;
      // Delivered by the first read after the XADD at the latest (a blocked read at once).
      const read = seen.find(({ words, at }) => words[0] === "xreadgroup" && at >= added.at);
      if (read === undefined) return false;
      return claims().some(({ at }) => at >= read.at + CLAIM_IDLE_MS && at <= acked.at);
    };
    // A claim that left just before the stall is answered after it, and the next one goes
    // after the XACK; the race then needs another try.
    let tries = 0;
    while (tries < 5 && !(tries > 0 && raced(tries))) {
      tries++;
      await broker.publish(tries, "jobs");
      const acks = tries;
      // Claims run one after the other: one that Redis ran after the XACK left once the claim
      // before it (the racing one, if any) was fully handled, a redelivery included.
      await waitUntil(
        () => {
          const ack = seen.filter(({ words }) => words[0] === "xack")[acks - 1];
          return ack !== undefined && claims().some(({ at }) => at > ack.at);
        },
        DEADLINE,
        `a claim after the XACK of entry ${tries}`,
      );
    }
    assert.ok(raced(tries), `the race took place in one of ${tries} tries`);
    assert.deepEqual(calls, Array.from({ length: tries }, (_, i) => i + 1), "each entry ran once");
    assert.equal(broker.stats().claimed, 0);
  } finally {
    await broker.stop({ timeout: 1_000 });
    watcher.disconnect();
  }
});

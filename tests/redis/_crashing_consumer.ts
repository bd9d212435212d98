/**
 * Consumer process for the crash-isolation tests. Subscribes with a handler
 * that works for `workMs` on each message (`{ n }`), prints `start <n>`
 * when a call starts and `done <n>` when it finished, and kills its own
 * process (SIGKILL) instead when the message has `poison` set: in the
 * handler's first turn (`"sync"`), after one microtask (`"microtask"`) or
 * after its work (`"after-work"`). Prints
 * `ready` once started; runs until it is killed. Argument: a JSON object with
 * `url`, `keyPrefix`, `group`, `name`, `channel`, `concurrency`,
 * `claimIdleMs`, `workMs`, `batchSize` and optionally `consumer`.
 *
 * @module
 */

import { RedisBroker } from "../../redis.ts";
import { silentLogger } from "../../mod.ts";

const config = JSON.parse(Deno.args[0]) as {
  url: string;
  keyPrefix: string;
  group: string;
  name: string;
  channel: string;
  concurrency: number;
  claimIdleMs: number;
  workMs: number;
  batchSize: number;
  consumer?: string;
};

const encoder = new TextEncoder();
function say(line: string): void {
  Deno.stdout.writeSync(encoder.encode(`${line}\n`));
}

const broker = new RedisBroker({
  url: config.url,
  keyPrefix: config.keyPrefix,
  group: config.group,
  consumer: config.consumer,
  claimIdleMs: config.claimIdleMs,
  blockMs: 200,
  batchSize: config.batchSize,
  logger: silentLogger,
});
/** When a poison message kills: in the handler's first turn, after one microtask, or after its work. */
type Poison = "sync" | "microtask" | "after-work";

broker.subscribe(config.channel, async (message: { n: number; poison?: Poison }) => {
  say(`start ${message.n}`);
  if (message.poison === "sync") Deno.kill(Deno.pid, "SIGKILL");
  await null;
  if (message.poison === "microtask") Deno.kill(Deno.pid, "SIGKILL");
  // The handler's own work: what a kill can interrupt.
  await new Promise((resolve) => setTimeout(resolve, config.workMs));
  if (message.poison === "after-work") Deno.kill(Deno.pid, "SIGKILL");
  say(`done ${message.n}`);
}, { name: config.name, concurrency: config.concurrency });
await broker.start();
say("ready");
// Keep the process alive until it is killed.
setInterval(() => {}, 60_000);

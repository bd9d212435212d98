/**
 * Consumer process for the crash-isolation tests. Subscribes with a handler
 * that works for `workMs` on each message (`{ n }`), prints `start <n>`
 * when a call starts and `done <n>` when it finished, and kills its own
 * process (SIGKILL) instead when the message has `poison: true`. Prints
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
broker.subscribe(config.channel, async (message: { n: number; poison?: boolean }) => {
  say(`start ${message.n}`);
  // The handler's own work: what a kill can interrupt.
  await new Promise((resolve) => setTimeout(resolve, config.workMs));
  if (message.poison) Deno.kill(Deno.pid, "SIGKILL");
  say(`done ${message.n}`);
}, { name: config.name, concurrency: config.concurrency });
await broker.start();
say("ready");
// Keep the process alive until it is killed.
setInterval(() => {}, 60_000);

/**
 * Consumer process for the crash test: subscribes with a handler that never
 * finishes, prints `ready` once started and `took <payload>` for every
 * message it receives, and waits to be killed. Arguments: a JSON object with
 * `url`, `keyPrefix`, `group`, `name`, `channel`, `concurrency`.
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
};

const encoder = new TextEncoder();
function say(line: string): void {
  Deno.stdout.writeSync(encoder.encode(`${line}\n`));
}

const broker = new RedisBroker({
  url: config.url,
  keyPrefix: config.keyPrefix,
  group: config.group,
  consumer: "crashing-consumer",
  logger: silentLogger,
});
broker.subscribe(config.channel, (message: unknown) => {
  say(`took ${JSON.stringify(message)}`);
  // The process is killed while this handler runs: the entry is never acked.
  return new Promise<never>(() => {});
}, { name: config.name, concurrency: config.concurrency });
await broker.start();
say("ready");
// Keep the process alive until it is killed.
setInterval(() => {}, 60_000);

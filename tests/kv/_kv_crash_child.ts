/**
 * A consumer that dies mid-handler, for the crash test: it subscribes,
 * publishes one job, prints `TAKEN <event id>` when its handler starts and
 * then hangs until it is killed.
 *
 * Usage: deno run -A tests/kv/_kv_crash_child.ts <database path> <maxDeliveries>
 *
 * @module
 */

import { CloudEvent, silentLogger } from "../../mod.ts";
import { KvBroker } from "../../kv.ts";

const [path, maxDeliveries] = Deno.args;
const broker = new KvBroker({
  path,
  group: "crash",
  maxDeliveries: Number(maxDeliveries),
  logger: silentLogger,
});
broker.subscribe("jobs", async function worker(event: CloudEvent) {
  await Deno.stdout.write(new TextEncoder().encode(`TAKEN ${event.id}\n`));
  await new Promise(() => {}); // never finishes: the process is killed here
});
await broker.start();
await broker.publish(new CloudEvent({ type: "job.created", source: "/crash", data: 1 }), "jobs");

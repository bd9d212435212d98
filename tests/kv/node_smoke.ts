/**
 * KvBroker on Node, on the `Kv` of the `@deno/kv` npm package (a local
 * SQLite file: queues are not part of KV Connect, so a remote database
 * cannot be used this way). Not run by `deno test`: it needs Node and the
 * package's native module. To run it:
 *
 * ```sh
 * mkdir -p /tmp/kv-node && npm install --prefix /tmp/kv-node @deno/kv@0.14.0
 * deno bundle --platform=node --external @deno/kv -o /tmp/kv-node/smoke.mjs tests/kv/node_smoke.ts
 * node /tmp/kv-node/smoke.mjs
 * ```
 *
 * It prints what was handled (one retry included), a reply, the broker's
 * counters, and exits 0.
 *
 * @module
 */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import process from "node:process";
import { openKv } from "@deno/kv";
import { CloudEvent, type MessageContext, silentLogger } from "../../mod.ts";
import { KvBroker } from "../../kv.ts";

const dir = mkdtempSync(`${tmpdir()}/kvbroker-node-`);
const kv = await openKv(`${dir}/db.sqlite`);
const broker = new KvBroker({ kv, logger: silentLogger, retryBackoff: { initial: 5, max: 20 } });
const handled: string[] = [];
const allHandled = new Promise<void>((resolve) => {
  broker.subscribe("orders", function charge(e: CloudEvent<{ id: string }>, ctx: MessageContext) {
    if (e.data!.id === "A2" && ctx.attempt === 1) throw new Error("flaky on the first try");
    handled.push(`${e.data!.id} (attempt ${ctx.attempt})`);
    if (handled.length === 3) resolve();
  });
});
broker.subscribe("prices", function price(sku: string) {
  return sku === "X" ? 9.5 : 0;
});
await broker.start();
for (const id of ["A1", "A2", "A3"]) {
  await broker.publish(
    new CloudEvent({ type: "order.placed", source: "/shop", data: { id } }),
    "orders",
  );
}
await allHandled;
console.log(`handled: ${[...handled].sort().join(", ")}`);
console.log(`reply: ${await broker.request("X", "prices", { timeout: 5_000 })}`);
await broker.stop();
const { published, consumed, errors, retried } = broker.stats();
console.log(`stats: ${JSON.stringify({ published, consumed, errors, retried })}`);
kv.close();
rmSync(dir, { recursive: true });
// @deno/kv 0.14.0 keeps Node alive once a watch stream was cancelled; leave explicitly.
process.exit(0);

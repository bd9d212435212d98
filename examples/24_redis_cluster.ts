/**
 * RedisBroker on a Redis Cluster: three channels, whose streams hash to
 * different slots (each channel's keys share one slot through the `{channel}`
 * hash tag), are published to and consumed; `replicas: 1` makes each publish
 * wait until a replica holds the entry, so a master that dies right after
 * cannot take it with it.
 *
 * Needs a cluster with a replica per master, given as comma-separated URLs
 * in `REDIS_CLUSTER`, e.g.
 * `REDIS_CLUSTER=redis://127.0.0.1:7000,redis://127.0.0.1:7001`. Uses its own
 * key prefix and deletes its keys at the end.
 *
 * Run: REDIS_CLUSTER=... deno run -A examples/24_redis_cluster.ts
 *
 * @module
 */
import { Cluster } from "ioredis";
import { silentLogger } from "../mod.ts";
import { RedisBroker } from "../redis.ts";

const nodes = (Deno.env.get("REDIS_CLUSTER") ?? "").split(",").filter((url) => url !== "");
if (nodes.length === 0) {
  console.error("set REDIS_CLUSTER to the comma-separated URLs of some cluster nodes");
  Deno.exit(2);
}

const CHANNELS = ["orders", "payments", "shipments"];
const PER_CHANNEL = 100;
const keyPrefix = `example24:${crypto.randomUUID().slice(0, 8)}:`;

const broker = new RedisBroker({
  cluster: nodes,
  keyPrefix,
  group: "ledger",
  replicas: 1,
  logger: silentLogger,
});

const handled = new Map<string, number>(CHANNELS.map((channel) => [channel, 0]));
const allHandled = Promise.withResolvers<void>();
let total = 0;
for (const channel of CHANNELS) {
  broker.subscribe(channel, function record(_event: { n: number }) {
    handled.set(channel, handled.get(channel)! + 1);
    if (++total === CHANNELS.length * PER_CHANNEL) allHandled.resolve();
  });
}

await broker.start();
await Promise.all(
  CHANNELS.flatMap((channel) =>
    Array.from({ length: PER_CHANNEL }, (_, n) => broker.publish({ n }, channel))
  ),
);
console.log(`published ${CHANNELS.length * PER_CHANNEL} events, each held by a replica`);
await allHandled.promise;
for (const [channel, count] of handled) console.log(`${channel}: handled ${count}`);

// Where the channels live: the master owning each stream's slot.
const admin = new Cluster(nodes.map((url) => {
  const { hostname, port } = new URL(url);
  return { host: hostname, port: Number(port) };
}));
const owners = new Set<string>();
for (const channel of CHANNELS) {
  const slot = Number(await admin.cluster("KEYSLOT", `${keyPrefix}{${channel}}:stream`));
  const ranges = await admin.cluster("SLOTS");
  const [, , [host, port]] = ranges.find(([from, to]) => slot >= from && slot <= to)!;
  owners.add(`${host}:${port}`);
  console.log(`${channel} lives on the master at ${host}:${port} (slot ${slot})`);
}
console.log(`the channels spread over ${owners.size} masters`);

await broker.stop();
// Clean up: every key of the example, on every master.
for (const master of admin.nodes("master")) {
  const keys = await master.keys(`${keyPrefix}*`);
  for (const key of keys) await master.del(key);
}
admin.disconnect();

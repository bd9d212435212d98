/**
 * Redis Cluster section of the benchmark: stream mode through `RedisBroker`
 * with three channels, on a private 3-master cluster (no replicas) next to
 * a private single node, in the same run. Reports events per second and the
 * CPU each event costs the client (this process) and the servers (the sum
 * of `used_cpu_user` + `used_cpu_sys` of every node, read from `INFO CPU`
 * before and after), from which the README projects events per second per
 * master. On a small machine the cluster is not faster: its nodes share the
 * same cores as the client.
 *
 * Run alone: `deno run -A bench/redis_cluster_bench.ts`.
 *
 * @module
 */

import { cpuUsage } from "node:process";
import { RedisBroker, type RedisBrokerOptions } from "../redis.ts";
import { silentLogger } from "../mod.ts";
import { envInt, registerSection, type Row } from "./bench_util.ts";
import { RedisCluster } from "../tests/redis/_redis_cluster.ts";
import { RedisServer } from "../tests/redis/_redis_server.ts";

const EVENTS = envInt("BENCH_CLUSTER_EVENTS", 60_000);
const WINDOW = envInt("BENCH_CLUSTER_WINDOW", 1_000);
const CHANNELS = ["bench-a", "bench-b", "bench-c"];
const DEADLINE_MS = 120_000;

/** Server CPU seconds (user + system) of one node, from INFO CPU. */
async function serverCpu(port: number): Promise<number> {
  const output = await new Deno.Command("redis-cli", {
    args: ["-p", String(port), "info", "cpu"],
    stdout: "piped",
  }).output();
  const info = new TextDecoder().decode(output.stdout);
  const field = (name: string) => Number(info.match(new RegExp(`${name}:([\\d.]+)`))?.[1] ?? 0);
  return field("used_cpu_user") + field("used_cpu_sys");
}

async function totalServerCpu(ports: readonly number[]): Promise<number> {
  let sum = 0;
  for (const port of ports) sum += await serverCpu(port);
  return sum;
}

interface Measured {
  rate: number;
  clientMicros: number;
  serverMicros: number;
}

/** Publishes EVENTS over the three channels through a sliding window; one broker consumes. */
async function measure(target: RedisBrokerOptions, ports: readonly number[]): Promise<Measured> {
  const keyPrefix = `bench:cluster:${crypto.randomUUID().slice(0, 8)}:`;
  await using broker = new RedisBroker({ ...target, keyPrefix, logger: silentLogger });
  let handled = 0;
  const done = Promise.withResolvers<void>();
  const timer = setTimeout(done.resolve, DEADLINE_MS);
  for (const channel of CHANNELS) {
    broker.subscribe(channel, () => {
      if (++handled === EVENTS) done.resolve();
    }, { name: "bench" });
  }
  await broker.start();
  const cpuBefore = cpuUsage();
  const serverBefore = await totalServerCpu(ports);
  const start = performance.now();
  const inFlight = new Set<Promise<unknown>>();
  for (let n = 0; n < EVENTS; n++) {
    while (inFlight.size >= WINDOW) await Promise.race(inFlight);
    const sent: Promise<unknown> = broker.publish({ n }, CHANNELS[n % CHANNELS.length])
      .finally(() => inFlight.delete(sent));
    inFlight.add(sent);
  }
  await Promise.all(inFlight);
  await done.promise;
  clearTimeout(timer);
  const ms = performance.now() - start;
  const cpu = cpuUsage(cpuBefore);
  const serverSeconds = (await totalServerCpu(ports)) - serverBefore;
  await broker.stop();
  if (handled < EVENTS) throw new Error(`only ${handled} of ${EVENTS} events handled in time`);
  return {
    rate: EVENTS / (ms / 1000),
    clientMicros: (cpu.user + cpu.system) / EVENTS,
    serverMicros: (serverSeconds * 1e6) / EVENTS,
  };
}

function rows(subject: string, measured: Measured): Row[] {
  return [
    { subject, metric: "stream, 3 channels", value: Math.round(measured.rate), unit: "events/s" },
    {
      subject,
      metric: "client CPU per event",
      value: Math.round(measured.clientMicros * 10) / 10,
      unit: "µs",
    },
    {
      subject,
      metric: "server CPU per event",
      value: Math.round(measured.serverMicros * 10) / 10,
      unit: "µs",
      note: `all nodes; ≈ ${
        Math.round(1e6 / measured.serverMicros / 1000)
      }k events/s per saturated master core`,
    },
  ];
}

/**
 * The section: one private node, then a private 3-master cluster.
 *
 * @example
 * ```ts ignore
 * import { redisClusterSection } from "./redis_cluster_bench.ts";
 * for (const row of await redisClusterSection.run()) console.log(row.subject, row.value);
 * ```
 */
export const redisClusterSection: { name: string; run(): Promise<Row[]> } = {
  name: "redis cluster",
  async run(): Promise<Row[]> {
    const single = await RedisServer.start();
    let one: Measured;
    try {
      one = await measure({ url: single.url() }, [single.port]);
    } finally {
      await single.dispose();
    }
    const cluster = await RedisCluster.start({ replicas: 0 });
    let three: Measured;
    try {
      three = await measure({ cluster: cluster.urls() }, cluster.nodes.map((node) => node.port));
    } finally {
      await cluster.dispose();
    }
    return [...rows("RedisBroker, 1 node", one), ...rows("RedisBroker, 3-master cluster", three)];
  },
};

registerSection(redisClusterSection);

if (import.meta.main) {
  for (const row of await redisClusterSection.run()) {
    console.log(`${row.subject} | ${row.metric}: ${row.value} ${row.unit} ${row.note ?? ""}`);
  }
}

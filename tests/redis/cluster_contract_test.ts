/**
 * The universal broker contract, run against RedisBroker on a private Redis
 * Cluster (3 masters, 3 replicas, started here), in both modes: streams, and
 * sharded pub/sub. Every test gets its own key prefix; its keys are deleted
 * from every master afterwards.
 */

import { brokerContractSuite, type ContractFeatures } from "../broker_contract.ts";
import { RedisBroker, type RedisBrokerOptions } from "../../redis.ts";
import { RedisCluster } from "./_redis_cluster.ts";

// Started once for the file; the last test stops it.
const cluster = await RedisCluster.start();

function target(name: string, extra: RedisBrokerOptions, features: ContractFeatures): void {
  let prefix = "";
  brokerContractSuite({
    name,
    features,
    deadLetters: async (broker, channel) =>
      (await (broker as RedisBroker).deadLetters(channel)).length,
    create: (options) => {
      prefix = `test:cluster-contract:${crypto.randomUUID().slice(0, 8)}:`;
      return new RedisBroker({
        ...options,
        ...extra,
        cluster: cluster.urls(),
        keyPrefix: prefix,
        blockMs: 200,
        retryBackoff: options.retryBackoff ?? { initial: 10, max: 100 },
      });
    },
    createPeer: (options) =>
      new RedisBroker({
        ...options,
        ...extra,
        cluster: cluster.urls(),
        keyPrefix: prefix,
        consumer: `peer-${crypto.randomUUID().slice(0, 8)}`,
        blockMs: 200,
        retryBackoff: options.retryBackoff ?? { initial: 10, max: 100 },
      }),
    cleanup: () => cluster.deleteKeys(prefix),
  });
}

target("RedisBroker(cluster, stream)", { mode: "stream" }, {
  retries: true,
  deadLetters: true,
  redeliversUnacknowledged: true,
  inProcess: false,
  idempotent: true,
  persistent: true,
  sharedConsumers: true,
});
target("RedisBroker(cluster, pubsub)", { mode: "pubsub" }, {
  retries: false,
  deadLetters: false,
  redeliversUnacknowledged: false,
  inProcess: false,
  idempotent: false,
  persistent: false,
  sharedConsumers: false,
});

Deno.test("RedisBroker(cluster): the test cluster stops", async () => {
  await cluster.dispose();
});

/**
 * The universal broker contract, run against RedisBroker on the shared Redis
 * (127.0.0.1:6379), in both modes. Every test gets its own key prefix; its
 * keys are deleted afterwards.
 */

import { Redis } from "ioredis";
import { brokerContractSuite, type ContractFeatures } from "../broker_contract.ts";
import { RedisBroker, type RedisBrokerOptions } from "../../redis.ts";

const URL = "redis://127.0.0.1:6379";

async function deleteKeys(prefix: string): Promise<void> {
  const admin = new Redis(URL, { lazyConnect: true });
  await admin.connect();
  try {
    let cursor = "0";
    do {
      const [next, keys] = await admin.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) await admin.del(...keys);
    } while (cursor !== "0");
  } finally {
    admin.disconnect();
  }
}

function target(name: string, extra: RedisBrokerOptions, features: ContractFeatures): void {
  let prefix = "";
  brokerContractSuite({
    name,
    features,
    deadLetters: async (broker, channel) =>
      (await (broker as RedisBroker).deadLetters(channel)).length,
    create: (options) => {
      prefix = `test:contract:${crypto.randomUUID().slice(0, 8)}:`;
      return new RedisBroker({
        ...options,
        ...extra,
        url: URL,
        keyPrefix: prefix,
        blockMs: 200,
        retryBackoff: options.retryBackoff ?? { initial: 10, max: 100 },
      });
    },
    createPeer: (options) =>
      new RedisBroker({
        ...options,
        ...extra,
        url: URL,
        keyPrefix: prefix,
        consumer: `peer-${crypto.randomUUID().slice(0, 8)}`,
        blockMs: 200,
        retryBackoff: options.retryBackoff ?? { initial: 10, max: 100 },
      }),
    cleanup: () => deleteKeys(prefix),
    oversize: "x".repeat(1_048_577), // above the default maxMessageBytes
  });
}

target("RedisBroker(stream)", { mode: "stream" }, {
  retries: true,
  deadLetters: true,
  redeliversUnacknowledged: true,
  inProcess: false,
  idempotent: true,
  persistent: true,
  sharedConsumers: true,
});
target("RedisBroker(pubsub)", { mode: "pubsub" }, {
  retries: false,
  deadLetters: false,
  redeliversUnacknowledged: false,
  inProcess: false,
  idempotent: false,
  persistent: false,
  sharedConsumers: false,
});

/**
 * The universal broker contract, run against KvBroker on a fresh database
 * file per test (removed afterwards).
 */

import { brokerContractSuite } from "../broker_contract.ts";
import { KvBroker } from "../../kv.ts";
import { type TempKv, tempKvPath } from "./_kv_temp.ts";

let temp: TempKv | undefined;

brokerContractSuite({
  name: "KvBroker",
  features: {
    retries: true,
    deadLetters: true,
    redeliversUnacknowledged: true,
    inProcess: false,
    idempotent: true,
    persistent: true,
    sharedConsumers: true,
  },
  deadLetters: async (broker, channel) => (await (broker as KvBroker).deadLetters(channel)).length,
  create: async (options) => {
    temp = await tempKvPath("contract");
    return new KvBroker({
      ...options,
      path: temp.path,
      retryBackoff: options.retryBackoff ?? { initial: 10, max: 100 },
    });
  },
  createPeer: (options) =>
    new KvBroker({
      ...options,
      path: temp!.path,
      retryBackoff: options.retryBackoff ?? { initial: 10, max: 100 },
    }),
  oversize: "x".repeat(70_000), // above what one KV value holds
  cleanup: async () => {
    await temp?.remove();
    temp = undefined;
  },
});

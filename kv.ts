/**
 * `KvBroker`: the app scope of `@opensecflow/eventbus` on the Deno KV queue,
 * for Deno Deploy and any Deno process (a local database file).
 *
 * - Every subscription name on a channel gets every message, once per
 *   `group`; the instances of a group share the work, as KV hands each queue
 *   message to one isolate.
 * - `publish` resolves once KV committed the message, fanned out in one
 *   atomic commit to every subscription registered in KV (by any instance).
 * - Failures are retried with backoff up to `maxDeliveries`, then
 *   dead-lettered (`deadLetters()`, `replayDeadLetters()`); a message whose
 *   process died mid-handler is delivered again by KV.
 * - Request/reply through a watched KV key, without polling.
 *
 * Run with `--unstable-kv` (or `"unstable": ["kv"]` in `deno.json`).
 *
 * @example
 * ```ts
 * import { CloudEvent } from "@opensecflow/eventbus";
 * import { KvBroker } from "@opensecflow/eventbus/kv";
 *
 * await using broker = new KvBroker({ path: ":memory:", group: "billing" });
 * broker.subscribe("orders", async function charge(event: CloudEvent, context) {
 *   console.log("charging", event.data, "attempt", context.attempt);
 * });
 * await broker.start();
 * await broker.publish(
 *   new CloudEvent({ type: "order.created", source: "/shop", data: { orderId: "A1" } }),
 *   "orders",
 * );
 * console.log(await broker.deadLetters("orders"));
 * ```
 *
 * @module
 */

import { setKvOpener } from "./src/kv/kv_store.ts";

// The only place the broker touches the Deno namespace: opening a database by path.
setKvOpener((path) => Deno.openKv(path));

export { KvBroker } from "./src/kv/kv_broker.ts";
export type { KvBrokerOptions, KvPrefixPart } from "./src/kv/options.ts";
export type { KvBrokerStats } from "./src/kv/stats.ts";
export { FOREIGN_CHANNEL } from "./src/kv/dead_letters.ts";
export type {
  KvEnqueueOptions,
  KvKey,
  KvKeyPart,
  KvStore,
  KvStoreAtomic,
  KvStoreEntry,
  KvStoreEntryMaybe,
} from "./src/kv/kv_store.ts";

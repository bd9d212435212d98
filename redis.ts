/**
 * `RedisBroker`: the app-scope broker of `@opensecflow/eventbus` on Redis,
 * through ioredis.
 *
 * - Mode `"stream"` (default): a stream per channel and a consumer group per
 *   subscription. At-least-once: an entry is acknowledged only after its
 *   handler succeeded; failures are retried with exponential backoff, then
 *   dead-lettered (`broker.deadLetters()`, `broker.replayDeadLetters()`);
 *   entries of a consumer that died are claimed by a live one after
 *   `claimIdleMs`. Delivery `"group"` shares the work between the instances of
 *   a service; `"broadcast"` gives every instance every event.
 * - Mode `"pubsub"`: Redis pub/sub, at-most-once fire-and-forget broadcast.
 *
 * A CloudEvent maps onto a stream entry one field per attribute (`ext:<name>`
 * for extensions, `data` or `data_base64`, `h:<name>` for headers); the
 * README's "How a CloudEvent maps onto a stream entry" has the full table.
 *
 * @example
 * ```ts
 * import { CloudEvent } from "@opensecflow/eventbus";
 * import { RedisBroker } from "@opensecflow/eventbus/redis";
 *
 * await using broker = new RedisBroker({
 *   url: "redis://127.0.0.1:6379",
 *   group: "billing",           // the service name: its instances share the work
 *   maxDeliveries: 5,
 * });
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

export { RedisBroker } from "./src/redis/redis_broker.ts";
export type {
  RedisBrokerMode,
  RedisBrokerOptions,
  RedisConnectionOptions,
  RedisDelivery,
} from "./src/redis/options.ts";
export type { RedisBrokerStats } from "./src/redis/stats.ts";

/**
 * The AsyncAPI 3.0 contract of an event bus: which events a service sends
 * and receives, on which channels, with which payload and which delivery
 * guarantee. `asyncapi(bus, { title, version })` builds the document from
 * `bus.definitions()`; `toYAML` and `toJSON` write it out.
 *
 * Messages are CloudEvents in structured mode (`application/cloudevents+json`):
 * the payload schema is the CloudEvents envelope, and its `data` is the zod
 * schema of the definition as JSON Schema draft-07 (the base of AsyncAPI's
 * default schema format). `scripts/asyncapi.ts` (`deno task asyncapi`) does
 * the same from the command line.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { defineEvent, EventBus, EventScope } from "@opensecflow/eventbus";
 * import { asyncapi, toYAML } from "@opensecflow/eventbus/asyncapi";
 *
 * const OrderCreated = defineEvent({
 *   type: "order.created",
 *   source: "/orders",
 *   data: z.object({ orderId: z.string(), amount: z.number().positive() }),
 * });
 * const CacheCleared = defineEvent({
 *   type: "cache.cleared",
 *   scope: EventScope.PROCESS,
 *   source: "/cache",
 *   data: z.object({ key: z.string() }),
 * });
 *
 * const bus = new EventBus().declare(OrderCreated);
 * bus.subscribe(CacheCleared, function forget() {});
 * console.log(toYAML(asyncapi(bus, { title: "Orders", version: "1.0.0" })));
 * ```
 *
 * @module
 */

export { asyncapi } from "./src/asyncapi/document.ts";
export type { AsyncApiOptions } from "./src/asyncapi/options.ts";
export { toJSON, toYAML } from "./src/asyncapi/serialize.ts";
export type {
  AsyncApiChannel,
  AsyncApiDocument,
  AsyncApiMessage,
  AsyncApiOperation,
  AsyncApiReference,
  AsyncApiServer,
  DeliveryGuarantee,
  JsonSchema,
} from "./src/asyncapi/types.ts";

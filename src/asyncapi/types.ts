/**
 * The shape of the AsyncAPI 3.0 documents {@linkcode asyncapi} builds: the
 * subset of the specification the event bus fills in, typed so a program can
 * read the document without casts.
 *
 * @module
 */

/**
 * A JSON Schema (draft-07, the base of AsyncAPI's default schema format).
 *
 * @example
 * ```ts
 * import type { JsonSchema } from "@opensecflow/eventbus/asyncapi";
 * const schema: JsonSchema = { type: "object", properties: { id: { type: "string" } } };
 * ```
 */
export type JsonSchema = { [keyword: string]: unknown };

/**
 * A reference to another part of the document, e.g. `{ $ref: "#/channels/OrderCreated" }`.
 *
 * @example
 * ```ts
 * import type { AsyncApiReference } from "@opensecflow/eventbus/asyncapi";
 * const ref: AsyncApiReference = { $ref: "#/components/messages/OrderCreated" };
 * ```
 */
export interface AsyncApiReference {
  /** JSON pointer into the document. */
  $ref: string;
}

/**
 * A server the application is reachable on (AsyncAPI Server Object).
 *
 * @example
 * ```ts
 * import type { AsyncApiServer } from "@opensecflow/eventbus/asyncapi";
 * const redis: AsyncApiServer = { host: "redis.internal:6379", protocol: "redis" };
 * ```
 */
export interface AsyncApiServer {
  /** Host name, optionally with a port, e.g. `"redis.internal:6379"`. */
  host: string;
  /** Protocol, e.g. `"redis"` or `"http"`. */
  protocol: string;
  /** Protocol version, e.g. `"7"`. */
  protocolVersion?: string;
  /** Path of the server, e.g. `"/0"`. */
  pathname?: string;
  /** Short title. */
  title?: string;
  /** Short summary. */
  summary?: string;
  /** Longer description (CommonMark). */
  description?: string;
}

/**
 * The delivery guarantee of a channel, the `delivery` of the broker of its
 * scope: `"at-most-once"` (in memory, Redis pub/sub), `"at-least-once"`
 * (Redis stream, Deno KV), or `"unspecified"` for a broker that does not
 * describe its delivery.
 *
 * @example
 * ```ts
 * import type { DeliveryGuarantee } from "@opensecflow/eventbus/asyncapi";
 * const guarantee: DeliveryGuarantee = "at-least-once";
 * ```
 */
export type DeliveryGuarantee = "at-most-once" | "at-least-once" | "unspecified";

/**
 * One channel: the broker channel events of one type travel on.
 *
 * @example
 * ```ts
 * import type { AsyncApiChannel } from "@opensecflow/eventbus/asyncapi";
 * const channel: AsyncApiChannel = {
 *   address: "events.order.created",
 *   title: "order.created",
 *   description: "Events of type order.created.",
 *   messages: { OrderCreated: { $ref: "#/components/messages/OrderCreated" } },
 *   "x-eventbus-scope": "app",
 *   "x-eventbus-broker": "memory",
 *   "x-eventbus-delivery": "at-most-once",
 * };
 * ```
 */
export interface AsyncApiChannel {
  /** The broker channel, `bus.channelFor(type)`. */
  address: string;
  /** The event type. */
  title: string;
  /** Scope, broker and delivery guarantee in words. */
  description: string;
  /** The one message of the channel. */
  messages: Record<string, AsyncApiReference>;
  /** `"process"` or `"app"`: which broker of the bus carries the channel. */
  "x-eventbus-scope": string;
  /** The broker's transport: `"memory"`, `"redis-stream"`, `"redis-pubsub"`, `"deno-kv"`, or its class name. */
  "x-eventbus-broker": string;
  /** What the broker guarantees. */
  "x-eventbus-delivery": DeliveryGuarantee;
}

/**
 * One operation of this service: it sends (publishes) or receives (handles)
 * the events of a channel.
 *
 * @example
 * ```ts
 * import type { AsyncApiOperation } from "@opensecflow/eventbus/asyncapi";
 * const operation: AsyncApiOperation = {
 *   action: "send",
 *   channel: { $ref: "#/channels/OrderCreated" },
 *   title: "Send order.created",
 *   description: "This service publishes order.created events.",
 *   messages: [{ $ref: "#/channels/OrderCreated/messages/OrderCreated" }],
 * };
 * ```
 */
export interface AsyncApiOperation {
  /** `"send"`: this service publishes; `"receive"`: it handles. */
  action: "send" | "receive";
  /** The channel. */
  channel: AsyncApiReference;
  /** Short title. */
  title: string;
  /** Scope and delivery guarantee in words. */
  description: string;
  /** The channel's message. */
  messages: AsyncApiReference[];
}

/**
 * A message: a CloudEvent of one type in structured mode.
 *
 * @example
 * ```ts
 * import type { AsyncApiMessage } from "@opensecflow/eventbus/asyncapi";
 * const message: AsyncApiMessage = {
 *   name: "order.created",
 *   title: "order.created",
 *   summary: "A CloudEvent of type order.created, in structured mode.",
 *   contentType: "application/cloudevents+json",
 *   payload: { type: "object" },
 * };
 * ```
 */
export interface AsyncApiMessage {
  /** The event type. */
  name: string;
  /** The event type. */
  title: string;
  /** One line about the message. */
  summary: string;
  /** Always `"application/cloudevents+json"`: structured mode. */
  contentType: string;
  /** The CloudEvents envelope, its `data` referring to the data schema. */
  payload: JsonSchema;
}

/**
 * An AsyncAPI 3.0.0 document, as a plain object ready for `toYAML` or
 * `toJSON`.
 *
 * @example
 * ```ts
 * import { EventBus } from "@opensecflow/eventbus";
 * import { asyncapi, type AsyncApiDocument } from "@opensecflow/eventbus/asyncapi";
 * const doc: AsyncApiDocument = asyncapi(new EventBus(), { title: "Shop", version: "1.0.0" });
 * console.log(doc.asyncapi); // "3.0.0"
 * ```
 */
export interface AsyncApiDocument {
  /** Version of the specification: `"3.0.0"`. */
  asyncapi: "3.0.0";
  /** Title, version and description of the application. */
  info: { title: string; version: string; description?: string };
  /** `"application/cloudevents+json"`. */
  defaultContentType: string;
  /** Servers given in the options. */
  servers?: Record<string, AsyncApiServer>;
  /** One channel per event type. */
  channels: Record<string, AsyncApiChannel>;
  /** What this service sends and receives. */
  operations: Record<string, AsyncApiOperation>;
  /** Messages and data schemas. */
  components: {
    messages: Record<string, AsyncApiMessage>;
    schemas: Record<string, JsonSchema>;
  };
}

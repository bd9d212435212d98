/**
 * {@linkcode asyncapi}: the AsyncAPI 3.0 contract of an event bus, built from
 * the definitions it sends and receives.
 *
 * @module
 */

import type { DefinitionInfo, EventBus } from "../eventbus.ts";
import { EventScope } from "../event.ts";
import { excerpt, InvalidArgumentError } from "../errors.ts";
import { placeDataSchema } from "./components.ts";
import { dataSchemaOf } from "./data_schema.ts";
import { type ChannelDelivery, deliveryOf } from "./delivery.ts";
import { envelopeSchema } from "./envelope.ts";
import { KeyAllocator, pascalCase } from "./names.ts";
import { type AsyncApiOptions, checkOptions } from "./options.ts";
import type { AsyncApiDocument, AsyncApiOperation, AsyncApiReference } from "./types.ts";

/** Structured mode: the whole CloudEvent, attributes and data, is the JSON payload. */
const CLOUDEVENTS_JSON = "application/cloudevents+json";

/** The parts of a bus the document reads. */
type BusView = Pick<EventBus, "definitions" | "channelFor" | "processBroker" | "appBroker">;

/**
 * Builds the AsyncAPI 3.0.0 document of a bus: one channel per definition of
 * `bus.definitions()` (its address is `bus.channelFor(type)`), a `send`
 * operation for each definition the bus sends (declared with `bus.declare()`
 * or published) and a `receive` operation for each it handles, and one
 * message per event type: a CloudEvent in structured mode
 * (`application/cloudevents+json`) whose `data` follows the definition's zod
 * schema as JSON Schema draft-07.
 *
 * Each channel carries its scope and what its broker guarantees, as
 * `x-eventbus-scope` (`process` or `app`), `x-eventbus-broker` (`memory`,
 * `redis-stream`, `redis-pubsub`, `deno-kv`) and `x-eventbus-delivery`
 * (`at-most-once`, `at-least-once`), and says the same in its description.
 * Both come from the broker's own `delivery`; a broker without one is
 * documented by its class name as `unspecified`.
 *
 * Map keys are the event type in PascalCase (`order.created` ->
 * `OrderCreated`), with a numeric suffix when two types give the same key;
 * operations are `send<Key>` and `receive<Key>`.
 *
 * Throws `InvalidArgumentError` for a bad bus or option, and for a data schema
 * JSON Schema cannot express (see `unrepresentable` in
 * {@linkcode AsyncApiOptions}).
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { defineEvent, EventBus } from "@opensecflow/eventbus";
 * import { asyncapi } from "@opensecflow/eventbus/asyncapi";
 *
 * const OrderCreated = defineEvent({
 *   type: "order.created",
 *   source: "/orders",
 *   data: z.object({ orderId: z.string(), amount: z.number().positive() }),
 * });
 * const bus = new EventBus().declare(OrderCreated);
 * const doc = asyncapi(bus, { title: "Orders", version: "1.0.0" });
 * console.log(doc.channels.OrderCreated.address); // "events.order.created"
 * console.log(doc.operations.sendOrderCreated.action); // "send"
 * ```
 */
export function asyncapi(bus: EventBus, options: AsyncApiOptions): AsyncApiDocument {
  checkBus(bus);
  const { title, version, description, servers, unrepresentable = "throw" } = checkOptions(
    options,
  );
  const doc: AsyncApiDocument = {
    asyncapi: "3.0.0",
    info: { title, version, ...(description === undefined ? {} : { description }) },
    defaultContentType: CLOUDEVENTS_JSON,
    ...(servers === undefined ? {} : { servers: copyServers(servers) }),
    channels: {},
    operations: {},
    components: { messages: {}, schemas: {} },
  };
  const keys = new KeyAllocator();
  const schemaKeys = new KeyAllocator();
  for (const info of bus.definitions()) {
    addDefinition(doc, bus, info, keys.allocate(pascalCase(info.definition.type)), {
      schemaKeys,
      unrepresentable,
    });
  }
  return doc;
}

function checkBus(bus: unknown): asserts bus is BusView {
  const view = bus as Partial<BusView> | null;
  if (
    view === null || typeof view !== "object" || typeof view.definitions !== "function" ||
    typeof view.channelFor !== "function" || view.processBroker === undefined ||
    view.appBroker === undefined
  ) {
    throw new InvalidArgumentError("bus", `must be an EventBus, got ${excerpt(bus)}`);
  }
}

function copyServers(
  servers: NonNullable<AsyncApiOptions["servers"]>,
): NonNullable<AsyncApiDocument["servers"]> {
  return Object.fromEntries(Object.entries(servers).map(([name, server]) => [name, { ...server }]));
}

function addDefinition(
  doc: AsyncApiDocument,
  bus: BusView,
  info: DefinitionInfo,
  key: string,
  context: { schemaKeys: KeyAllocator; unrepresentable: "throw" | "any" },
): void {
  const { definition } = info;
  const { type, scope } = definition;
  const address = bus.channelFor(type);
  if (/[{}]/.test(address)) {
    // AsyncAPI reads {name} in an address as a parameter the document would have to define.
    throw new InvalidArgumentError(
      "bus",
      `the channel of "${type}" is "${address}": AsyncAPI reads braces in an address as parameters`,
    );
  }
  const data = dataSchemaOf(definition, context.unrepresentable);
  const dataRef = placeDataSchema(data, key, context.schemaKeys, doc.components.schemas);
  const broker = scope === EventScope.PROCESS
    ? deliveryOf(bus.processBroker, "processBroker")
    : deliveryOf(bus.appBroker, "appBroker");
  const scopeText = scopeSentence(scope);
  doc.components.messages[key] = {
    name: type,
    title: type,
    summary: `A CloudEvent of type ${type}, in structured mode.`,
    contentType: CLOUDEVENTS_JSON,
    payload: envelopeSchema({
      type,
      source: definition.source,
      dataRef,
      dataOptional: data.optional,
    }),
  };
  doc.channels[key] = {
    address,
    title: type,
    description: `Events of type ${type}. ${scopeText} ${broker.text}`,
    messages: { [key]: { $ref: `#/components/messages/${key}` } },
    "x-eventbus-scope": scope,
    "x-eventbus-broker": broker.broker,
    "x-eventbus-delivery": broker.delivery,
  };
  const channel: AsyncApiReference = { $ref: `#/channels/${key}` };
  const message: AsyncApiReference = { $ref: `#/channels/${key}/messages/${key}` };
  if (info.sends) {
    doc.operations[`send${key}`] = operation("send", type, channel, message, broker);
  }
  if (info.receives) {
    doc.operations[`receive${key}`] = operation("receive", type, channel, message, broker);
  }
}

function scopeSentence(scope: EventScope): string {
  return scope === EventScope.PROCESS
    ? "Process scope: carried by the bus's process broker, it stays in the publishing process."
    : "App scope: carried by the bus's app broker, meant to reach every instance of the application.";
}

function operation(
  action: "send" | "receive",
  type: string,
  channel: AsyncApiReference,
  message: AsyncApiReference,
  broker: ChannelDelivery,
): AsyncApiOperation {
  const verb = action === "send" ? "publishes" : "handles";
  return {
    action,
    channel: { ...channel },
    title: `${action === "send" ? "Send" : "Receive"} ${type}`,
    description: `This service ${verb} ${type} events; delivery ${broker.delivery}.`,
    messages: [{ ...message }],
  };
}

import assert from "node:assert/strict";
import { Parser } from "@asyncapi/parser";
import { Ajv, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";
import { parse as parseYAML } from "yaml";
import { z } from "zod";
import {
  type Broker,
  type BrokerDelivery,
  defineEvent,
  EventBus,
  type EventDefinition,
  EventScope,
  InvalidArgumentError,
  MemoryBroker,
  silentLogger,
} from "../mod.ts";
import {
  asyncapi,
  type AsyncApiDocument,
  type AsyncApiOptions,
  toJSON,
  toYAML,
} from "../asyncapi.ts";
import { KvBroker } from "../kv.ts";
import { RedisBroker } from "../redis.ts";
import * as ex21 from "../examples/21_asyncapi.ts";
import { runExample } from "./_run_example.ts";
import { adminClient, deferred, deleteKeys, uniquePrefix } from "./redis/_fault_util.ts";

// ajv-formats is CommonJS; its default export is the plugin function.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

const parser = new Parser();
const OPTIONS: AsyncApiOptions = { title: "Test service", version: "1.0.0" };

/** Every error diagnostic (severity 0) of the AsyncAPI parser, as readable lines. */
async function parserErrors(document: unknown): Promise<string[]> {
  const diagnostics = await parser.validate(document as string | { asyncapi: string });
  return diagnostics.filter((d) => d.severity === 0)
    .map((d) => `${d.code} at ${d.path.join("/")}: ${d.message}`);
}

async function assertValidAsyncApi(document: unknown): Promise<void> {
  assert.deepEqual(await parserErrors(document), [], "the AsyncAPI parser found errors");
}

/** A JSON Schema validator over the whole document, so `$ref`s resolve as in AsyncAPI tools. */
function schemaValidator(document: AsyncApiDocument): (pointer: string) => ValidateFunction {
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema(document, "doc");
  return (pointer) => {
    const validate = ajv.getSchema(`doc#${pointer}`);
    assert.ok(validate, `no schema at ${pointer}`);
    return validate;
  };
}

/** The structured-mode JSON of an event, as it travels. */
function wire(event: unknown): Record<string, unknown> {
  return JSON.parse(JSON.stringify(event));
}

function argumentOf(error: unknown): string {
  assert.ok(error instanceof InvalidArgumentError, `expected InvalidArgumentError, got ${error}`);
  return error.argument;
}

// --- The definitions of the examples, each with data it publishes and data its schema refuses ---

interface ExampleEvent {
  definition: EventDefinition;
  good: unknown;
  bad: unknown;
  receives: boolean;
  sends: boolean;
}

const userRegistered = (scope: EventScope) =>
  defineEvent({
    type: "user.registered",
    scope,
    source: "/users",
    data: z.object({ userId: z.string(), email: z.string().email() }),
  });

const exampleEvents: Record<string, ExampleEvent[]> = {
  "08_eventbus_basic.ts": [
    {
      definition: defineEvent({
        type: "cache.invalidated",
        scope: EventScope.PROCESS,
        source: "/cache",
        data: z.object({ key: z.string() }),
      }),
      good: { key: "user:42" },
      bad: { key: 42 },
      receives: true,
      sends: true,
    },
    {
      definition: userRegistered(EventScope.APP),
      good: { userId: "U-001", email: "ada@example.com" },
      bad: { userId: "U-001", email: "not an address" },
      receives: true,
      sends: true,
    },
  ],
  "09_eventbus_decorator.ts": [{
    definition: userRegistered(EventScope.APP),
    good: { userId: "U-001", email: "user@example.com" },
    bad: { email: "user@example.com" },
    receives: true,
    sends: true,
  }],
  "10_eventbus_scopes.ts": [
    {
      definition: userRegistered(EventScope.APP),
      good: { userId: "U-7", email: "ada@example.com" },
      bad: { userId: 7, email: "ada@example.com" },
      receives: true,
      sends: true,
    },
    {
      definition: defineEvent({
        type: "cache.warmed",
        scope: EventScope.PROCESS,
        source: "/cache",
        data: z.object({ entries: z.number().int() }),
      }),
      good: { entries: 128 },
      bad: { entries: 12.5 },
      receives: true,
      sends: true,
    },
  ],
  "11_eventbus_context_manager.ts": [{
    definition: defineEvent({
      type: "task.completed",
      scope: EventScope.PROCESS,
      source: "/tasks",
      data: z.object({ taskId: z.string(), durationMs: z.number().nonnegative() }),
    }),
    good: { taskId: "T-1", durationMs: 120 },
    bad: { taskId: "T-1", durationMs: -1 },
    receives: true,
    sends: true,
  }],
  "12_eventbus_multiple_handlers.ts": [{
    definition: defineEvent({
      type: "order.shipped",
      source: "/shipping",
      data: z.object({ orderId: z.string(), trackingNumber: z.string() }),
    }),
    good: { orderId: "ORD-002", trackingNumber: "TRK-123456" },
    bad: { orderId: "ORD-002" },
    receives: true,
    sends: true,
  }],
  "13_eventbus_introspection.ts": [
    {
      definition: defineEvent({
        type: "payment.received",
        source: "/payments",
        data: z.object({ paymentId: z.string(), amount: z.number() }),
      }),
      good: { paymentId: "P-1", amount: 10 },
      bad: { paymentId: "P-1", amount: "10" },
      receives: true,
      sends: false,
    },
    {
      definition: defineEvent({
        type: "config.reloaded",
        scope: EventScope.PROCESS,
        source: "/config",
        data: z.object({ version: z.number().int() }),
      }),
      good: { version: 2 },
      bad: { version: "2" },
      receives: true,
      sends: false,
    },
  ],
  "14_eventbus_custom_logger.ts": [{
    definition: defineEvent({
      type: "invoice.issued",
      source: "/billing",
      data: z.object({ invoiceId: z.string() }),
    }),
    good: { invoiceId: "INV-7" },
    bad: {},
    receives: true,
    sends: true,
  }],
  "15_http_eventbus_integration.ts": [
    {
      definition: defineEvent({
        type: "order.created",
        scope: EventScope.PROCESS,
        source: "/order-service",
        data: z.object({
          orderId: z.string().min(1),
          customerId: z.string().min(1),
          amount: z.number().positive(),
        }),
      }),
      good: { orderId: "ORD-001", customerId: "CUST-123", amount: 99.99 },
      bad: { orderId: "ORD-002", customerId: "CUST-123", amount: -5 },
      receives: true,
      sends: true,
    },
    {
      definition: defineEvent({
        type: "notification.sent",
        scope: EventScope.APP,
        source: "/notification-service",
        data: z.object({
          userId: z.string().min(1),
          message: z.string(),
          channel: z.enum(["email", "sms", "push"]),
        }),
      }),
      good: { userId: "USER-001", message: "Hello!", channel: "email" },
      bad: { userId: "USER-001", message: "Hello!", channel: "fax" },
      receives: true,
      sends: true,
    },
  ],
  "16_event_handler_auto_conversion.ts": [{
    definition: defineEvent({
      type: "order.created",
      scope: EventScope.PROCESS,
      source: "/orders",
      data: z.object({
        orderId: z.string(),
        amount: z.coerce.number().positive(),
        items: z.array(z.string()),
      }),
    }),
    // "19.5" is coerced on construction: the wire carries the number.
    good: { orderId: "ORD-2", amount: "19.5", items: ["Cable"] },
    bad: { orderId: 3 },
    receives: true,
    sends: true,
  }],
  "17_event_handler_type_safety.ts": [{
    definition: defineEvent({
      type: "payment.processed",
      scope: EventScope.PROCESS,
      source: "/payments",
      data: z.object({
        paymentId: z.string(),
        amount: z.number(),
        method: z.enum(["card", "paypal"]),
      }),
    }),
    good: { paymentId: "PAY-1", amount: 12.5, method: "card" },
    bad: { paymentId: "P-0", amount: 1, method: "cash" },
    receives: true,
    sends: false,
  }],
  "19_hono_integration.ts": [{
    definition: defineEvent({
      type: "user.signed_up",
      scope: EventScope.APP,
      source: "/signups",
      data: z.object({ email: z.email() }),
    }),
    good: { email: "grace@example.com" },
    bad: { email: "grace" },
    receives: true,
    sends: true,
  }],
  "20_opentelemetry.ts": [{
    definition: defineEvent({
      type: "order.placed",
      source: "/shop",
      data: z.object({ orderId: z.string(), items: z.number().int() }),
    }),
    good: { orderId: "A1", items: 3 },
    bad: { orderId: "A1", items: 2.5 },
    receives: true,
    sends: true,
  }],
  "22_testing_helpers.ts": [
    {
      definition: defineEvent({
        type: "order.placed",
        scope: EventScope.APP,
        source: "/checkout",
        data: z.object({ orderId: z.string(), total: z.number() }),
      }),
      good: { orderId: "A1", total: 30 },
      bad: { orderId: "A1", total: "30" },
      receives: true,
      sends: true,
    },
    {
      definition: defineEvent({
        type: "receipt.sent",
        scope: EventScope.PROCESS,
        source: "/mail",
        data: z.object({ orderId: z.string(), to: z.string() }),
      }),
      good: { orderId: "A1", to: "ada@example.com" },
      bad: { orderId: "A1" },
      receives: false,
      sends: true,
    },
  ],
  "23_deno_deploy.ts": [
    {
      definition: defineEvent({
        type: "order.placed",
        scope: EventScope.APP,
        source: "/orders",
        data: z.object({ orderId: z.string().min(1), amount: z.number().positive() }),
      }),
      good: { orderId: "A1", amount: 12.5 },
      bad: { orderId: "A2", amount: -1 },
      receives: true,
      sends: true,
    },
    {
      definition: defineEvent({
        type: "page.viewed",
        scope: EventScope.PROCESS,
        source: "/web",
        data: z.object({ path: z.string() }),
      }),
      good: { path: "/orders" },
      bad: { path: 1 },
      receives: true,
      sends: true,
    },
  ],
  "demo.ts": [
    {
      definition: defineEvent({
        type: "com.example.order.created",
        scope: EventScope.APP,
        source: "/orders",
        data: z.object({ orderId: z.string(), amount: z.number().positive() }),
      }),
      good: { orderId: "A1", amount: 12.5 },
      bad: { orderId: "A1", amount: 0 },
      receives: true,
      sends: true,
    },
    {
      definition: defineEvent({
        type: "com.example.cache.invalidated",
        scope: EventScope.PROCESS,
        source: "/cache",
        data: z.object({ key: z.string() }),
      }),
      good: { key: "user:42" },
      bad: null,
      receives: true,
      sends: true,
    },
  ],
  // Imported, not copied: the example exports its definitions and runs only as a program.
  "21_asyncapi.ts": [
    {
      definition: ex21.OrderPlaced,
      good: {
        orderId: "A1",
        placedAt: "2024-05-01T10:00:00Z",
        lines: [{ sku: "SKU-1", quantity: 2 }],
      },
      bad: { orderId: "A1", placedAt: "2024-05-01T10:00:00Z", lines: [] },
      receives: false,
      sends: true,
    },
    {
      definition: ex21.PaymentCaptured,
      good: { orderId: "A1", amount: 42, currency: "EUR" },
      bad: { orderId: "A1", amount: 42, currency: "GBP" },
      receives: true,
      sends: false,
    },
    {
      definition: ex21.CartCleared,
      good: { cartId: "C-1" },
      bad: { cartId: 1 },
      receives: true,
      sends: true,
    },
  ],
};

/** A bus that sends and receives as the example does. */
function exampleBus(events: ExampleEvent[]): EventBus {
  const bus = new EventBus({ logger: silentLogger });
  for (const { definition, receives, sends } of events) {
    if (sends) bus.declare(definition);
    if (receives) bus.subscribe(definition, function handle() {});
  }
  return bus;
}

Deno.test("every example file with defineEvent is covered by the data schema test", async () => {
  const files: string[] = [];
  for await (const entry of Deno.readDir(new URL("../examples/", import.meta.url))) {
    if (!entry.isFile || !entry.name.endsWith(".ts")) continue;
    const text = await Deno.readTextFile(new URL(`../examples/${entry.name}`, import.meta.url));
    if (text.includes("defineEvent({")) files.push(entry.name);
  }
  assert.deepEqual(files.sort(), Object.keys(exampleEvents).sort());
});

Deno.test("the exported bus of example 21 sends and receives as its table says", () => {
  const rows = (infos: { definition: EventDefinition; receives: boolean; sends: boolean }[]) =>
    infos.map(({ definition, receives, sends }) => `${definition.type} ${receives} ${sends}`)
      .sort();
  assert.deepEqual(rows(ex21.bus.definitions()), rows(exampleEvents["21_asyncapi.ts"]));
});

for (const [file, events] of Object.entries(exampleEvents)) {
  Deno.test(`asyncapi: the events of ${file} give a valid document whose schemas match zod`, async () => {
    const document = asyncapi(exampleBus(events), OPTIONS);
    await assertValidAsyncApi(document);
    const schemaAt = schemaValidator(document);
    for (const { definition, good, bad } of events) {
      const key = Object.keys(document.channels)
        .find((k) => document.channels[k].title === definition.type)!;
      const payload = schemaAt(`/components/messages/${key}/payload`);
      const data = schemaAt(`/components/schemas/${key}Data`);
      const event = wire(new definition({ data: good }));
      assert.ok(payload(event), `${definition.type}: ${JSON.stringify(payload.errors)}`);
      assert.ok(data(event.data), `${definition.type} data: ${JSON.stringify(data.errors)}`);
      // The wrong data is refused by both zod and the document.
      assert.equal(definition.schema.safeParse(bad).success, false);
      assert.equal(data(bad), false, `${definition.type} accepted ${JSON.stringify(bad)}`);
      assert.equal(payload({ ...event, data: bad }), false);
      assert.equal(payload({ ...event, type: `${definition.type}.other` }), false);
    }
  });
}

Deno.test("asyncapi: channels, operations and scopes of a bus that sends, receives or both", async () => {
  const def = (type: string, scope: EventScope) =>
    defineEvent({ type, scope, source: "/s", data: z.object({ n: z.number() }) });
  const SentApp = def("sent.app", EventScope.APP);
  const ReceivedProcess = def("received.process", EventScope.PROCESS);
  const BothApp = def("both.app", EventScope.APP);
  const Dropped = def("dropped", EventScope.APP);
  const bus = new EventBus({ logger: silentLogger, channelPrefix: "shop." }).declare(SentApp);
  bus.subscribe(ReceivedProcess, function onReceived() {});
  bus.declare(BothApp).subscribe(BothApp, function onBoth() {});
  await bus.subscribe(Dropped, function gone() {}).unsubscribe();

  const document = asyncapi(bus, { ...OPTIONS, description: "A shop." });
  await assertValidAsyncApi(document);
  assert.deepEqual(document.info, {
    title: "Test service",
    version: "1.0.0",
    description: "A shop.",
  });
  assert.deepEqual(Object.keys(document.channels), ["SentApp", "ReceivedProcess", "BothApp"]);
  assert.deepEqual(Object.keys(document.operations).sort(), [
    "receiveBothApp",
    "receiveReceivedProcess",
    "sendBothApp",
    "sendSentApp",
  ]);
  assert.equal(document.channels.SentApp.address, "shop.sent.app");
  assert.equal(document.channels.ReceivedProcess["x-eventbus-scope"], "process");
  assert.equal(document.channels.BothApp["x-eventbus-scope"], "app");
  assert.equal(document.operations.sendSentApp.action, "send");
  assert.equal(document.operations.receiveReceivedProcess.action, "receive");
  assert.deepEqual(document.operations.receiveBothApp.channel, { $ref: "#/channels/BothApp" });
  assert.deepEqual(document.operations.sendBothApp.messages, [
    { $ref: "#/channels/BothApp/messages/BothApp" },
  ]);
  const message = document.components.messages.ReceivedProcess;
  assert.equal(message.name, "received.process");
  assert.equal(message.contentType, "application/cloudevents+json");
  assert.equal(document.defaultContentType, "application/cloudevents+json");
});

Deno.test("asyncapi: an empty bus gives a valid document without channels", async () => {
  const document = asyncapi(new EventBus({ logger: silentLogger }), OPTIONS);
  await assertValidAsyncApi(document);
  assert.deepEqual(document.channels, {});
  assert.deepEqual(document.operations, {});
});

/** A broker this library does not know: only the name of its class tells what it is. */
class RelayBroker extends Object {
  readonly inner: MemoryBroker = new MemoryBroker({ logger: silentLogger });
  publish(message: unknown, channel: string): Promise<void> {
    return this.inner.publish(message, channel);
  }
}

/** A broker of someone else's that says what it guarantees. */
class OutboxBroker extends RelayBroker {
  readonly delivery: BrokerDelivery = {
    transport: "sql-outbox",
    guarantee: "at-least-once",
    description: "A table of the service's database, sent on by a relay: at least once.",
  };
}

Deno.test("asyncapi: the delivery guarantee comes from the broker of each scope", async () => {
  const Local = defineEvent({
    type: "local.thing",
    scope: EventScope.PROCESS,
    source: "/l",
    data: z.object({}),
  });
  const Shared = defineEvent({ type: "shared.thing", source: "/s", data: z.object({}) });
  const cases: [Broker, string, string][] = [
    [new MemoryBroker({ logger: silentLogger }), "memory", "at-most-once"],
    [new RedisBroker({ logger: silentLogger }), "redis-stream", "at-least-once"],
    [new RedisBroker({ mode: "pubsub", logger: silentLogger }), "redis-pubsub", "at-most-once"],
    [new KvBroker({ path: ":memory:", logger: silentLogger }), "deno-kv", "at-least-once"],
    [new OutboxBroker() as unknown as Broker, "sql-outbox", "at-least-once"],
    [new RelayBroker() as unknown as Broker, "RelayBroker", "unspecified"],
  ];
  for (const [app, broker, delivery] of cases) {
    const bus = new EventBus({ app, logger: silentLogger }).declare(Local, Shared);
    const document = asyncapi(bus, OPTIONS);
    await assertValidAsyncApi(document);
    const { LocalThing, SharedThing } = document.channels;
    assert.equal(LocalThing["x-eventbus-broker"], "memory");
    assert.equal(LocalThing["x-eventbus-delivery"], "at-most-once");
    assert.equal(SharedThing["x-eventbus-broker"], broker);
    assert.equal(SharedThing["x-eventbus-delivery"], delivery);
    assert.match(document.operations.sendSharedThing.description, new RegExp(delivery));
    const said = app.delivery?.description ?? "does not know";
    assert.ok(SharedThing.description.includes(said), SharedThing.description);
  }
});

Deno.test("asyncapi: a broker describing its delivery wrongly is named in the error", () => {
  const Shared = defineEvent({ type: "shared.thing", source: "/s", data: z.object({}) });
  const wrong = [
    { transport: "q", guarantee: "exactly-once", description: "never" },
    { transport: "", guarantee: "at-most-once", description: "x" },
    { transport: "q", guarantee: "at-most-once" },
    "at-least-once",
  ];
  for (const delivery of wrong) {
    const app = Object.assign(new RelayBroker(), { delivery }) as unknown as Broker;
    const bus = new EventBus({ app, logger: silentLogger }).declare(Shared);
    assert.throws(
      () => asyncapi(bus, OPTIONS),
      (error: unknown) => argumentOf(error) === "bus.appBroker.delivery",
      JSON.stringify(delivery),
    );
  }
});

Deno.test("asyncapi: an event that crossed Redis matches the document of its bus", async () => {
  const keyPrefix = uniquePrefix("asyncapi");
  const admin = await adminClient();
  const Paid = defineEvent({
    type: "invoice.paid",
    source: "/billing",
    data: z.object({ invoiceId: z.string(), paidAt: z.coerce.date(), cents: z.number().int() }),
  });
  const bus = new EventBus({
    app: new RedisBroker({ keyPrefix, group: "asyncapi-test", logger: silentLogger }),
    logger: silentLogger,
  });
  const received = deferred<unknown>();
  bus.subscribe(Paid, function record(event) {
    received.resolve(wire(event));
  });
  try {
    await bus.start();
    await bus.publish(
      new Paid({
        data: { invoiceId: "I-1", paidAt: new Date(), cents: 1250 },
        extensions: { tenant: "acme" },
      }),
    );
    const event = await received.promise;
    const document = asyncapi(bus, OPTIONS);
    await assertValidAsyncApi(document);
    assert.equal(document.channels.InvoicePaid["x-eventbus-delivery"], "at-least-once");
    const payload = schemaValidator(document)("/components/messages/InvoicePaid/payload");
    assert.ok(payload(event), JSON.stringify(payload.errors));
  } finally {
    await bus.stop();
    await deleteKeys(admin, keyPrefix);
    admin.disconnect();
  }
});

Deno.test("asyncapi: types that are no valid keys get sanitized, unique keys", async () => {
  const def = (type: string) => defineEvent({ type, source: "/s", data: z.object({}) });
  const bus = new EventBus({ logger: silentLogger })
    .declare(def("order.created"), def("order_created"), def("com.example/v1:paid"), def("9lives"));
  const document = asyncapi(bus, OPTIONS);
  await assertValidAsyncApi(document);
  assert.deepEqual(Object.keys(document.channels), [
    "OrderCreated",
    "OrderCreated2",
    "ComExampleV1Paid",
    "Event9lives",
  ]);
  assert.equal(document.channels.ComExampleV1Paid.address, "events.com.example/v1:paid");
  assert.equal(document.components.messages.OrderCreated2.name, "order_created");
  assert.ok(document.components.schemas.OrderCreated2Data);
});

Deno.test("asyncapi: dates are RFC 3339 strings; transforms are refused unless asked", async () => {
  const Dated = defineEvent({
    type: "dated",
    source: "/d",
    data: z.object({ at: z.coerce.date(), until: z.date().optional() }),
  });
  const dated = asyncapi(new EventBus({ logger: silentLogger }).declare(Dated), OPTIONS);
  await assertValidAsyncApi(dated);
  assert.deepEqual(dated.components.schemas.DatedData.properties, {
    at: { type: "string", format: "date-time" },
    until: { type: "string", format: "date-time" },
  });
  const data = schemaValidator(dated)("/components/schemas/DatedData");
  assert.ok(data(wire(new Dated({ data: { at: "2024-05-01T10:00:00Z" } })).data));
  assert.equal(data({ at: "yesterday" }), false);

  const Trimmed = defineEvent({
    type: "trimmed",
    source: "/t",
    data: z.object({ name: z.string().transform((s) => s.trim()), big: z.bigint().optional() }),
  });
  const bus = new EventBus({ logger: silentLogger }).declare(Trimmed);
  assert.throws(() => asyncapi(bus, OPTIONS), (error: unknown) => {
    assert.equal(argumentOf(error), "bus");
    const { message } = error as Error;
    assert.match(message, /"trimmed"/);
    assert.match(message, /data\.name \(transform\)/);
    assert.match(message, /data\.big \(bigint\)/);
    assert.match(message, /unrepresentable: "any"/);
    return true;
  });
  const loose = asyncapi(bus, { ...OPTIONS, unrepresentable: "any" });
  await assertValidAsyncApi(loose);
  assert.deepEqual(loose.components.schemas.TrimmedData.properties, { name: {}, big: {} });
});

Deno.test("asyncapi: recursive schemas live in components and their refs resolve", async () => {
  type Category = { name: string; children: Category[] };
  const Category: z.ZodType<Category> = z.object({
    name: z.string(),
    get children() {
      return z.array(Category);
    },
  });
  const Tree = defineEvent({
    type: "catalog.updated",
    source: "/catalog",
    data: z.object({ root: Category }),
  });
  const document = asyncapi(new EventBus({ logger: silentLogger }).declare(Tree), OPTIONS);
  await assertValidAsyncApi(document);
  const refs = JSON.stringify(document.components.schemas).match(/"\$ref":"[^"]*"/g) ?? [];
  assert.ok(refs.length > 0);
  for (const ref of refs) assert.match(ref, /#\/components\/schemas\/CatalogUpdatedData/);
  const payload = schemaValidator(document)("/components/messages/CatalogUpdated/payload");
  const tree = { name: "all", children: [{ name: "books", children: [] }] };
  assert.ok(payload(wire(new Tree({ data: { root: tree } }))), JSON.stringify(payload.errors));
  const broken = { name: "all", children: [{ name: "books", children: [{ name: 5 }] }] };
  assert.equal(
    payload({ ...wire(new Tree({ data: { root: tree } })), data: { root: broken } }),
    false,
  );
});

Deno.test("asyncapi: schemas registered with an id become components of their own", async () => {
  const Money = z.object({ cents: z.number().int(), currency: z.string() })
    .meta({ id: "Money/v1" });
  const Priced = defineEvent({
    type: "item.priced",
    source: "/prices",
    data: z.object({ price: Money, tax: Money }),
  });
  const document = asyncapi(new EventBus({ logger: silentLogger }).declare(Priced), OPTIONS);
  await assertValidAsyncApi(document);
  const { ItemPricedData, ItemPricedDataMoneyV1 } = document.components.schemas;
  assert.deepEqual(ItemPricedData.properties, {
    price: { $ref: "#/components/schemas/ItemPricedDataMoneyV1" },
    tax: { $ref: "#/components/schemas/ItemPricedDataMoneyV1" },
  });
  assert.deepEqual(ItemPricedDataMoneyV1.required, ["cents", "currency"]);
  const data = schemaValidator(document)("/components/schemas/ItemPricedData");
  const price = { cents: 100, currency: "EUR" };
  assert.ok(data({ price, tax: price }), JSON.stringify(data.errors));
  assert.equal(data({ price, tax: { cents: 1.5, currency: "EUR" } }), false);
});

Deno.test("asyncapi: the envelope is the structured CloudEvent, extensions included", async () => {
  const Noted = defineEvent({
    type: "note.added",
    source: "/notes",
    data: z.object({ text: z.string() }).optional(),
  });
  const document = asyncapi(new EventBus({ logger: silentLogger }).declare(Noted), OPTIONS);
  await assertValidAsyncApi(document);
  const payload = schemaValidator(document)("/components/messages/NoteAdded/payload");
  const full = wire(
    new Noted({
      data: { text: "hi" },
      subject: "n-1",
      dataschema: "https://example.com/note.json",
      extensions: { tenant: "acme", priority: 3, urgent: true },
    }),
  );
  assert.ok(payload(full), JSON.stringify(payload.errors));
  // Without data: the schema accepts undefined, so data is optional on the wire.
  assert.ok(payload(wire(new Noted({ data: undefined }))), JSON.stringify(payload.errors));
  for (
    const [attribute, value] of [
      ["specversion", "0.3"],
      ["id", ""],
      ["time", "not a time"],
      ["Tenant", "upper-case extension name"],
      ["tenant", { nested: true }],
    ] as const
  ) {
    assert.equal(payload({ ...full, [attribute]: value }), false, `${attribute}: ${value}`);
  }
  const { id: _id, ...withoutId } = full;
  assert.equal(payload(withoutId), false);
});

Deno.test("asyncapi: servers are copied into a valid document", async () => {
  const servers = {
    production: { host: "redis.internal:6379", protocol: "redis", description: "Shared Redis" },
  };
  const document = asyncapi(new EventBus({ logger: silentLogger }), { ...OPTIONS, servers });
  await assertValidAsyncApi(document);
  assert.deepEqual(document.servers, servers);
  assert.notEqual(document.servers?.production, servers.production);
});

Deno.test("asyncapi: wrong arguments throw InvalidArgumentError naming them", () => {
  const bus = new EventBus({ logger: silentLogger });
  const cases: [unknown, unknown, string][] = [
    [null, OPTIONS, "bus"],
    [{ definitions: () => [] }, OPTIONS, "bus"],
    [bus, undefined, "options"],
    [bus, { version: "1" }, "title"],
    [bus, { title: "T", version: " " }, "version"],
    [bus, { ...OPTIONS, description: 5 }, "description"],
    [bus, { ...OPTIONS, servers: [] }, "servers"],
    [bus, { ...OPTIONS, servers: { "a b": { host: "h", protocol: "redis" } } }, "servers.a b"],
    [bus, { ...OPTIONS, servers: { s: { protocol: "redis" } } }, "servers.s.host"],
    [bus, { ...OPTIONS, servers: { s: { host: "h", protocol: "" } } }, "servers.s.protocol"],
    [bus, { ...OPTIONS, servers: { s: { host: "h", protocol: "p", port: 1 } } }, "servers.s.port"],
    [
      bus,
      { ...OPTIONS, servers: { s: { host: "h", protocol: "p", title: 1 } } },
      "servers.s.title",
    ],
    [bus, { ...OPTIONS, unrepresentable: "ignore" }, "unrepresentable"],
  ];
  for (const [target, options, argument] of cases) {
    assert.throws(
      () => asyncapi(target as EventBus, options as AsyncApiOptions),
      (error: unknown) => argumentOf(error) === argument,
      `expected an error about ${argument}`,
    );
  }
  assert.throws(() => toYAML(null as never), (e: unknown) => argumentOf(e) === "document");
  assert.throws(() => toJSON({} as never), (e: unknown) => argumentOf(e) === "document");
});

Deno.test("asyncapi: a channel address with braces is refused, not mistaken for parameters", () => {
  const Odd = defineEvent({ type: "odd.{id}", source: "/o", data: z.object({}) });
  const bus = new EventBus({ logger: silentLogger }).declare(Odd);
  assert.throws(() => asyncapi(bus, OPTIONS), (error: unknown) => {
    assert.equal(argumentOf(error), "bus");
    assert.match((error as Error).message, /events\.odd\.\{id\}/);
    return true;
  });
});

Deno.test("toYAML and toJSON write the document so it parses back unchanged", async () => {
  const Shared = z.object({ sku: z.string() });
  const Bought = defineEvent({
    type: "item.bought",
    source: "/shop",
    // One schema object used twice: YAML must not turn it into anchors and aliases.
    data: z.object({ first: Shared, second: Shared }),
  });
  const document = asyncapi(new EventBus({ logger: silentLogger }).declare(Bought), OPTIONS);
  const yaml = toYAML(document);
  assert.doesNotMatch(yaml, /[&*]a\d/);
  assert.deepEqual(parseYAML(yaml), document);
  assert.deepEqual(JSON.parse(toJSON(document)), document);
  await assertValidAsyncApi(yaml);
});

// --- The command-line tool and the example ---

async function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const script = new URL("../scripts/asyncapi.ts", import.meta.url).pathname;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

const EXAMPLE = new URL("../examples/21_asyncapi.ts", import.meta.url).pathname;

Deno.test("CLI: writes YAML and JSON files that parse back into a valid document", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (
      const [file, read] of [
        ["out.yaml", (text: string) => parseYAML(text)],
        ["out.json", (text: string) => JSON.parse(text)],
      ] as const
    ) {
      const out = `${dir}/${file}`;
      const run = await runCli([
        EXAMPLE,
        "--title",
        "Checkout",
        "--version",
        "2.0.0",
        "--out",
        out,
      ]);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stderr, /3 channel\(s\), 4 operation\(s\)/);
      const document = read(await Deno.readTextFile(out));
      await assertValidAsyncApi(document);
      assert.deepEqual(document.info, { title: "Checkout", version: "2.0.0" });
      assert.deepEqual(Object.keys(document.channels), [
        "OrderPlaced",
        "CartCleared",
        "PaymentCaptured",
      ]);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CLI: prints YAML without --out, and takes a named export", async () => {
  const run = await runCli([EXAMPLE, "--export", "bus", "--title", "C", "--version", "1"]);
  assert.equal(run.code, 0, run.stderr);
  const document = parseYAML(run.stdout);
  assert.equal(document.info.title, "C");
  assert.equal(document.operations.receivePaymentCaptured.action, "receive");
});

Deno.test("CLI: a wrong command line exits with 2 and says why", async () => {
  const cases: [string[], RegExp][] = [
    [[EXAMPLE, "--version", "1"], /--title is required/],
    [[EXAMPLE, "--title", "T"], /--version is required/],
    [["--title", "T", "--version", "1"], /exactly one module/],
    [[EXAMPLE, "--title", "T", "--version", "1", "--out", "x.txt"], /--out must end with/],
    [[EXAMPLE, "--title", "T", "--version", "1", "--export", "nope"], /exports one as: bus/],
  ];
  for (const [args, pattern] of cases) {
    const run = await runCli(args);
    assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
    assert.match(run.stderr, pattern);
    assert.match(run.stderr, /usage: deno task asyncapi/);
  }
});

Deno.test("example 21_asyncapi.ts prints a valid contract, then runs its bus", async () => {
  const run = await runExample("21_asyncapi.ts", { check: true });
  assert.equal(run.code, 0, run.stderr);
  const [yaml, rest] = run.stdout.split("\n\n");
  const document = parseYAML(yaml);
  await assertValidAsyncApi(document);
  assert.equal(document.channels.CartCleared["x-eventbus-scope"], "process");
  assert.match(rest, /cart C-1 cleared/);
});

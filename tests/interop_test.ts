// Interoperability with the reference implementation, the npm `cloudevents`
// SDK v10, in both directions.

import assert from "node:assert/strict";
import { CloudEvent as SdkEvent, HTTP } from "cloudevents";
import { z } from "zod";
import { defineEvent } from "../src/define_event.ts";
import { CloudEvent } from "../src/event.ts";

const SDK_CORE = new Set([
  "specversion",
  "id",
  "source",
  "type",
  "datacontenttype",
  "dataschema",
  "subject",
  "time",
  "data",
  "data_base64",
  "datacontentencoding",
  "schemaurl",
]);

interface View {
  attributes: Record<string, unknown>;
  extensions: Record<string, unknown>;
  data: unknown;
}

function bytes(value: unknown): number[] {
  assert.ok(ArrayBuffer.isView(value), `expected binary data, got ${typeof value}`);
  const view = value as ArrayBufferView;
  return Array.from(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
}

/** Attributes, extensions and data of an SDK event; binary data as a byte list. */
function sdkView(event: object): View {
  const record = event as unknown as Record<string, unknown>;
  const attributes: Record<string, unknown> = {};
  const extensions: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(record)) {
    if (value === undefined || name === "data" || name === "data_base64") continue;
    if (SDK_CORE.has(name)) attributes[name] = value;
    else extensions[name] = value;
  }
  const data = record.data_base64 !== undefined ? bytes(record.data) : record.data;
  return { attributes, extensions, data };
}

/** The same view of one of our events. */
function ourView(event: CloudEvent): View {
  const attributes: Record<string, unknown> = {};
  for (
    const name of [
      "specversion",
      "id",
      "source",
      "type",
      "datacontenttype",
      "dataschema",
      "subject",
      "time",
    ] as const
  ) {
    if (event[name] !== undefined) attributes[name] = event[name];
  }
  const data = event.data instanceof Uint8Array ? Array.from(event.data) : event.data;
  return { attributes, extensions: { ...event.extensions }, data };
}

const init = {
  id: "order-1",
  type: "com.example.order.created",
  source: "https://example.com/orders",
  subject: "A1",
  datacontenttype: "application/json",
  dataschema: "https://example.com/schemas/order.json",
  time: "2024-01-31T12:00:00.000Z",
  data: { orderId: "A1", amount: 12.5, lines: [{ sku: "X", qty: 2 }] },
};
const extensions = { tenant: "acme", attempt: 3, urgent: true };

Deno.test("interop: our JSON is accepted by the SDK and equals the event the SDK makes", () => {
  const ours = new CloudEvent({ ...init, extensions });
  const text = JSON.stringify(ours);
  const sdkMade = new SdkEvent({ ...init, ...extensions });

  // The SDK's constructor validates (strict mode) and reads our JSON object.
  const sdkRead = new SdkEvent(JSON.parse(text));
  assert.deepStrictEqual(sdkView(sdkRead), sdkView(sdkMade));
  assert.deepStrictEqual(sdkView(sdkRead), ourView(ours));

  // The SDK's HTTP structured mode reads our JSON text.
  const received = HTTP.toEvent({
    headers: { "content-type": "application/cloudevents+json; charset=utf-8" },
    body: text,
  });
  assert.ok(!Array.isArray(received));
  assert.deepStrictEqual(sdkView(received as SdkEvent<unknown>), sdkView(sdkMade));

  // The wire forms are the same JSON.
  assert.deepStrictEqual(JSON.parse(text), JSON.parse(JSON.stringify(sdkMade)));
});

Deno.test("interop: the SDK's structured JSON parses here to an equal event", () => {
  const sdkEvent = new SdkEvent({ ...init, ...extensions });
  const message = HTTP.structured(sdkEvent);
  assert.equal(typeof message.body, "string");
  const ours = CloudEvent.fromJSON(message.body as string);
  const expected = new CloudEvent({ ...init, extensions });
  assert.deepStrictEqual(ourView(ours), ourView(expected));
  assert.deepStrictEqual(ourView(ours), sdkView(sdkEvent));
  assert.deepStrictEqual(ours.toJSON(), expected.toJSON());
  // JSON.stringify of an SDK event, and its plain-object form, read the same.
  assert.deepStrictEqual(CloudEvent.fromJSON(JSON.stringify(sdkEvent)).toJSON(), expected.toJSON());
  assert.deepStrictEqual(
    CloudEvent.fromJSON(JSON.parse(JSON.stringify(sdkEvent))).toJSON(),
    expected.toJSON(),
  );
});

Deno.test("interop: SDK events with default id and time parse here", () => {
  const sdkEvent = new SdkEvent({ type: "ping", source: "/p" });
  const ours = CloudEvent.fromJSON(JSON.stringify(sdkEvent));
  assert.equal(ours.id, sdkEvent.id);
  assert.equal(Date.parse(ours.time!), Date.parse(sdkEvent.time!));
  assert.deepStrictEqual(ours.extensions, {});
  assert.equal(ours.data, undefined);
});

Deno.test("interop: binary data travels as data_base64 both ways", () => {
  const payload = new Uint8Array([0, 1, 2, 127, 128, 254, 255]);
  const ours = new CloudEvent({
    id: "bin-1",
    type: "blob.stored",
    source: "/blobs",
    time: "2024-01-31T12:00:00.000Z",
    data: payload,
  });
  const sdkRead = new SdkEvent(JSON.parse(JSON.stringify(ours)));
  const sdkMade = new SdkEvent({
    id: "bin-1",
    type: "blob.stored",
    source: "/blobs",
    time: "2024-01-31T12:00:00.000Z",
    data: payload,
  });
  assert.equal(sdkRead.data_base64, sdkMade.data_base64);
  assert.deepStrictEqual(sdkView(sdkRead), sdkView(sdkMade));
  assert.deepStrictEqual(sdkView(sdkRead), ourView(ours));

  const back = CloudEvent.fromJSON(JSON.stringify(sdkMade));
  assert.ok(back.data instanceof Uint8Array);
  assert.deepStrictEqual(ourView(back), ourView(ours));
  assert.deepStrictEqual(back.toJSON(), ours.toJSON());
});

Deno.test("interop: an event survives the SDK's HTTP binary mode", () => {
  const ours = new CloudEvent({ ...init, extensions });
  const message = HTTP.binary(new SdkEvent(JSON.parse(JSON.stringify(ours))));
  assert.equal(message.headers["ce-tenant"], "acme");
  const received = HTTP.toEvent(message) as SdkEvent<unknown>;
  assert.deepStrictEqual(CloudEvent.fromJSON(JSON.stringify(received)).toJSON(), ours.toJSON());
});

Deno.test("interop: batches in the JSON batch format, both ways", () => {
  const events = [
    new CloudEvent({ ...init, id: "b1", extensions }),
    new CloudEvent({ ...init, id: "b2", datacontenttype: "text/plain", data: "hello" }),
  ];
  const received = HTTP.toEvent({
    headers: { "content-type": "application/cloudevents-batch+json" },
    body: CloudEvent.batchToJSON(events),
  });
  assert.ok(Array.isArray(received));
  assert.deepStrictEqual(received.map(sdkView), events.map(ourView));

  const sdkEvents = [
    new SdkEvent({ ...init, id: "s1", ...extensions }),
    new SdkEvent({ ...init, id: "s2" }),
  ];
  const ours = CloudEvent.batchFromJSON(JSON.stringify(sdkEvents));
  assert.deepStrictEqual(ours.map(ourView), sdkEvents.map(sdkView));
});

Deno.test("interop: what the SDK refuses, we refuse too", () => {
  const good = { specversion: "1.0", id: "1", type: "t", source: "/s" };
  for (
    const bad of [
      { ...good, source: "" },
      { ...good, type: "" },
      { ...good, Upper: "x" },
      { ...good, time: "lunchtime" },
    ]
  ) {
    assert.throws(() => new SdkEvent(bad), `the SDK accepts ${JSON.stringify(bad)}`);
    assert.throws(() => CloudEvent.fromJSON(bad), `we accept ${JSON.stringify(bad)}`);
  }
});

Deno.test("interop: typed events go to the SDK and come back typed", () => {
  const OrderCreated = defineEvent({
    type: "com.example.order.created",
    source: "https://example.com/orders",
    data: z.object({ orderId: z.string(), amount: z.number() }),
  });
  const typed = new OrderCreated({
    id: "t-1",
    time: init.time,
    data: { orderId: "A1", amount: 12.5 },
    extensions: { tenant: "acme" },
  });
  const sdkRead = new SdkEvent(JSON.parse(JSON.stringify(typed)));
  assert.deepStrictEqual(sdkView(sdkRead), ourView(typed));
  const back = OrderCreated.parse(HTTP.structured(sdkRead).body);
  assert.ok(back instanceof OrderCreated);
  assert.deepStrictEqual(back.toJSON(), typed.toJSON());
  assert.equal(back.data.amount, 12.5);
});

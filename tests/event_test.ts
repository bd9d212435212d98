import assert from "node:assert/strict";
import { InvalidArgumentError, ValidationError } from "../src/errors.ts";
import { CloudEvent, EventScope, ScopedEvent } from "../src/event.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Runs `fn`, expects a ValidationError, and returns the paths of its issues. */
function issuePaths(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ValidationError, `expected ValidationError, got ${error}`);
    return error.issues.map((issue) => issue.path);
  }
  assert.fail("expected a ValidationError, nothing was thrown");
}

Deno.test("CloudEvent defaults: uuid id, time now, specversion 1.0", () => {
  const before = Date.now();
  const e = new CloudEvent({ type: "order.created", source: "/orders" });
  const after = Date.now();
  assert.match(e.id, UUID);
  assert.notEqual(new CloudEvent({ type: "t", source: "/s" }).id, e.id);
  assert.equal(e.specversion, "1.0");
  assert.equal(typeof e.time, "string");
  const time = Date.parse(e.time!);
  assert.ok(time >= before && time <= after, `time ${e.time} is not the construction time`);
  assert.deepStrictEqual(e.extensions, {});
  assert.equal(e.data, undefined);
  assert.equal(e.subject, undefined);
  assert.ok(!("data" in e.toJSON()));
});

Deno.test("CloudEvent keeps given attributes; Date time becomes RFC 3339; null time is absent", () => {
  const e = new CloudEvent({
    id: "A-1",
    type: "t",
    source: "https://example.com/orders",
    subject: "order/1",
    datacontenttype: "application/json; charset=utf-8",
    dataschema: "https://example.com/schema.json",
    time: "2024-01-31T12:00:00+01:00",
    extensions: { tenant: "acme", attempt: 3, urgent: false },
  });
  assert.equal(e.id, "A-1");
  assert.equal(e.subject, "order/1");
  assert.equal(e.time, "2024-01-31T12:00:00+01:00");
  assert.deepStrictEqual(e.extensions, { tenant: "acme", attempt: 3, urgent: false });
  const withDate = new CloudEvent({
    type: "t",
    source: "/s",
    time: new Date(Date.UTC(2020, 0, 2)),
  });
  assert.equal(withDate.time, "2020-01-02T00:00:00.000Z");
  const timeless = new CloudEvent({ type: "t", source: "/s", time: null });
  assert.equal(timeless.time, undefined);
  assert.ok(!("time" in timeless.toJSON()));
});

Deno.test("CloudEvent rejects bad attributes and lists every problem", () => {
  const paths = issuePaths(() =>
    new CloudEvent({
      id: "",
      type: "",
      source: "not a uri",
      specversion: "0.3" as "1.0",
      datacontenttype: "json",
      dataschema: "relative/path",
      subject: "",
      time: "yesterday",
      extensions: { Bad: "x", time: "core name", nested: { a: 1 } as unknown as string },
    })
  );
  assert.deepStrictEqual(paths.sort(), [
    "Bad",
    "datacontenttype",
    "dataschema",
    "id",
    "nested",
    "source",
    "specversion",
    "subject",
    "time",
    "time",
    "type",
  ]);
  assert.deepStrictEqual(
    issuePaths(() => new CloudEvent({ type: "t", source: "/s", time: new Date(NaN) })),
    ["time"],
  );
  assert.deepStrictEqual(
    issuePaths(() => new CloudEvent(null as unknown as { type: string; source: string })),
    [""],
  );
});

Deno.test("CloudEvent rejects extensions that are not a plain object", () => {
  const map = new Map([["tenant", "acme"]]) as unknown as Record<string, string>;
  assert.deepStrictEqual(
    issuePaths(() => new CloudEvent({ type: "t", source: "/s", extensions: map })),
    ["extensions"],
  );
  const array = ["x"] as unknown as Record<string, string>;
  assert.deepStrictEqual(
    issuePaths(() => new CloudEvent({ type: "t", source: "/s", extensions: array })),
    ["extensions"],
  );
});

Deno.test("CloudEvent is immutable: frozen object, extensions and data", () => {
  const e = new CloudEvent({
    type: "t",
    source: "/s",
    data: { order: { lines: [{ sku: "X" }] } },
    extensions: { tenant: "acme" },
  });
  assert.ok(Object.isFrozen(e));
  assert.ok(Object.isFrozen(e.extensions));
  assert.ok(Object.isFrozen(e.data));
  assert.ok(Object.isFrozen(e.data!.order.lines[0]));
  // Test modules are ES modules, hence strict mode: writes throw.
  const writable = e as unknown as Record<string, unknown>;
  assert.throws(() => {
    writable.id = "other";
  }, TypeError);
  assert.throws(() => {
    writable.brandnew = 1;
  }, TypeError);
  assert.throws(() => {
    delete writable.source;
  }, TypeError);
  assert.throws(() => {
    (e.extensions as Record<string, unknown>).tenant = "evil";
  }, TypeError);
  assert.throws(() => {
    e.data!.order.lines.push({ sku: "Y" });
  }, TypeError);
  assert.throws(() => {
    (e.data!.order.lines[0] as { sku: string }).sku = "Z";
  }, TypeError);
  assert.equal(e.data!.order.lines[0].sku, "X");
  assert.equal(e.extensions.tenant, "acme");
});

Deno.test("toJSON/fromJSON round trip keeps attributes and extensions", () => {
  const e = new CloudEvent({
    type: "order.created",
    source: "/orders",
    subject: "A1",
    datacontenttype: "application/json",
    dataschema: "https://example.com/order.json",
    data: { orderId: "A1", amount: 12.5, tags: ["x"], nothing: null },
    extensions: { tenant: "acme", attempt: 2147483647, urgent: true, constructor: "plain" },
  });
  const json = e.toJSON();
  // Extensions are flattened to the top level.
  assert.equal(json.tenant, "acme");
  assert.equal(json.attempt, 2147483647);
  assert.equal(json.urgent, true);
  assert.ok(!("extensions" in json));
  const text = JSON.stringify(e);
  const back = CloudEvent.fromJSON(text);
  assert.ok(back instanceof CloudEvent);
  assert.deepStrictEqual(back.toJSON(), json);
  assert.deepStrictEqual({ ...back.extensions }, { ...e.extensions });
  assert.deepStrictEqual(back.data, e.data);
  assert.equal(back.time, e.time);
  assert.deepStrictEqual(CloudEvent.fromJSON(json).toJSON(), json);
  // An event passed where JSON is expected is taken as it is.
  assert.equal(CloudEvent.fromJSON(e), e);
});

Deno.test("Uint8Array data is written as data_base64 and read back as bytes", () => {
  const bytes = new Uint8Array([0, 1, 2, 253, 254, 255]);
  const e = new CloudEvent({
    type: "t",
    source: "/s",
    datacontenttype: "application/octet-stream",
    data: bytes,
  });
  const json = e.toJSON();
  assert.equal(json.data_base64, "AAEC/f7/");
  assert.ok(!("data" in json));
  const back = CloudEvent.fromJSON(JSON.stringify(e));
  assert.ok(back.data instanceof Uint8Array);
  assert.deepStrictEqual(Array.from(back.data), Array.from(bytes));
  assert.equal(back.datacontenttype, "application/octet-stream");

  const empty = CloudEvent.fromJSON(JSON.stringify(
    new CloudEvent({
      type: "t",
      source: "/s",
      data: new Uint8Array(0),
    }),
  ));
  assert.ok(empty.data instanceof Uint8Array);
  assert.equal(empty.data.length, 0);

  // Larger than one encoding chunk, every byte value.
  const big = new Uint8Array(200_000).map((_, i) => (i * 7) % 256);
  const bigBack = CloudEvent.fromJSON(JSON.stringify(
    new CloudEvent({
      type: "t",
      source: "/s",
      data: big,
    }),
  ));
  assert.deepStrictEqual(bigBack.data, big);
});

Deno.test("text data stays a string; JSON data stays a JSON value", () => {
  const text = new CloudEvent({
    type: "t",
    source: "/s",
    datacontenttype: "text/plain",
    data: "hello",
  });
  assert.equal(text.toJSON().data, "hello");
  assert.equal(CloudEvent.fromJSON(JSON.stringify(text)).data, "hello");
  const json = CloudEvent.fromJSON(
    '{"specversion":"1.0","id":"1","type":"t","source":"/s","datacontenttype":"application/json","data":{"a":[1,2]}}',
  );
  assert.deepStrictEqual(json.data, { a: [1, 2] });
  const scalar = CloudEvent.fromJSON(
    '{"specversion":"1.0","id":"1","type":"t","source":"/s","data":0}',
  );
  assert.equal(scalar.data, 0);
  const falsy = CloudEvent.fromJSON(
    '{"specversion":"1.0","id":"1","type":"t","source":"/s","data":false}',
  );
  assert.equal(falsy.data, false);
});

Deno.test("null for an optional attribute or extension means absent", () => {
  const e = CloudEvent.fromJSON({
    specversion: "1.0",
    id: "1",
    type: "t",
    source: "/s",
    datacontenttype: null,
    dataschema: null,
    subject: null,
    time: null,
    data: null,
    data_base64: null,
    tenant: null,
  });
  for (const name of ["datacontenttype", "dataschema", "subject", "time", "data"] as const) {
    assert.equal(e[name], undefined, name);
  }
  assert.deepStrictEqual(e.extensions, {});
  assert.deepStrictEqual(Object.keys(e.toJSON()).sort(), ["id", "source", "specversion", "type"]);
  // Required attributes may not be null.
  assert.deepStrictEqual(
    issuePaths(() =>
      CloudEvent.fromJSON({ specversion: "1.0", id: null, type: null, source: null })
    ).sort(),
    ["id", "source", "type"],
  );
  // The constructor reads null the same way.
  const built = new CloudEvent({
    type: "t",
    source: "/s",
    subject: null as unknown as string,
    dataschema: null as unknown as string,
    datacontenttype: null as unknown as string,
  });
  assert.deepStrictEqual(Object.keys(built.toJSON()).sort(), [
    "id",
    "source",
    "specversion",
    "time",
    "type",
  ]);
});

Deno.test("fromJSON: unknown top-level members become extensions; typed extensions are checked", () => {
  const e = CloudEvent.fromJSON({
    specversion: "1.0",
    id: "1",
    type: "t",
    source: "/s",
    traceparent: "00-abc-def-01",
    sent: "2024-01-01T00:00:00Z",
  }, { extensionTypes: { sent: "timestamp" } });
  assert.deepStrictEqual({ ...e.extensions }, {
    traceparent: "00-abc-def-01",
    sent: "2024-01-01T00:00:00Z",
  });
  const base = { specversion: "1.0", id: "1", type: "t", source: "/s" };
  assert.deepStrictEqual(
    issuePaths(() =>
      CloudEvent.fromJSON({ ...base, sent: "soon" }, { extensionTypes: { sent: "timestamp" } })
    ),
    ["sent"],
  );
  assert.deepStrictEqual(
    issuePaths(() =>
      CloudEvent.fromJSON({ ...base, ref: "no scheme" }, { extensionTypes: { ref: "uri" } })
    ),
    ["ref"],
  );
  assert.deepStrictEqual(
    issuePaths(() =>
      CloudEvent.fromJSON({ ...base, blob: "not base64!" }, { extensionTypes: { blob: "binary" } })
    ),
    ["blob"],
  );
  assert.deepStrictEqual(
    issuePaths(() =>
      CloudEvent.fromJSON({ ...base, n: "10" }, { extensionTypes: { n: "integer" } })
    ),
    ["n"],
  );
  assert.deepStrictEqual(
    issuePaths(() => CloudEvent.fromJSON({ ...base, b: 1 }, { extensionTypes: { b: "boolean" } })),
    ["b"],
  );
});

Deno.test("RFC 3339 time: leap days and ranges are checked", () => {
  const at = (time: string) =>
    CloudEvent.fromJSON({ specversion: "1.0", id: "1", type: "t", source: "/s", time });
  assert.equal(at("2024-02-29T00:00:00Z").time, "2024-02-29T00:00:00Z");
  assert.equal(at("2000-02-29T23:59:59.123456+14:00").time, "2000-02-29T23:59:59.123456+14:00");
  // Year 0000 is a leap year in the proleptic Gregorian calendar.
  assert.equal(at("0000-02-29T00:00:00Z").time, "0000-02-29T00:00:00Z");
  for (
    const bad of [
      "2023-02-29T00:00:00Z",
      "1900-02-29T00:00:00Z",
      "2024-13-01T00:00:00Z",
      "2024-04-31T00:00:00Z",
      "2024-01-01T24:00:00Z",
      "2024-01-01T00:60:00Z",
      "2024-01-01 00:00:00Z",
      "2024-01-01T00:00:00",
    ]
  ) {
    assert.deepStrictEqual(issuePaths(() => at(bad)), ["time"], bad);
  }
});

Deno.test("batch: batchToJSON writes what batchFromJSON reads", () => {
  const events = [
    new CloudEvent({ type: "a", source: "/s", data: { n: 1 }, extensions: { tenant: "x" } }),
    new CloudEvent({ type: "b", source: "/s", data: new Uint8Array([9]) }),
    new ScopedEvent({ type: "c", source: "/s", scope: EventScope.PROCESS }),
  ];
  const text = CloudEvent.batchToJSON(events);
  assert.ok(Array.isArray(JSON.parse(text)));
  const back = CloudEvent.batchFromJSON(text);
  assert.equal(back.length, 3);
  assert.deepStrictEqual(
    back.map((event) => event.toJSON()),
    events.map((event) => event.toJSON()),
  );
  assert.deepStrictEqual(CloudEvent.batchFromJSON("[]"), []);
  assert.deepStrictEqual(CloudEvent.batchToJSON([]), "[]");
});

Deno.test("batch: every invalid member is reported with its index; non-arrays are refused", () => {
  const good = { specversion: "1.0", id: "1", type: "t", source: "/s" };
  const paths = issuePaths(() =>
    CloudEvent.batchFromJSON([good, { ...good, id: "" }, 42, { ...good, time: "x", source: "" }])
  );
  assert.deepStrictEqual(paths.sort(), ["[1].id", "[2]", "[3].source", "[3].time"]);
  assert.deepStrictEqual(issuePaths(() => CloudEvent.batchFromJSON(good)), [""]);
  assert.deepStrictEqual(issuePaths(() => CloudEvent.batchFromJSON('{"a":1}')), [""]);
  assert.deepStrictEqual(issuePaths(() => CloudEvent.batchFromJSON("[")), [""]);
  assert.deepStrictEqual(
    issuePaths(() =>
      CloudEvent.batchToJSON([
        new CloudEvent({ type: "t", source: "/s" }),
        good as unknown as CloudEvent,
      ])
    ),
    ["[1]"],
  );
  assert.deepStrictEqual(
    issuePaths(() => CloudEvent.batchToJSON("nope" as unknown as CloudEvent[])),
    [""],
  );
});

Deno.test("ScopedEvent: scope defaults to APP, is checked, and is not serialized", () => {
  assert.deepStrictEqual(EventScope, { PROCESS: "process", APP: "app" });
  assert.ok(Object.isFrozen(EventScope));
  const app = new ScopedEvent({ type: "t", source: "/s" });
  assert.equal(app.scope, EventScope.APP);
  const local = new ScopedEvent({ type: "t", source: "/s", scope: EventScope.PROCESS });
  assert.equal(local.scope, "process");
  assert.ok(local instanceof CloudEvent);
  assert.ok(Object.isFrozen(local));
  assert.throws(() => {
    (local as unknown as { scope: string }).scope = "app";
  }, TypeError);
  assert.ok(!("scope" in local.toJSON()));
  assert.deepStrictEqual(
    issuePaths(() => new ScopedEvent({ type: "t", source: "/s", scope: "global" as EventScope })),
    ["scope"],
  );
  // A bad scope is reported together with the attributes' problems.
  assert.deepStrictEqual(
    issuePaths(() => new ScopedEvent({ type: "", source: "/s", scope: "x" as EventScope })),
    ["type", "scope"],
  );
});

Deno.test("CloudEvent: a Date outside the years RFC 3339 can write is refused", () => {
  assert.throws(
    () => new CloudEvent({ type: "t", source: "/s", time: new Date(Date.UTC(10000, 0, 1)) }),
    ValidationError,
  );
  assert.throws(
    () => new CloudEvent({ type: "t", source: "/s", time: new Date(Date.UTC(-1, 0, 1)) }),
    ValidationError,
  );
});

Deno.test("maxDepth: an option of the constructors and of fromJSON/batchFromJSON", () => {
  const data = { a: { b: [1] } }; // depth 3
  const wire = { specversion: "1.0", id: "1", type: "t", source: "/s", data };
  assert.ok(new CloudEvent({ type: "t", source: "/s", data }, { maxDepth: 3 }));
  assert.deepStrictEqual(
    issuePaths(() =>
      new CloudEvent({ type: "t", source: "/s", data: { a: { b: [1] } } }, { maxDepth: 2 })
    ),
    ["data.a.b"],
  );
  assert.deepStrictEqual(issuePaths(() => CloudEvent.fromJSON(wire, { maxDepth: 2 })), [
    "data.a.b",
  ]);
  assert.deepStrictEqual(issuePaths(() => CloudEvent.batchFromJSON([wire], { maxDepth: 1 })), [
    "[0].data.a",
  ]);
  assert.deepStrictEqual(
    issuePaths(() =>
      new ScopedEvent({ type: "t", source: "/s", data: [[]], scope: EventScope.APP }, {
        maxDepth: 1,
      })
    ),
    ["data[0]"],
  );
  // Depth 0 admits scalars only.
  assert.equal(new CloudEvent({ type: "t", source: "/s", data: "x" }, { maxDepth: 0 }).data, "x");
  assert.deepStrictEqual(
    issuePaths(() => new CloudEvent({ type: "t", source: "/s", data: {} }, { maxDepth: 0 })),
    ["data"],
  );
  for (const maxDepth of [-1, 1.5, NaN, Infinity, 1001, "8", null]) {
    assert.throws(
      () => new CloudEvent({ type: "t", source: "/s" }, { maxDepth: maxDepth as number }),
      (error: unknown) => error instanceof InvalidArgumentError && error.argument === "maxDepth",
      String(maxDepth),
    );
    assert.throws(
      () => CloudEvent.fromJSON(wire, { maxDepth: maxDepth as number }),
      InvalidArgumentError,
    );
  }
});

Deno.test("data: a Date travels as its ISO text, an undefined member as absent, bytes as data_base64", () => {
  const at = new Date(Date.UTC(2024, 0, 31, 12));
  const e = new CloudEvent({ type: "t", source: "/s", data: { at, note: undefined, n: 1 } });
  const back = CloudEvent.fromJSON(JSON.stringify(e));
  assert.deepStrictEqual(back.data, { at: "2024-01-31T12:00:00.000Z", n: 1 });
  const nullProto = Object.assign(Object.create(null), { a: 1 });
  assert.deepStrictEqual(
    {
      ...CloudEvent.fromJSON(
        JSON.stringify(new CloudEvent({ type: "t", source: "/s", data: nullProto })),
      ).data as object,
    },
    { a: 1 },
  );
  const bytes = new CloudEvent({ type: "t", source: "/s", data: new Uint8Array([1, 2]) });
  assert.equal(bytes.toJSON().data_base64, "AQI=");
});

Deno.test("a refused event freezes nothing: the checks run before anything is built", () => {
  const data = { lines: [{ sku: "X" }] };
  assert.deepStrictEqual(
    issuePaths(() => new ScopedEvent({ type: "t", source: "/s", data, scope: "x" as EventScope })),
    ["scope"],
  );
  assert.deepStrictEqual(
    issuePaths(() => new CloudEvent({ type: "", source: "/s", data })),
    ["type"],
  );
  assert.ok(!Object.isFrozen(data) && !Object.isFrozen(data.lines[0]));
  // Problems of the attributes and of the data come in one error.
  assert.deepStrictEqual(
    issuePaths(() => new CloudEvent({ type: "", source: "", data: { x: NaN } })),
    ["source", "type", "data.x"],
  );
});

Deno.test("fromJSON options are checked: extension types must be known types", () => {
  const wire = { specversion: "1.0", id: "1", type: "t", source: "/s", sent: "x" };
  const argument = (fn: () => unknown): string => {
    try {
      fn();
    } catch (error) {
      assert.ok(
        error instanceof InvalidArgumentError,
        `expected InvalidArgumentError, got ${error}`,
      );
      return error.argument;
    }
    assert.fail("expected an InvalidArgumentError");
  };
  assert.equal(
    argument(() =>
      CloudEvent.fromJSON(wire, {
        extensionTypes: { sent: "timestamps" as "timestamp" },
      })
    ),
    "extensionTypes",
  );
  assert.equal(
    argument(() =>
      CloudEvent.batchFromJSON([wire], {
        extensionTypes: ["uri"] as unknown as Record<string, "uri">,
      })
    ),
    "extensionTypes",
  );
  assert.equal(
    argument(() => CloudEvent.fromJSON(wire, "strict" as unknown as { maxDepth: number })),
    "options",
  );
  assert.equal(
    argument(() => new CloudEvent({ type: "t", source: "/s" }, 5 as unknown as { maxDepth: 1 })),
    "options",
  );
});

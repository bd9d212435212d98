import assert from "node:assert/strict";
import { z } from "zod";
import { defineEvent, type EventOf } from "../src/define_event.ts";
import { InvalidArgumentError, ValidationError } from "../src/errors.ts";
import { CloudEvent, EventScope, ScopedEvent } from "../src/event.ts";
import { isBoundedSchema, jsonOutputDepth } from "../src/zod_schema.ts";
import { EventBus } from "../src/eventbus.ts";
import { silentLogger } from "../src/logger.ts";

const OrderCreated = defineEvent({
  type: "order.created",
  scope: EventScope.PROCESS,
  source: "/orders",
  data: z.object({ orderId: z.string(), amount: z.number().positive() }),
});

const wire = {
  specversion: "1.0",
  id: "evt-1",
  type: "order.created",
  source: "/checkout",
  time: "2024-01-31T12:00:00Z",
  data: { orderId: "A1", amount: 12.5 },
};

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

function invalidArgument(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof InvalidArgumentError, `expected InvalidArgumentError, got ${error}`);
    return error.argument;
  }
  assert.fail("expected an InvalidArgumentError, nothing was thrown");
}

Deno.test("defineEvent: the class carries type, scope, schema and source", () => {
  assert.equal(OrderCreated.type, "order.created");
  assert.equal(OrderCreated.scope, EventScope.PROCESS);
  assert.ok(OrderCreated.schema instanceof z.ZodObject);
  assert.equal(OrderCreated.source, "/orders");
  assert.equal(OrderCreated.name, "OrderCreated");
  const Plain = defineEvent({ type: "cache.cleared", data: z.null() });
  assert.equal(Plain.scope, EventScope.APP);
  assert.equal(Plain.source, undefined);
});

Deno.test("defineEvent: an instance is typed, checked and frozen, and instanceof works up the chain", () => {
  const e = new OrderCreated({ data: { orderId: "A1", amount: 12.5 }, subject: "A1" });
  const typed: EventOf<typeof OrderCreated> = e;
  const amount: number = typed.data.amount;
  assert.equal(amount, 12.5);
  assert.equal(e.type, "order.created");
  assert.equal(e.source, "/orders");
  assert.equal(e.scope, EventScope.PROCESS);
  assert.equal(e.subject, "A1");
  assert.ok(e instanceof OrderCreated);
  assert.ok(e instanceof ScopedEvent);
  assert.ok(e instanceof CloudEvent);
  assert.ok(Object.isFrozen(e));
  assert.ok(Object.isFrozen(e.data));
  assert.throws(() => {
    (e.data as { amount: number }).amount = 1;
  }, TypeError);
  const Other = defineEvent({ type: "order.created", source: "/o", data: z.unknown() });
  assert.ok(!(e instanceof Other));
  assert.ok(!(new CloudEvent({ type: "order.created", source: "/o" }) instanceof OrderCreated));
});

Deno.test("defineEvent: data is checked at construction, with paths under data", () => {
  assert.deepStrictEqual(
    issuePaths(() => new OrderCreated({ data: { orderId: "A1", amount: -1 } })),
    ["data.amount"],
  );
  assert.deepStrictEqual(
    issuePaths(() =>
      new OrderCreated({ data: { amount: "12" } as unknown as { orderId: string; amount: number } })
    ).sort(),
    ["data.amount", "data.orderId"],
  );
  const Lines = defineEvent({
    type: "lines",
    source: "/l",
    data: z.object({ lines: z.array(z.object({ qty: z.number().int() })) }),
  });
  assert.deepStrictEqual(
    issuePaths(() => new Lines({ data: { lines: [{ qty: 1 }, { qty: 1.5 }] } })),
    ["data.lines[1].qty"],
  );
});

Deno.test("defineEvent: one error lists data, source and attribute problems together", () => {
  const NoSource = defineEvent({ type: "t", data: z.object({ n: z.number() }) });
  const paths = issuePaths(() =>
    new NoSource({ data: { n: "x" } as unknown as { n: number }, id: "", time: "later" })
  );
  assert.deepStrictEqual(paths.sort(), ["data.n", "id", "source", "time"]);
});

Deno.test("defineEvent: source defaults to the definition's, can be overridden, else is required", () => {
  assert.equal(new OrderCreated({ data: { orderId: "A", amount: 1 } }).source, "/orders");
  assert.equal(
    new OrderCreated({ data: { orderId: "A", amount: 1 }, source: "/checkout" }).source,
    "/checkout",
  );
  const NoSource = defineEvent({ type: "t", data: z.string() });
  assert.deepStrictEqual(issuePaths(() => new NoSource({ data: "x" })), ["source"]);
  assert.equal(new NoSource({ data: "x", source: "/here" }).source, "/here");
  assert.deepStrictEqual(issuePaths(() => new NoSource({ data: "x", source: "bad uri" })), [
    "source",
  ]);
});

Deno.test("defineEvent: datacontenttype and dataschema defaults apply to instances", () => {
  const Doc = defineEvent({
    type: "doc",
    source: "/d",
    datacontenttype: "application/json",
    dataschema: "https://example.com/doc.json",
    data: z.object({}),
  });
  const e = new Doc({ data: {} });
  assert.equal(e.datacontenttype, "application/json");
  assert.equal(e.dataschema, "https://example.com/doc.json");
});

Deno.test("defineEvent: parse builds the typed event from text, objects and plain events", () => {
  const fromText = OrderCreated.parse(JSON.stringify({ ...wire, tenant: "acme" }));
  assert.ok(fromText instanceof OrderCreated);
  assert.equal(fromText.id, "evt-1");
  assert.equal(fromText.source, "/checkout");
  assert.equal(fromText.time, "2024-01-31T12:00:00Z");
  assert.equal(fromText.scope, EventScope.PROCESS);
  assert.deepStrictEqual(fromText.data, { orderId: "A1", amount: 12.5 });
  assert.deepStrictEqual({ ...fromText.extensions }, { tenant: "acme" });
  assert.ok(OrderCreated.parse(wire) instanceof OrderCreated);
  const plain = CloudEvent.fromJSON(wire);
  const upgraded = OrderCreated.parse(plain);
  assert.ok(upgraded instanceof OrderCreated);
  assert.deepStrictEqual(upgraded.toJSON(), plain.toJSON());
  // A typed event round-trips through its own JSON.
  const e = new OrderCreated({ data: { orderId: "B", amount: 3 } });
  assert.deepStrictEqual(OrderCreated.parse(JSON.stringify(e)).toJSON(), e.toJSON());
  assert.equal(OrderCreated.parse(e), e);
  // Without time on the wire, the parsed event has none either.
  const { time: _, ...timeless } = wire;
  assert.equal(OrderCreated.parse(timeless).time, undefined);
});

Deno.test("defineEvent: parse applies the schema's coercions and defaults", () => {
  const Reading = defineEvent({
    type: "reading",
    source: "/sensor",
    data: z.object({
      value: z.coerce.number(),
      at: z.coerce.date(),
      unit: z.string().default("celsius"),
    }),
  });
  const e = Reading.parse({
    ...wire,
    type: "reading",
    data: { value: "21.5", at: "2024-01-31T12:00:00Z" },
  });
  assert.equal(e.data.value, 21.5);
  assert.ok(e.data.at instanceof Date);
  assert.equal(e.data.at.toISOString(), "2024-01-31T12:00:00.000Z");
  assert.equal(e.data.unit, "celsius");
  // The constructor takes the schema's input shape (here: unit optional) and
  // stores its output shape.
  const built = new Reading({ data: { value: "3", at: 0 } });
  const unit: string = built.data.unit;
  assert.equal(unit, "celsius");
  assert.equal(built.data.value, 3);
});

Deno.test("defineEvent: parse rejects a wrong or missing type, bad data and bad attributes", () => {
  assert.deepStrictEqual(issuePaths(() => OrderCreated.parse({ ...wire, type: "order.deleted" })), [
    "type",
  ]);
  const { type: _, ...untyped } = wire;
  assert.deepStrictEqual(issuePaths(() => OrderCreated.parse(untyped)), ["type"]);
  assert.deepStrictEqual(
    issuePaths(() => OrderCreated.parse({ ...wire, data: { orderId: 1, amount: 1 } })),
    ["data.orderId"],
  );
  assert.deepStrictEqual(issuePaths(() => OrderCreated.parse({ ...wire, data: undefined })), [
    "data",
  ]);
  assert.deepStrictEqual(issuePaths(() => OrderCreated.parse({ ...wire, source: "" })), [
    "source",
  ]);
  assert.deepStrictEqual(issuePaths(() => OrderCreated.parse("{not json")), [""]);
  assert.deepStrictEqual(issuePaths(() => OrderCreated.parse(null)), [""]);
});

Deno.test("defineEvent: a definition with an empty type, non-zod schema or bad option is rejected", () => {
  const data = z.object({});
  assert.equal(invalidArgument(() => defineEvent({ type: "", data })), "type");
  assert.equal(invalidArgument(() => defineEvent({ type: 42 as unknown as string, data })), "type");
  for (
    const notZod of [
      undefined,
      null,
      {},
      { parse: () => ({}) },
      { safeParse: () => ({ success: true }) },
      (x: unknown) => x,
      "string",
    ]
  ) {
    assert.equal(
      invalidArgument(() =>
        defineEvent({ type: "t", data: notZod as unknown as z.ZodObject<z.ZodRawShape> })
      ),
      "data",
      String(notZod),
    );
  }
  assert.equal(
    invalidArgument(() => defineEvent({ type: "t", data, scope: "global" as EventScope })),
    "scope",
  );
  assert.equal(
    invalidArgument(() => defineEvent({ type: "t", data, source: "not a uri" })),
    "source",
  );
  assert.equal(
    invalidArgument(() => defineEvent({ type: "t", data, datacontenttype: "json" })),
    "datacontenttype",
  );
  assert.equal(
    invalidArgument(() => defineEvent({ type: "t", data, dataschema: "relative" })),
    "dataschema",
  );
  assert.equal(
    invalidArgument(() =>
      defineEvent(null as unknown as { type: string; data: z.ZodObject<z.ZodRawShape> })
    ),
    "options",
  );
});

Deno.test("defineEvent: zod messages that quote input are cut to an excerpt", () => {
  const Strict = defineEvent({ type: "strict", source: "/s", data: z.strictObject({}) });
  const key = "k".repeat(1_000_000);
  let error: unknown;
  try {
    Strict.parse({ ...wire, type: "strict", data: { [key]: 1 } });
  } catch (caught) {
    error = caught;
  }
  assert.ok(error instanceof ValidationError);
  assert.equal(error.issues[0].path, "data");
  assert.ok(error.message.length < 500, `message is ${error.message.length} characters`);
  const Rec = defineEvent({ type: "rec", source: "/s", data: z.record(z.string(), z.number()) });
  try {
    new Rec({ data: { [key]: "x" } as unknown as Record<string, number> });
  } catch (caught) {
    error = caught;
  }
  assert.ok(error instanceof ValidationError);
  assert.ok(error.message.length < 500, `message is ${error.message.length} characters`);
});

Deno.test("defineEvent: any CloudEvents type works, whitespace included; the bus encodes its channel", async () => {
  const Spaced = defineEvent({
    type: "order created",
    scope: EventScope.PROCESS,
    source: "/o",
    data: z.object({ id: z.string() }),
  });
  await using bus = new EventBus({ logger: silentLogger });
  const got: string[] = [];
  bus.subscribe(Spaced, function record(e) {
    got.push(e.data.id);
  });
  await bus.start();
  await bus.publish(new Spaced({ data: { id: "A1" } }));
  await bus.stop();
  assert.deepEqual(got, ["A1"]);
  assert.equal(bus.channelFor("order created"), "events.order%20created");
  assert.throws(
    () => defineEvent({ type: "", source: "/o", data: z.object({}) }),
    InvalidArgumentError,
  );
});

/** `[[...[1]...]]` nested `depth` levels. */
function nestedArrays(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

Deno.test("defineEvent: deep data is refused before a recursive schema walks it", () => {
  const Doc = defineEvent({ type: "doc.json", source: "/d", data: z.json() });
  const deep = nestedArrays(2_000);
  // Unchecked, z.json() itself overflows the stack on this payload.
  assert.throws(() => z.json().safeParse(deep), RangeError);
  const built = issuePaths(() => new Doc({ data: deep as z.infer<ReturnType<typeof z.json>> }));
  assert.equal(built.length, 1);
  assert.match(built[0], /^data\[0\]/);
  const parsed = issuePaths(() => Doc.parse({ ...wire, type: "doc.json", data: deep }));
  assert.match(parsed[0], /^data\[0\]/);
  const text = `{"specversion":"1.0","id":"1","type":"doc.json","source":"/d","data":${
    "[".repeat(2_000)
  }1${"]".repeat(2_000)}}`;
  assert.match(issuePaths(() => Doc.parse(text))[0], /^data\[0\]/);

  interface Tree {
    children: Tree[];
  }
  const TreeSchema: z.ZodType<Tree> = z.lazy(() => z.object({ children: z.array(TreeSchema) }));
  const Forest = defineEvent({ type: "forest", source: "/f", data: TreeSchema });
  let tree: Tree = { children: [] };
  for (let i = 0; i < 2_000; i++) tree = { children: [tree] };
  assert.match(issuePaths(() => new Forest({ data: tree }))[0], /^data\.children\[0\]/);
  // Within the bound, the recursive schema checks the data as usual.
  assert.ok(new Forest({ data: { children: [{ children: [] }] } }));
  assert.ok(new Doc({ data: nestedArrays(100) as z.infer<ReturnType<typeof z.json>> }));
});

Deno.test("defineEvent: maxDepth is an option of the class and of parse", () => {
  const Doc = defineEvent({ type: "doc.json", source: "/d", data: z.json() });
  const data = { a: { b: [1] } };
  assert.ok(new Doc({ data }, { maxDepth: 3 }));
  assert.deepStrictEqual(issuePaths(() => new Doc({ data }, { maxDepth: 2 })), ["data.a.b"]);
  assert.deepStrictEqual(
    issuePaths(() => Doc.parse({ ...wire, type: "doc.json", data }, { maxDepth: 1 })),
    ["data.a"],
  );
  assert.throws(() => new Doc({ data }, { maxDepth: -1 }), InvalidArgumentError);
});

Deno.test("defineEvent: what the schema outputs must travel as JSON too", () => {
  const Odd = defineEvent({
    type: "odd",
    source: "/o",
    data: z.object({ n: z.number() }).transform((value) => ({ ...value, ratio: value.n / 0 })),
  });
  assert.deepStrictEqual(issuePaths(() => new Odd({ data: { n: 1 } })), ["data.ratio"]);
  const Mapped = defineEvent({
    type: "mapped",
    source: "/m",
    data: z.record(z.string(), z.number()).transform((value) => new Map(Object.entries(value))),
  });
  assert.deepStrictEqual(issuePaths(() => new Mapped({ data: { a: 1 } })), ["data"]);
  // Non-finite input is refused at its path.
  assert.deepStrictEqual(
    issuePaths(() => new OrderCreated({ data: { orderId: "A", amount: NaN } })),
    ["data.amount"],
  );
});

Deno.test("defineEvent: a schema that throws is a ValidationError, not its own exception", () => {
  const Throwing = defineEvent({
    type: "throwing",
    source: "/t",
    data: z.string().transform((): string => {
      throw new TypeError("transform broke");
    }),
  });
  const paths = issuePaths(() => new Throwing({ data: "x" }));
  assert.deepStrictEqual(paths, ["data"]);
  const Async = defineEvent({
    type: "async",
    source: "/a",
    data: z.string().refine(() => Promise.resolve(true)),
  });
  assert.deepStrictEqual(issuePaths(() => new Async({ data: "x" })), ["data"]);
});

Deno.test("defineEvent: a schema that is not zod 4 is refused, saying so", () => {
  // What a zod 3 schema looks like from the outside: parse methods, no `_zod`.
  const zod3Like = {
    _def: { typeName: "ZodObject" },
    parse: (value: unknown) => value,
    safeParse: (value: unknown) => ({ success: true, data: value }),
  };
  let error: unknown;
  try {
    defineEvent({ type: "t", data: zod3Like as unknown as z.ZodObject<z.ZodRawShape> });
  } catch (caught) {
    error = caught;
  }
  assert.ok(error instanceof InvalidArgumentError);
  assert.equal(error.argument, "data");
  assert.match(error.message, /zod 4/);
});

Deno.test("schema traits: which schemas parse boundedly, and which output JSON by construction", () => {
  interface Category {
    name: string;
    subs: Category[];
  }
  const Category: z.ZodType<Category> = z.object({
    name: z.string(),
    get subs() {
      return z.array(Category);
    },
  });
  // [schema, bounded, depth of JSON output (undefined: not known to be JSON)]
  const cases: [string, z.ZodType, boolean, number | undefined][] = [
    ["flat object", z.object({ id: z.string(), n: z.number().positive() }), true, 1],
    ["nested", z.object({ a: z.array(z.object({ b: z.email() })) }), true, 3],
    ["strict", z.strictObject({ a: z.string() }), true, 1],
    ["optional member", z.object({ a: z.string().optional(), b: z.int().nullable() }), true, 1],
    ["tuple", z.tuple([z.string()], z.number()), true, 1],
    ["record", z.record(z.string(), z.boolean()), true, 1],
    ["union", z.union([z.string(), z.object({ a: z.array(z.number()) })]), true, 2],
    [
      "intersection",
      z.intersection(z.object({ a: z.string() }), z.object({ b: z.null() })),
      true,
      1,
    ],
    ["coerced", z.coerce.date(), true, 0],
    ["literals", z.literal(["a", 1, true, null]), true, 0],
    ["enum", z.enum(["a", "b"]), true, 0],
    // Input passes through: bounded, but the output is checked.
    ["loose", z.looseObject({ a: z.string() }), true, undefined],
    ["record of any", z.record(z.string(), z.any()), true, undefined],
    ["unknown", z.unknown(), true, undefined],
    ["default", z.object({ unit: z.string().default("c") }), true, undefined],
    ["optional in array", z.array(z.string().optional()), true, undefined],
    ["NaN", z.nan(), true, undefined],
    ["undefined literal", z.literal(undefined), true, undefined],
    ["__proto__ member", z.object({ ["__proto__"]: z.object({}) }), true, undefined],
    // Recursion or application code: the input is checked before zod.
    ["json", z.json(), false, undefined],
    ["lazy", z.lazy(() => z.string()), false, undefined],
    ["recursive getter", Category, false, undefined],
    ["transform", z.string().transform((s) => s.length), false, undefined],
    ["refine", z.string().refine((s) => s !== ""), false, undefined],
    ["trim (an overwrite)", z.string().trim(), false, undefined],
    ["catch", z.string().catch("x"), false, undefined],
    ["preprocess", z.preprocess((x) => x, z.string()), false, undefined],
    ["custom", z.custom<string>(() => true), false, undefined],
  ];
  for (const [name, schema, bounded, depth] of cases) {
    assert.equal(isBoundedSchema(schema), bounded, name);
    assert.equal(jsonOutputDepth(schema), depth, name);
  }
});

Deno.test("defineEvent: whatever the schema, what it lets through is checked and named by path", () => {
  const Loose = defineEvent({
    type: "loose",
    source: "/l",
    data: z.looseObject({ a: z.string() }),
  });
  assert.deepStrictEqual(issuePaths(() => new Loose({ data: { a: "x", b: NaN } })), ["data.b"]);
  const cyclic: Record<string, unknown> = { a: "x" };
  cyclic.self = cyclic;
  // zod copies the unknown member `self` (the input itself) into its output,
  // so the cycle closes one level down.
  assert.deepStrictEqual(issuePaths(() => new Loose({ data: cyclic as { a: string } })), [
    "data.self.self",
  ]);
  const Bag = defineEvent({ type: "bag", source: "/b", data: z.record(z.string(), z.any()) });
  assert.match(
    issuePaths(() => new Bag({ data: { deep: nestedArrays(600) } }))[0],
    /^data\.deep\[0\]/,
  );
  assert.deepStrictEqual(issuePaths(() => new Bag({ data: { at: new Map() } })), ["data.at"]);
  // A getter that throws while zod reads it is named too.
  const hostile = {
    orderId: "A",
    get amount(): number {
      throw new TypeError("no amount");
    },
  };
  assert.deepStrictEqual(issuePaths(() => new OrderCreated({ data: hostile })), ["data.amount"]);
  // Output known to be JSON, but deeper than maxDepth allows: still refused.
  const Nested = defineEvent({
    type: "nested",
    source: "/n",
    data: z.object({ a: z.object({ b: z.array(z.string()) }) }),
  });
  assert.ok(new Nested({ data: { a: { b: ["x"] } } }, { maxDepth: 3 }));
  assert.deepStrictEqual(
    issuePaths(() => new Nested({ data: { a: { b: ["x"] } } }, { maxDepth: 2 })),
    ["data.a.b"],
  );
  // Every object of the data is frozen, whichever way it was checked.
  const built = new Nested({ data: { a: { b: ["x"] } } });
  assert.ok(Object.isFrozen(built.data) && Object.isFrozen(built.data.a.b));
  const flat = new OrderCreated({ data: { orderId: "A", amount: 1 } });
  assert.ok(Object.isFrozen(flat.data));
});

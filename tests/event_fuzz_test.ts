// Property tests of the JSON entry points under arbitrary input: each either
// returns events or throws a ValidationError (never another exception), and
// every event returned writes JSON that reads back to the same event.
//
// Seeded by FUZZ_SEED (see _fuzz_seed.ts); a failure prints the seed (and
// fast-check's counterexample path) so the run can be replayed exactly.

import assert from "node:assert/strict";
import fc from "fast-check";
import { z } from "zod";
import { defineEvent } from "../src/define_event.ts";
import { ValidationError } from "../src/errors.ts";
import { CloudEvent } from "../src/event.ts";
import { FUZZ_SEED } from "./_fuzz_seed.ts";

const SEED = FUZZ_SEED;
const RUNS = Number(Deno.env.get("FUZZ_RUNS") ?? 3_000);

/** Runs a property with the shared seed, naming the seed if it fails. */
function check<T>(property: fc.IProperty<T>, numRuns = RUNS): void {
  try {
    fc.assert(property, { seed: SEED, numRuns });
  } catch (error) {
    console.error(`fuzz failure: replay with FUZZ_SEED=${SEED}`);
    throw error;
  }
}

/** The outcome of a parse: its result, or `undefined` for a ValidationError. */
function outcome<T>(parse: () => T): T | undefined {
  try {
    return parse();
  } catch (error) {
    if (error instanceof ValidationError) return undefined;
    throw error;
  }
}

/** An accepted event writes JSON without throwing, and that JSON reads back to it. */
function assertRoundTrip(event: CloudEvent, parse: (text: string) => CloudEvent): void {
  const text = JSON.stringify(event);
  assert.equal(JSON.stringify(parse(text)), text);
}

// Keys that have tripped JSON code before, next to arbitrary ones.
const key: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 6 }),
  fc.constantFrom("__proto__", "constructor", "prototype", "toJSON", "data", "id", "time"),
);

// JSON-like values, with the numbers JSON cannot write (NaN, Infinity, -0).
const { value: jsonish } = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.double(),
    fc.string({ maxLength: 12 }),
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(key, tie("value"), { maxKeys: 4 }),
  ),
}));

/** `[[...]]` or `{"a":{...}}` around a value, `depth` levels. */
function nest(depth: number, objects: boolean, inner: unknown): unknown {
  let value = inner;
  for (let i = 0; i < depth; i++) value = objects ? { a: value } : [value];
  return value;
}

// Data around the depth bound (512), a little past it and far past it.
const deep: fc.Arbitrary<unknown> = fc.tuple(
  fc.oneof(fc.integer({ min: 500, max: 530 }), fc.integer({ min: 531, max: 3_000 })),
  fc.boolean(),
  jsonish,
).map(([depth, objects, inner]) => nest(depth, objects, inner));

const data: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 5, arbitrary: jsonish },
  { weight: 1, arbitrary: deep },
);

/** Mostly `valid`, sometimes one of `invalid`. */
function mostly<T>(valid: fc.Arbitrary<T>, ...invalid: T[]): fc.Arbitrary<T> {
  return fc.oneof({ weight: 9, arbitrary: valid }, {
    weight: 1,
    arbitrary: fc.constantFrom(...invalid),
  });
}

const source = mostly(
  fc.constantFrom("/s", "https://example.com/orders", "urn:event:1", "a/b"),
  "",
  "not a uri",
);
const mediaType = mostly(
  fc.constantFrom("application/json", "text/plain", "application/cloudevents+json; a=b"),
  "json",
);
const extensionValue = mostly(
  fc.oneof(fc.string({ maxLength: 6 }), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })),
  1.5,
  2 ** 31,
  "\u0000",
);

// Events that are mostly valid, with optional attributes and an extension.
const wire: fc.Arbitrary<Record<string, unknown>> = fc.record({
  specversion: mostly<unknown>(fc.constant("1.0"), "0.3", 1),
  id: mostly(fc.string({ minLength: 1, maxLength: 8 }), ""),
  source,
  type: mostly(fc.constantFrom("order.created", "t"), ""),
  time: fc.option(
    fc.date({ min: new Date("0001-01-01"), max: new Date("9999-12-31"), noInvalidDate: true })
      .map((date) => date.toISOString()),
  ),
  subject: fc.option(fc.string({ maxLength: 6 })),
  datacontenttype: fc.option(mediaType),
  data: fc.option(data),
  tenant: fc.option(extensionValue),
}, { requiredKeys: ["specversion", "id", "source", "type"] });

// A valid-looking event with members replaced by arbitrary values or removed.
const mutated: fc.Arbitrary<Record<string, unknown>> = fc.tuple(
  wire,
  fc.array(fc.tuple(key, fc.option(fc.oneof(jsonish, fc.constant(undefined)))), {
    maxLength: 2,
  }),
).map(([event, edits]) => {
  const copy: Record<string, unknown> = { ...event };
  for (const [name, value] of edits) {
    if (value === undefined) delete copy[name];
    else Object.defineProperty(copy, name, { value, enumerable: true, configurable: true });
  }
  return copy;
});

// JSON text of such events, cut and spliced with tokens that break JSON or
// write what JSON cannot hold (1e999 is Infinity once parsed).
const tokens = ["{", "}", "[", "]", '"', ",", ":", "1e999", "-1e400", "null", "\\u0000", "\\ud800"];
const mutatedText: fc.Arbitrary<string> = fc.tuple(
  mutated.map((event) => JSON.stringify(event)),
  fc.array(fc.tuple(fc.nat(), fc.nat({ max: 3 }), fc.constantFrom(...tokens, "")), {
    maxLength: 3,
  }),
).map(([text, edits]) => {
  let out = text;
  for (const [at, cut, insert] of edits) {
    const position = at % (out.length + 1);
    out = out.slice(0, position) + insert + out.slice(position + cut);
  }
  return out;
});

const anyInput: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: wire },
  { weight: 2, arbitrary: wire.map((event) => JSON.stringify(event)) },
  { weight: 2, arbitrary: mutated },
  { weight: 2, arbitrary: mutatedText },
  { weight: 1, arbitrary: jsonish },
  { weight: 1, arbitrary: fc.string() },
);

Deno.test("fuzz: CloudEvent.fromJSON returns a round-tripping event or throws ValidationError", () => {
  check(fc.property(anyInput, (input) => {
    const event = outcome(() => CloudEvent.fromJSON(input));
    if (event !== undefined) assertRoundTrip(event, (text) => CloudEvent.fromJSON(text));
  }));
});

Deno.test("fuzz: CloudEvent.batchFromJSON returns round-tripping events or throws ValidationError", () => {
  const member = fc.oneof({ weight: 8, arbitrary: wire }, mutated, jsonish);
  const batch = fc.array(member, { maxLength: 4 });
  const input = fc.oneof(batch, batch.map((events) => JSON.stringify(events)), anyInput);
  check(fc.property(input, (value) => {
    const events = outcome(() => CloudEvent.batchFromJSON(value));
    if (events === undefined) return;
    const text = CloudEvent.batchToJSON(events);
    assert.equal(CloudEvent.batchToJSON(CloudEvent.batchFromJSON(text)), text);
  }));
});

const OrderCreated = defineEvent({
  type: "order.created",
  source: "/orders",
  data: z.object({
    orderId: z.string(),
    amount: z.number(),
    tags: z.array(z.string()).optional(),
  }),
});
// A recursive schema: depth must be bounded before it runs.
const Document = defineEvent({ type: "t", source: "/docs", data: z.json() });
// A schema that passes its input through: its output must be checked.
const Bag = defineEvent({ type: "t", source: "/bags", data: z.record(z.string(), z.unknown()) });

const order: fc.Arbitrary<unknown> = fc.record({
  orderId: fc.oneof(fc.string({ maxLength: 6 }), fc.integer()),
  amount: fc.oneof(fc.double(), fc.string({ maxLength: 3 })),
  tags: fc.option(fc.array(fc.string({ maxLength: 3 }), { maxLength: 3 }), { nil: undefined }),
}, { requiredKeys: ["orderId", "amount"] });

const typedInput: fc.Arbitrary<unknown> = fc.oneof(
  fc.tuple(wire, order).map(([event, payload]) => ({ ...event, data: payload })),
  fc.tuple(mutated, order).map(([event, payload]) => JSON.stringify({ ...event, data: payload })),
  anyInput,
);

Deno.test("fuzz: a typed Definition.parse returns a round-tripping event or throws ValidationError", () => {
  check(fc.property(typedInput, (input) => {
    for (const Definition of [OrderCreated, Document, Bag]) {
      const event = outcome(() => Definition.parse(input));
      if (event === undefined) continue;
      assert.ok(event instanceof Definition);
      assertRoundTrip(event, (text) => Definition.parse(text));
    }
  }));
});

// Hostile and malformed input: every case ends in a ValidationError naming the
// attribute (or in a well-defined event), never in a crash, a hang, prototype
// pollution or an error message that echoes the input.

import assert from "node:assert/strict";
import { ValidationError } from "../src/errors.ts";
import { CloudEvent, DEFAULT_MAX_DATA_DEPTH } from "../src/event.ts";

const base = { specversion: "1.0", id: "1", type: "t", source: "/s" } as const;
const TEN_MB = 10 * 1024 * 1024;

/** Runs `fn`, expects a ValidationError, and returns it. */
function rejected(fn: () => unknown): ValidationError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ValidationError, `expected ValidationError, got ${error}`);
    return error;
  }
  assert.fail("expected a ValidationError, nothing was thrown");
}

function paths(fn: () => unknown): string[] {
  return rejected(fn).issues.map((issue) => issue.path);
}

function assertNotPolluted(): void {
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.ok(!Object.hasOwn(Object.prototype, "polluted"));
  assert.equal(Object.getPrototypeOf({}), Object.prototype);
}

Deno.test("bad input: integers outside int32 are refused, the bounds accepted", () => {
  for (const value of [2 ** 31, -(2 ** 31) - 1, Number.MAX_SAFE_INTEGER, 1e21]) {
    assert.deepStrictEqual(paths(() => CloudEvent.fromJSON({ ...base, count: value })), ["count"]);
    assert.deepStrictEqual(
      paths(() => new CloudEvent({ type: "t", source: "/s", extensions: { count: value } })),
      ["count"],
    );
  }
  assert.deepStrictEqual(
    paths(() =>
      CloudEvent.fromJSON(
        `{"specversion":"1.0","id":"1","type":"t","source":"/s","count":2147483648}`,
      )
    ),
    ["count"],
  );
  assert.equal(CloudEvent.fromJSON({ ...base, count: 2 ** 31 - 1 }).extensions.count, 2147483647);
  assert.equal(CloudEvent.fromJSON({ ...base, count: -(2 ** 31) }).extensions.count, -2147483648);
});

Deno.test("bad input: floats, NaN and Infinity are not extension values", () => {
  for (const value of [1.5, -0.1, NaN, Infinity, -Infinity]) {
    assert.deepStrictEqual(paths(() => CloudEvent.fromJSON({ ...base, ratio: value })), ["ratio"]);
    assert.deepStrictEqual(
      paths(() => new CloudEvent({ type: "t", source: "/s", extensions: { ratio: value } })),
      ["ratio"],
    );
  }
  // JSON has no NaN: the text is not JSON at all.
  assert.deepStrictEqual(
    paths(() =>
      CloudEvent.fromJSON('{"specversion":"1.0","id":"1","type":"t","source":"/s","x":NaN}')
    ),
    [""],
  );
});

Deno.test("bad input: lone surrogates, control characters and noncharacters in strings", () => {
  const bad = [
    "\uD800",
    "a\uDC00b",
    "x\u0000",
    "\u0007bell",
    "del\u007f",
    "c1\u0085",
    "\uFFFE",
    "\u{10FFFF}",
    "\uFDD0",
  ];
  for (const value of bad) {
    const label = JSON.stringify(value);
    for (const name of ["id", "type", "subject"]) {
      assert.deepStrictEqual(
        paths(() => CloudEvent.fromJSON({ ...base, [name]: value })),
        [name],
        `${name} ${label}`,
      );
    }
    assert.deepStrictEqual(paths(() => CloudEvent.fromJSON({ ...base, source: `/s${value}` })), [
      "source",
    ], label);
    assert.deepStrictEqual(
      paths(() => CloudEvent.fromJSON({ ...base, note: value })),
      ["note"],
      label,
    );
    assert.deepStrictEqual(
      paths(() => new CloudEvent({ type: "t", source: "/s", subject: value })),
      ["subject"],
      label,
    );
  }
  // The same escapes arriving as JSON text.
  assert.deepStrictEqual(
    paths(() =>
      CloudEvent.fromJSON('{"specversion":"1.0","id":"\\ud800","type":"t\\u0001","source":"/s"}')
    ).sort(),
    ["id", "type"],
  );
  // Well-formed text, emoji outside the BMP included, is fine.
  const ok = CloudEvent.fromJSON({ ...base, subject: "caf\u00e9 \u{1F600}", note: "\u{1F600}" });
  assert.equal(ok.subject, "caf\u00e9 \u{1F600}");
  assert.equal(ok.extensions.note, "\u{1F600}");
});

Deno.test("bad input: __proto__, constructor and prototype keys cause no pollution", () => {
  const polluting = [
    '{"specversion":"1.0","id":"1","type":"t","source":"/s","__proto__":{"polluted":true}}',
    '{"specversion":"1.0","id":"1","type":"t","source":"/s","constructor":{"prototype":{"polluted":true}}}',
    '{"specversion":"1.0","id":"1","type":"t","source":"/s","prototype":{"polluted":true}}',
  ];
  assert.deepStrictEqual(paths(() => CloudEvent.fromJSON(polluting[0])), ["__proto__"]);
  assert.deepStrictEqual(paths(() => CloudEvent.fromJSON(polluting[1])), ["constructor"]);
  assert.deepStrictEqual(paths(() => CloudEvent.fromJSON(polluting[2])), ["prototype"]);
  assert.deepStrictEqual(
    paths(() => CloudEvent.batchFromJSON(`[${polluting.join(",")}]`)),
    ["[0].__proto__", "[1].constructor", "[2].prototype"],
  );
  assertNotPolluted();

  // `constructor` and `prototype` are valid names: they become plain data.
  const e = CloudEvent.fromJSON(
    '{"specversion":"1.0","id":"1","type":"t","source":"/s","constructor":"c","prototype":"p"}',
  );
  assert.ok(Object.hasOwn(e.extensions, "constructor"));
  assert.equal(e.extensions.constructor, "c");
  assert.equal(e.extensions.prototype, "p");
  assert.equal(e.constructor, CloudEvent);
  const json = e.toJSON();
  assert.equal(json.constructor, "c");
  assert.deepStrictEqual(CloudEvent.fromJSON(JSON.stringify(e)).toJSON(), json);
  const built = new CloudEvent({ type: "t", source: "/s", extensions: { constructor: "c" } });
  assert.ok(Object.hasOwn(built.extensions, "constructor"));
  assert.equal(built.extensions.constructor, "c");

  // `__proto__` inside data stays an own key of plain data, not a prototype.
  const withData = CloudEvent.fromJSON(
    '{"specversion":"1.0","id":"1","type":"t","source":"/s","data":{"__proto__":{"polluted":true},"a":1}}',
  );
  const data = withData.data as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(data), Object.prototype);
  assert.ok(Object.hasOwn(data, "__proto__"));
  assert.equal(data.polluted, undefined);
  assert.ok(JSON.stringify(withData).includes('"__proto__":{"polluted":true}'));
  assertNotPolluted();

  // An extensions object built with a __proto__ own key is refused, not merged.
  const extensions = JSON.parse('{"__proto__":{"polluted":true}}');
  assert.deepStrictEqual(paths(() => new CloudEvent({ type: "t", source: "/s", extensions })), [
    "__proto__",
  ]);
  assertNotPolluted();
});

Deno.test("bad input: JSON that is not an object is refused", () => {
  for (const text of ["42", '"an event"', "[]", "[1]", "null", "true"]) {
    assert.deepStrictEqual(paths(() => CloudEvent.fromJSON(text)), [""], text);
  }
  for (const value of [42, null, undefined, true, [], new Date(0)]) {
    const issuePaths = paths(() => CloudEvent.fromJSON(value));
    assert.ok(issuePaths.length > 0, String(value));
  }
  for (const text of ["42", '"x"', "null", "{}", "true"]) {
    assert.deepStrictEqual(paths(() => CloudEvent.batchFromJSON(text)), [""], text);
  }
});

Deno.test("bad input: truncated and empty JSON text", () => {
  const full = JSON.stringify({ ...base, data: { a: [1, 2, 3] } });
  for (const cut of [1, 10, full.length - 1, full.length - 5]) {
    const error = rejected(() => CloudEvent.fromJSON(full.slice(0, cut)));
    assert.deepStrictEqual(error.issues.map((issue) => issue.path), [""]);
    assert.match(error.issues[0].message, /not valid JSON/);
  }
  assert.deepStrictEqual(paths(() => CloudEvent.fromJSON("")), [""]);
  assert.deepStrictEqual(paths(() => CloudEvent.batchFromJSON(`[${full}`)), [""]);
});

Deno.test("bad input: a 10 MB string attribute is refused with a short message", () => {
  const huge = "x".repeat(TEN_MB);
  for (const name of ["id", "type", "subject", "specversion", "note"]) {
    const error = rejected(() => CloudEvent.fromJSON({ ...base, [name]: huge }));
    assert.deepStrictEqual(error.issues.map((issue) => issue.path), [name]);
    assert.ok(error.message.length < 500, `${name}: message is ${error.message.length} long`);
  }
  for (const name of ["source", "time", "dataschema", "datacontenttype"]) {
    const error = rejected(() => CloudEvent.fromJSON({ ...base, [name]: `/${huge}` }));
    assert.deepStrictEqual(error.issues.map((issue) => issue.path), [name]);
    assert.ok(error.message.length < 500, `${name}: message is ${error.message.length} long`);
  }
  // From JSON text, and as a (lower-case, otherwise valid) extension name.
  const fromText = rejected(() => CloudEvent.fromJSON(JSON.stringify({ ...base, id: huge })));
  assert.ok(fromText.message.length < 500);
  const name = rejected(() => CloudEvent.fromJSON({ ...base, [huge]: true }));
  assert.equal(name.issues.length, 1);
  assert.ok(name.message.length < 500, `message is ${name.message.length} long`);
  const upper = rejected(() => CloudEvent.fromJSON({ ...base, [huge.toUpperCase()]: true }));
  assert.ok(upper.message.length < 500, `message is ${upper.message.length} long`);
  const typed = rejected(() =>
    CloudEvent.fromJSON({ ...base, blob: `${huge}!` }, { extensionTypes: { blob: "binary" } })
  );
  assert.deepStrictEqual(typed.issues.map((issue) => issue.path), ["blob"]);
  assert.ok(typed.message.length < 500);
  const built = rejected(() => new CloudEvent({ type: "t", source: "/s", subject: huge }));
  assert.ok(built.message.length < 500);
  const inBatch = rejected(() => CloudEvent.batchFromJSON([base, { ...base, id: huge }]));
  assert.deepStrictEqual(inBatch.issues.map((issue) => issue.path), ["[1].id"]);
  assert.ok(inBatch.message.length < 500);
});

Deno.test("bad input: objects and arrays are not extension values", () => {
  for (const value of [{}, { a: 1 }, [], [1, 2], [[["deep"]]], { nested: { deeper: {} } }]) {
    assert.deepStrictEqual(
      paths(() => CloudEvent.fromJSON({ ...base, ext: value })),
      ["ext"],
      JSON.stringify(value),
    );
    assert.deepStrictEqual(
      paths(() =>
        new CloudEvent({ type: "t", source: "/s", extensions: { ext: value as unknown as string } })
      ),
      ["ext"],
    );
  }
  // Objects with timestamps or bytes inside are not accepted either.
  assert.deepStrictEqual(
    paths(() =>
      new CloudEvent({
        type: "t",
        source: "/s",
        extensions: { when: new Date() as unknown as string },
      })
    ),
    ["when"],
  );
});

Deno.test("bad input: data and data_base64 together, and invalid base64", () => {
  assert.deepStrictEqual(
    paths(() => CloudEvent.fromJSON({ ...base, data: { a: 1 }, data_base64: "AQI=" })),
    ["data_base64"],
  );
  assert.deepStrictEqual(paths(() => CloudEvent.fromJSON({ ...base, data: "", data_base64: "" })), [
    "data_base64",
  ]);
  for (
    const value of ["abc", "ab$=", "====", "A===", " AAAA", "AAAA\n", "AA=A", "QQ", 5, true, {}, []]
  ) {
    assert.deepStrictEqual(
      paths(() => CloudEvent.fromJSON({ ...base, data_base64: value })),
      ["data_base64"],
      JSON.stringify(value),
    );
  }
  // A 10 MB invalid payload is refused (a regular expression used to overflow on it) ...
  const invalid = rejected(() =>
    CloudEvent.fromJSON({ ...base, data_base64: "A".repeat(TEN_MB + 1) })
  );
  assert.deepStrictEqual(invalid.issues.map((issue) => issue.path), ["data_base64"]);
  assert.ok(invalid.message.length < 500);
  // ... and a 10 MB valid one is data, not an attribute: accepted.
  const big = CloudEvent.fromJSON({ ...base, data_base64: "AAEC".repeat(TEN_MB / 4) });
  assert.ok(big.data instanceof Uint8Array);
  assert.equal(big.data.length, (TEN_MB / 4) * 3);
  assert.deepStrictEqual(Array.from(big.data.subarray(0, 6)), [0, 1, 2, 0, 1, 2]);
});

/** `[[...[1]...]]` nested `depth` levels, as a value. */
function nestedArrays(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

/** An event's JSON text with `data` nested `depth` levels. */
function nestedText(depth: number): string {
  return `{"specversion":"1.0","id":"1","type":"t","source":"/s","data":${"[".repeat(depth)}1${
    "]".repeat(depth)
  }}`;
}

Deno.test("bad input: data nested 5 000 to 100 000 levels deep is refused, not a RangeError", () => {
  for (const depth of [5_000, 100_000]) {
    const fromText = rejected(() => CloudEvent.fromJSON(nestedText(depth)));
    assert.equal(fromText.issues.length, 1);
    assert.match(fromText.issues[0].path, /^data\[0\]/);
    assert.match(fromText.issues[0].message, /nested more than 512 levels/);
    assert.ok(fromText.message.length < 500, `message is ${fromText.message.length} long`);
    const inBatch = rejected(() => CloudEvent.batchFromJSON(`[${nestedText(depth)}]`));
    assert.match(inBatch.issues[0].path, /^\[0\]\.data\[0\]/);
    const built = rejected(() =>
      new CloudEvent({ type: "t", source: "/s", data: nestedArrays(depth) })
    );
    assert.match(built.issues[0].path, /^data\[0\]/);
  }
});

Deno.test("bad input: the default depth bound is 512 levels, and what it accepts can be written", () => {
  const deepest = CloudEvent.fromJSON(nestedText(DEFAULT_MAX_DATA_DEPTH));
  assert.equal(DEFAULT_MAX_DATA_DEPTH, 512);
  const text = JSON.stringify(deepest);
  assert.deepStrictEqual(CloudEvent.fromJSON(text).data, deepest.data);
  assert.ok(rejected(() => CloudEvent.fromJSON(nestedText(DEFAULT_MAX_DATA_DEPTH + 1))));
  const nestedObjects = JSON.parse(`${'{"a":'.repeat(513)}1${"}".repeat(513)}`);
  const error = rejected(() => new CloudEvent({ type: "t", source: "/s", data: nestedObjects }));
  assert.match(error.issues[0].path, /^data\.a\.a/);
});

Deno.test("bad input: NaN and Infinity in data are refused, from JSON text and at construction", () => {
  // 1e400 is valid JSON text that parses to Infinity.
  assert.deepStrictEqual(
    paths(() =>
      CloudEvent.fromJSON(`{"specversion":"1.0","id":"1","type":"t","source":"/s","data":1e400}`)
    ),
    ["data"],
  );
  assert.deepStrictEqual(
    paths(() =>
      CloudEvent.fromJSON(
        `{"specversion":"1.0","id":"1","type":"t","source":"/s","data":{"a":[1,-1e400]}}`,
      )
    ),
    ["data.a[1]"],
  );
  assert.deepStrictEqual(paths(() => CloudEvent.fromJSON({ ...base, data: [-Infinity] })), [
    "data[0]",
  ]);
  assert.deepStrictEqual(
    paths(() => CloudEvent.batchFromJSON([base, { ...base, data: { n: NaN } }])),
    ["[1].data.n"],
  );
  for (const value of [NaN, Infinity, -Infinity]) {
    assert.deepStrictEqual(paths(() => new CloudEvent({ type: "t", source: "/s", data: value })), [
      "data",
    ]);
    assert.deepStrictEqual(
      paths(() => new CloudEvent({ type: "t", source: "/s", data: { deep: [{ x: value }] } })),
      ["data.deep[0].x"],
    );
  }
  // Large finite numbers are fine.
  assert.equal(CloudEvent.fromJSON({ ...base, data: 1e308 }).data, 1e308);
});

Deno.test("bad input: data that cannot be written as JSON is refused with its path", () => {
  const build = (data: unknown) => () => new CloudEvent({ type: "t", source: "/s", data });
  const cyclic: Record<string, unknown> = { name: "loop" };
  cyclic.self = { back: cyclic };
  const cyclicArray: unknown[] = [1];
  cyclicArray.push([cyclicArray]);
  class Money {
    amount = 1;
  }
  const cases: [unknown, string][] = [
    [cyclic, "data.self.back"],
    [cyclicArray, "data[1][0]"],
    [{ run() {} }, "data.run"],
    [() => 1, "data"],
    [{ s: Symbol("x") }, "data.s"],
    [Symbol("top"), "data"],
    [{ n: 10n }, "data.n"],
    [[1, undefined], "data[1]"],
    // deno-lint-ignore no-sparse-arrays
    [[1, , 3], "data[1]"],
    [{ m: new Map([["a", 1]]) }, "data.m"],
    [new Set([1]), "data"],
    [{ money: new Money() }, "data.money"],
    [{ at: new Date(NaN) }, "data.at"],
    [{ bytes: new Uint8Array([1]) }, "data.bytes"],
    [new Uint16Array([1]), "data"],
    [{ re: /x/ }, "data.re"],
  ];
  for (const [data, path] of cases) {
    const error = rejected(build(data));
    assert.deepStrictEqual(error.issues.map((issue) => issue.path), [path], path);
  }
  // A refused event leaves the caller's data as it was.
  const mine = { ok: { fine: true }, bad: NaN };
  rejected(build(mine));
  assert.ok(!Object.isFrozen(mine) && !Object.isFrozen(mine.ok));
});

Deno.test("bad input: getters and proxies that throw are refused, naming the path", () => {
  const build = (data: unknown) => () => new CloudEvent({ type: "t", source: "/s", data });
  const getter = {
    ok: 1,
    get broken(): number {
      throw new TypeError("getter failed");
    },
  };
  const error = rejected(build({ outer: [getter] }));
  assert.deepStrictEqual(error.issues.map((issue) => issue.path), ["data.outer[0].broken"]);
  assert.match(error.issues[0].message, /getter failed/);
  const hostile = new Proxy({}, {
    ownKeys() {
      throw new Error("no keys for you");
    },
    getPrototypeOf() {
      return Object.prototype;
    },
  });
  assert.deepStrictEqual(paths(build({ p: hostile })), ["data.p"]);
  assert.deepStrictEqual(paths(build(hostile)), ["data"]);
  const everyTrapThrows = new Proxy({}, {
    get() {
      throw new Error("get");
    },
    getPrototypeOf() {
      throw new Error("getPrototypeOf");
    },
    ownKeys() {
      throw new Error("ownKeys");
    },
  });
  assert.deepStrictEqual(paths(build({ list: [everyTrapThrows] })), ["data.list[0]"]);
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  assert.deepStrictEqual(paths(build({ gone: proxy })), ["data.gone"]);
  // A wire object whose members throw is refused as a whole.
  const wire = new Proxy({ ...base }, {
    get(target, key) {
      if (key === "source") throw new Error("no source");
      return Reflect.get(target, key);
    },
  });
  assert.deepStrictEqual(paths(() => CloudEvent.fromJSON(wire)), [""]);
});

Deno.test("bad input: a few shared arrays that would expand beyond what JSON can write are refused", () => {
  // 2^40 values when written out; the walk itself stays linear.
  let bomb: unknown = [1];
  for (let i = 0; i < 40; i++) bomb = [bomb, bomb];
  const error = rejected(() => new CloudEvent({ type: "t", source: "/s", data: bomb }));
  assert.match(error.issues[0].message, /more than \d+ values/);
  // A shared object that stays small is fine, and written once per reference.
  const shared = { sku: "X" };
  const e = new CloudEvent({ type: "t", source: "/s", data: { a: shared, b: [shared, shared] } });
  assert.deepStrictEqual(CloudEvent.fromJSON(JSON.stringify(e)).data, {
    a: { sku: "X" },
    b: [{ sku: "X" }, { sku: "X" }],
  });
});

Deno.test("bad input: wrong types for core attributes name the attribute", () => {
  const cases: [string, unknown][] = [
    ["id", 25],
    ["id", { xyz: "abc" }],
    ["id", ["a"]],
    ["source", 1],
    ["type", false],
    ["subject", 5],
    ["time", 1700000000],
    ["datacontenttype", {}],
    ["dataschema", []],
    ["specversion", 1],
    ["specversion", 1.0],
  ];
  for (const [name, value] of cases) {
    assert.deepStrictEqual(
      paths(() => CloudEvent.fromJSON({ ...base, [name]: value })),
      [name],
      `${name}: ${JSON.stringify(value)}`,
    );
  }
});

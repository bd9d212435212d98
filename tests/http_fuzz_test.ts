/**
 * Property-based tests of the HTTP receiver: random methods, headers, media
 * types and bodies against a started EventBus on memory brokers. Whatever
 * arrives, the answer is a documented status (never 500, never a thrown
 * exception), stays small, and a refusal publishes nothing.
 *
 * Runs are seeded (see _fuzz_seed.ts): set FUZZ_SEED to replay a failure (the
 * seed is printed with it), FUZZ_RUNS to change the number of runs.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { z } from "zod";
import { defineEvent, EventBus, EventScope, silentLogger } from "../mod.ts";
import { createReceiver, type ProblemDetails } from "../http.ts";
import { withDeadline } from "./_deferred.ts";
import { FUZZ_SEED } from "./_fuzz_seed.ts";

const SEED = FUZZ_SEED;
const RUNS = Number(Deno.env.get("FUZZ_RUNS") ?? 1000);
const MAX_ANSWER_BYTES = 8 * 1024;
// 200 and 403 answer the web hook OPTIONS handshake.
const DOCUMENTED = new Set([200, 202, 400, 403, 405, 408, 413, 415, 503]);
const URL_ = "http://localhost/events";

const Order = defineEvent({
  type: "order.created",
  scope: EventScope.PROCESS,
  source: "/orders",
  data: z.object({ orderId: z.string(), amount: z.number().positive() }),
});
// A recursive schema: deep payloads make its parser recurse once per level.
const Doc = defineEvent({ type: "doc.saved", source: "/docs", data: z.json() });

/** A started bus whose publishes are counted, and a receiver on it that logs errors. */
async function harness(bodyTimeout: number) {
  const bus = new EventBus({ logger: silentLogger });
  let published = 0;
  bus.use({
    async publish(_call, next) {
      await next();
      published++;
    },
  });
  bus.subscribe("t", function consume() {});
  bus.subscribe(Order, function consumeOrder() {});
  const errors: unknown[] = [];
  const logger = { ...silentLogger, error: (...args: unknown[]) => void errors.push(args) };
  await bus.start();
  const receive = createReceiver({
    bus,
    logger,
    definitions: [Order, Doc],
    extensionTypes: { num: "integer", flag: "boolean", when: "timestamp" },
    maxBodyBytes: 96 * 1024,
    bodyTimeout,
    webhookOrigins: ["sender.example.com"],
  });
  return {
    bus,
    receive,
    errors,
    published: () => published,
    reset() {
      published = 0;
      errors.length = 0;
    },
  };
}

// ---------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------

/** Text a header value can hold (the Request constructor refuses the rest). */
const headerText = fc.string({
  unit: fc.oneof(
    fc.string({ minLength: 1, maxLength: 1 }),
    fc.constantFrom("%", "%2", "%ZZ", "%C3%A9", "%FF", "%00", "é", "\t", ";", "=", '"', ","),
  ),
  maxLength: 40,
}).map((text) => text.trim());

const hugeText = fc.integer({ min: 60_000, max: 70_000 }).map((n) => "i".repeat(n));

const attributeValue = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom("1.0", "t", "order.created", "doc.saved", "/s") },
  { weight: 2, arbitrary: fc.constantFrom("42", "042", "-1", "99999999999", "1.5") },
  { weight: 2, arbitrary: fc.constantFrom("true", "false", "TRUE", "1") },
  {
    weight: 2,
    arbitrary: fc.constantFrom("2024-01-31T12:00:00Z", "2024-02-30T00:00:00Z", "yesterday"),
  },
  { weight: 2, arbitrary: fc.constantFrom("http://a.aa/x", "not a uri", "a b", "mailto:x@y.z") },
  { weight: 3, arbitrary: headerText },
  { weight: 1, arbitrary: hugeText },
);

const attributeName = fc.oneof(
  fc.constantFrom(
    "specversion",
    "id",
    "source",
    "type",
    "time",
    "subject",
    "dataschema",
    "datacontenttype",
    "data",
    "data_base64",
    "num",
    "flag",
    "when",
    "tenant",
  ),
  fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/),
  fc.integer({ min: 300, max: 5000 }).map((n) => "n".repeat(n)),
);

/** Valid binary-mode headers, declared extensions in canonical form. */
const validCeHeaders = fc.record({
  "ce-specversion": fc.constant("1.0"),
  "ce-id": fc.oneof({ weight: 5, arbitrary: fc.uuid() }, { weight: 1, arbitrary: hugeText }),
  "ce-source": fc.constantFrom("/s", "http://a.aa/x"),
  "ce-type": fc.constantFrom("t", "a b", "other"),
  "ce-num": fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }).map(String),
  "ce-flag": fc.boolean().map(String),
  "ce-subject": fc.constantFrom("s", "h%C3%A9llo%20world"),
}, { requiredKeys: ["ce-specversion", "ce-id", "ce-source", "ce-type"] });

/** ce-* headers: a valid core set with random changes, or none at all. */
const randomCeHeaders = fc.tuple(
  fc.boolean(),
  fc.constantFrom("t", "order.created", "doc.saved", "a b", "other"),
  fc.array(fc.tuple(attributeName, attributeValue), { maxLength: 5 }),
).map(([core, type, extra]) => {
  const headers: Record<string, string> = core
    ? { "ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": type }
    : {};
  for (const [name, value] of extra) headers[`ce-${name.toLowerCase()}`] = value;
  return headers;
});

const ceHeaders = fc.oneof(validCeHeaders, randomCeHeaders) as fc.Arbitrary<
  Record<string, string>
>;

const parameter = fc.tuple(
  fc.constantFrom("charset", "Charset", "CHARSET", "v", "V", "a", "boundary"),
  fc.constantFrom("utf-8", "UTF8", "latin1", '"utf-8"', "1", "2", ""),
);

const mediaType = fc.oneof(
  { weight: 2, arbitrary: fc.constant(undefined) },
  {
    weight: 6,
    arbitrary: fc.tuple(
      fc.constantFrom(
        "application/cloudevents+json",
        "application/cloudevents+json",
        "application/cloudevents-batch+json",
        "application/cloudevents-batch+json",
        "application/json",
        "text/plain",
        "application/octet-stream",
        "application/cloudevents+xml",
        "Application/CloudEvents+JSON",
        "nonsense",
      ),
      fc.array(parameter, { maxLength: 3 }),
    ).map(([essence, params]) => [essence, ...params.map(([n, v]) => `${n}=${v}`)].join("; ")),
  },
  { weight: 1, arbitrary: headerText },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 5000, max: 20000 }).map((n) => `application/${"x".repeat(n)}`),
  },
);

/** Data nested `depth` levels deep, as JSON text. */
const deepJson = fc.tuple(fc.integer({ min: 100, max: 3000 }), fc.boolean()).map((
  [depth, arrays],
) =>
  arrays ? "[".repeat(depth) + "]".repeat(depth) : '{"a":'.repeat(depth) + "1" + "}".repeat(depth)
);

/** A JSON event object, valid or not, as text. */
const eventJson = fc.record({
  specversion: fc.constantFrom("1.0", "1.0", "0.3", 1),
  id: fc.oneof(fc.constantFrom("1", "2", ""), hugeText),
  source: fc.constantFrom("/s", "http://a.aa", "not a uri", ""),
  type: fc.constantFrom("t", "order.created", "doc.saved", "a b", "bell\u0007"),
  extras: fc.dictionary(
    fc.oneof(attributeName, fc.constant("__proto__")),
    fc.oneof(attributeValue, fc.integer(), fc.boolean(), fc.constant(null)),
    { maxKeys: 3 },
  ),
  data: fc.oneof(
    fc.constant(undefined),
    fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify(value)),
    fc.constant('{"orderId":"A1","amount":3}'),
    deepJson,
  ),
}, { requiredKeys: ["specversion", "extras", "data"] }).map((event) => {
  const { extras, data, ...core } = event;
  const members = JSON.stringify({ ...extras, ...core }).slice(1, -1);
  return `{${members}${data === undefined ? "" : `${members ? "," : ""}"data":${data}`}}`;
});

/** A valid JSON event object as text, its data fit for its type's definition. */
const validEventJson = fc.record({
  id: fc.oneof({ weight: 5, arbitrary: fc.uuid() }, { weight: 1, arbitrary: hugeText }),
  type: fc.constantFrom("t", "a b", "order.created", "doc.saved"),
  extensions: fc.constantFrom({}, { num: 42 }, { num: "42", flag: "true" }, {
    when: "2024-01-31T12:00:00Z",
  }),
  data: fc.jsonValue({ maxDepth: 3 }),
}).map(({ id, type, extensions, data }) =>
  JSON.stringify({
    specversion: "1.0",
    id,
    source: "/s",
    type,
    ...extensions,
    data: type === "order.created" ? { orderId: "A1", amount: 3 } : data,
  })
);

const body = fc.oneof(
  { weight: 1, arbitrary: fc.constant(undefined) },
  { weight: 3, arbitrary: validEventJson },
  {
    weight: 2,
    arbitrary: fc.array(validEventJson, { minLength: 1, maxLength: 4 }).map((events) =>
      `[${events.join(",")}]`
    ),
  },
  { weight: 3, arbitrary: eventJson },
  {
    weight: 3,
    arbitrary: fc.array(eventJson, { maxLength: 6 }).map((events) => `[${events.join(",")}]`),
  },
  { weight: 1, arbitrary: fc.json() },
  { weight: 1, arbitrary: deepJson },
  { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 1, max: 20_000 }).map((n) => `[${"{},".repeat(n)}{}]`),
  },
  { weight: 1, arbitrary: fc.constant("x".repeat(100 * 1024)) },
);

const method = fc.oneof(
  { weight: 8, arbitrary: fc.constant("POST") },
  { weight: 1, arbitrary: fc.constantFrom("GET", "PUT", "DELETE", "PATCH", "OPTIONS") },
);

const request = fc.record({
  method,
  contentType: mediaType,
  ce: ceHeaders,
  extra: fc.dictionary(
    fc.constantFrom("content-length", "webhook-request-origin", "webhook-request-rate"),
    fc.oneof(headerText, fc.constantFrom("0", "99999999999", "sender.example.com")),
    { maxKeys: 2 },
  ),
  body,
});

type RequestSpec = typeof request extends fc.Arbitrary<infer T> ? T : never;

function toRequest(spec: RequestSpec, stream?: ReadableStream<Uint8Array>): Request {
  const headers = new Headers(spec.ce);
  if (spec.contentType !== undefined) headers.set("content-type", spec.contentType);
  for (const [name, value] of Object.entries(spec.extra)) headers.set(name, value);
  const hasBody = spec.method !== "GET" && spec.method !== "HEAD";
  const payload = stream ??
    (spec.body instanceof Uint8Array ? new Uint8Array(spec.body) : spec.body);
  return new Request(URL_, { method: spec.method, headers, body: hasBody ? payload : undefined });
}

// ---------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------

/** Checks one answer; returns its status. */
async function checkAnswer(response: Response, published: number): Promise<number> {
  const status = response.status;
  assert.ok(DOCUMENTED.has(status), `status ${status}`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  let headerBytes = 0;
  for (const [name, value] of response.headers) headerBytes += name.length + value.length + 4;
  assert.ok(
    bytes.byteLength + headerBytes <= MAX_ANSWER_BYTES,
    `answer of ${bytes.byteLength} + ${headerBytes} bytes`,
  );
  if (status === 202) {
    const { accepted } = JSON.parse(new TextDecoder().decode(bytes)) as { accepted: number };
    assert.equal(published, accepted, "202 publishes exactly what it counts");
  } else if (status >= 400) {
    assert.equal(response.headers.get("content-type"), "application/problem+json");
    const problem = JSON.parse(new TextDecoder().decode(bytes)) as ProblemDetails;
    assert.equal(problem.status, status);
    assert.ok((problem.issues?.length ?? 0) <= 20);
    if (status < 500) assert.equal(published, 0, `${status} published ${published} event(s)`);
  } else {
    assert.equal(published, 0, `${status} published ${published} event(s)`);
  }
  return status;
}

/**
 * Run parameters: seeded, and a failure reported with its seed and a short
 * counterexample (inputs here reach 100 KB). `shrink: false` reports the
 * first failure as it is, for properties whose runs wait on a timeout.
 */
function params<T>(numRuns: number, shrink = true): fc.Parameters<T> {
  return {
    seed: SEED,
    numRuns,
    endOnFailure: !shrink,
    reporter(details) {
      if (!details.failed) return;
      const example = JSON.stringify(
        details.counterexample,
        (_key, value) =>
          typeof value === "string" && value.length > 200
            ? `${value.slice(0, 200)}…(${value.length} chars)`
            : value instanceof Uint8Array
            ? `Uint8Array(${value.byteLength})`
            : value,
      );
      throw new Error(
        `property failed: replay with FUZZ_SEED=${SEED} (path ${details.counterexamplePath})\n` +
          `counterexample: ${example.slice(0, 4000)}\n${details.errorInstance}`,
      );
    },
  };
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

Deno.test("fuzz: any request gets a documented, small answer; a refusal publishes nothing", async () => {
  const h = await harness(5_000);
  const seen = new Map<number, number>();
  try {
    await fc.assert(
      fc.asyncProperty(request, async (spec) => {
        h.reset();
        const response = await h.receive(toRequest(spec));
        const status = await checkAnswer(response, h.published());
        seen.set(status, (seen.get(status) ?? 0) + 1);
        assert.deepEqual(h.errors, [], "nothing unexpected was logged");
      }),
      params(RUNS),
    );
  } finally {
    await h.bus.stop();
  }
  // The generators reach acceptance and every kind of refusal, not only one.
  for (const status of [202, 400, 405, 413, 415]) {
    assert.ok(seen.has(status), `status ${status} never produced: ${JSON.stringify([...seen])}`);
  }
});

Deno.test("fuzz: a body that stalls ends with an answer once bodyTimeout passes", async () => {
  const h = await harness(20);
  let timedOut = 0;
  try {
    await fc.assert(
      fc.asyncProperty(request, fc.uint8Array({ maxLength: 64 }), async (spec, prefix) => {
        h.reset();
        const stalled = new ReadableStream<Uint8Array>({
          start(controller) {
            if (prefix.byteLength > 0) controller.enqueue(prefix);
            // Never closes: a client that stopped sending.
          },
        });
        const response = await withDeadline(
          h.receive(toRequest({ ...spec, method: "POST" }, stalled)),
          10_000,
          "stalled request answered",
        );
        const status = await checkAnswer(response, h.published());
        assert.ok([400, 408, 413, 415].includes(status), `status ${status}`);
        if (status === 408) timedOut++;
        assert.deepEqual(h.errors, []);
      }),
      params(Math.max(10, Math.floor(RUNS / 6)), false),
    );
  } finally {
    await h.bus.stop();
  }
  assert.ok(timedOut > 0, "no run reached the body timeout");
});

/**
 * The CloudEvents HTTP binding: requests made by the official SDK and by
 * hand, against the fetch handler; outgoing delivery against a local server.
 */

import assert from "node:assert/strict";
import { CloudEvent as SdkCloudEvent, HTTP } from "cloudevents";
import { z } from "zod";
import {
  CloudEvent,
  defineEvent,
  EventBus,
  EventBusError,
  EventScope,
  InvalidArgumentError,
  ScopedEvent,
  silentLogger,
} from "../mod.ts";
import {
  createReceiver,
  type EventPublisher,
  HttpDeliveryError,
  HttpRequestError,
  httpSink,
  parseRequest,
  type ParseRequestOptions,
  type ProblemDetails,
  sendBatch,
  sendEvent,
  toHttpRequest,
} from "../http.ts";
import { KvBroker } from "../kv.ts";
import { deferred, withDeadline } from "./_deferred.ts";

const URL_ = "http://localhost/events";

function recorder(): EventPublisher & { events: CloudEvent[] } {
  const events: CloudEvent[] = [];
  return { events, publish: (event) => Promise.resolve(void events.push(event)) };
}

function post(headers: Record<string, string>, body?: BodyInit): Request {
  return new Request(URL_, { method: "POST", headers, body });
}

function fromSdk(message: { headers: Record<string, unknown>; body: unknown }): Request {
  return post(message.headers as Record<string, string>, message.body as string);
}

async function problem(response: Response, status: number): Promise<ProblemDetails> {
  assert.equal(response.status, status);
  assert.equal(response.headers.get("content-type"), "application/problem+json");
  const body = await response.json() as ProblemDetails;
  assert.equal(body.status, status);
  assert.equal(typeof body.title, "string");
  assert.equal(typeof body.detail, "string");
  return body;
}

function paths(body: ProblemDetails): string[] {
  return (body.issues ?? []).map((issue) => issue.path);
}

const binaryHeaders = {
  "ce-specversion": "1.0",
  "ce-id": "b-1",
  "ce-source": "/tests",
  "ce-type": "test.binary",
};

const OrderCreated = defineEvent({
  type: "order.created",
  scope: EventScope.PROCESS,
  source: "/orders",
  data: z.object({ orderId: z.string(), amount: z.number().positive() }),
});

Deno.test("binary mode from the SDK is accepted, attributes and extensions intact", async () => {
  const bus = recorder();
  const handler = createReceiver({ bus });
  const sent = new SdkCloudEvent({
    type: "com.example.ping",
    source: "/sdk",
    subject: "s-1",
    data: { n: 1, list: ["a"] },
    tenant: "acme",
  });
  const response = await handler(fromSdk(HTTP.binary(sent)));
  assert.equal(response.status, 202);
  assert.deepEqual(await response.json(), { accepted: 1 });
  assert.equal(bus.events.length, 1);
  const got = bus.events[0];
  assert.equal(got.id, sent.id);
  assert.equal(got.type, "com.example.ping");
  assert.equal(got.source, "/sdk");
  assert.equal(got.subject, "s-1");
  assert.equal(got.time, sent.time);
  assert.deepEqual(got.data, { n: 1, list: ["a"] });
  assert.equal(got.extensions.tenant, "acme");
  assert.equal(got.datacontenttype, "application/json; charset=utf-8");
});

Deno.test("structured mode from the SDK is accepted", async () => {
  const bus = recorder();
  const handler = createReceiver({ bus });
  const sent = new SdkCloudEvent({ type: "t.structured", source: "/sdk", data: "text", seq: 7 });
  const response = await handler(fromSdk(HTTP.structured(sent)));
  assert.equal(response.status, 202);
  assert.equal(bus.events[0].id, sent.id);
  assert.equal(bus.events[0].data, "text");
  assert.equal(bus.events[0].extensions.seq, 7);
});

Deno.test("binary mode: octet-stream body is bytes, text body is text, empty body is no data", async () => {
  const bus = recorder();
  const handler = createReceiver({ bus });
  const bytes = new Uint8Array([0, 1, 254, 255]);
  assert.equal(
    (await handler(post({ ...binaryHeaders, "content-type": "application/octet-stream" }, bytes)))
      .status,
    202,
  );
  assert.deepEqual(bus.events[0].data, bytes);
  assert.equal(
    (await handler(post({ ...binaryHeaders, "content-type": "text/plain" }, "héllo"))).status,
    202,
  );
  assert.equal(bus.events[1].data, "héllo");
  assert.equal((await handler(post(binaryHeaders))).status, 202);
  assert.equal(bus.events[2].data, undefined);
});

Deno.test("binary mode: header values are percent-decoded, and toHttpRequest encodes them", async () => {
  const bus = recorder();
  const handler = createReceiver({ bus });
  const response = await handler(
    post({ ...binaryHeaders, "ce-subject": "h%C3%A9llo%20%22world%22%25" }),
  );
  assert.equal(response.status, 202);
  assert.equal(bus.events[0].subject, 'héllo "world"%');

  const event = new CloudEvent({
    type: "t.round",
    source: "/a%20b",
    subject: "ünïcode ✓",
    extensions: { note: "50% off", count: 3, flag: true },
    data: { ok: true },
  });
  const request = toHttpRequest(event, URL_, { mode: "binary" });
  assert.equal(request.headers.get("ce-subject"), "%C3%BCn%C3%AFcode%20%E2%9C%93");
  assert.equal((await handler(request)).status, 202);
  const back = bus.events[1];
  assert.equal(back.source, "/a%20b");
  assert.equal(request.headers.get("ce-source"), "/a%2520b");
  assert.equal(back.subject, "ünïcode ✓");
  assert.deepEqual(back.extensions, { note: "50% off", count: "3", flag: "true" });
  assert.deepEqual(back.data, { ok: true });
});

Deno.test("binary mode: malformed headers answer 400 naming the attribute", async () => {
  const bus = recorder();
  const handler = createReceiver({ bus });
  const cases: [Record<string, string>, string][] = [
    [{ "ce-id": "1", "ce-source": "/s", "ce-type": "t" }, "specversion"],
    [{ ...binaryHeaders, "ce-specversion": "0.3" }, "specversion"],
    [{ ...binaryHeaders, "ce-time": "yesterday" }, "time"],
    [{ ...binaryHeaders, "ce-subject": "100%" }, "subject"],
    [{ ...binaryHeaders, "ce-bad_name": "x" }, "bad_name"],
    [{ ...binaryHeaders, "ce-dataschema": "not a uri" }, "dataschema"],
    [{ ...binaryHeaders, "ce-datacontenttype": "application/json" }, "datacontenttype"],
    [{ ...binaryHeaders, "ce-data": "smuggled" }, "data"],
    [{ "ce-specversion": "1.0", "ce-source": "/s", "ce-type": "t" }, "id"],
  ];
  for (const [headers, attribute] of cases) {
    const body = await problem(await handler(post(headers)), 400);
    assert.ok(paths(body).includes(attribute), `${attribute} in ${JSON.stringify(body.issues)}`);
  }
  assert.equal(bus.events.length, 0);
});

Deno.test("bad JSON answers 400: structured body, binary JSON data, batch", async () => {
  const bus = recorder();
  const handler = createReceiver({ bus });
  const structured = await problem(
    await handler(post({ "content-type": "application/cloudevents+json" }, "{not json")),
    400,
  );
  assert.match(structured.detail, /not valid JSON/);
  const binary = await problem(
    await handler(post({ ...binaryHeaders, "content-type": "application/json" }, "{oops")),
    400,
  );
  assert.deepEqual(paths(binary), ["data"]);
  const batch = await problem(
    await handler(post({ "content-type": "application/cloudevents-batch+json" }, '{"a":1}')),
    400,
  );
  assert.match(batch.detail, /JSON array/);
  const invalidUtf8 = await problem(
    await handler(
      post({ "content-type": "application/cloudevents+json" }, new Uint8Array([0xff, 0xfe])),
    ),
    400,
  );
  assert.match(invalidUtf8.detail, /UTF-8/);
  assert.equal(bus.events.length, 0);
});

Deno.test("unsupported content types answer 415", async () => {
  const handler = createReceiver({ bus: recorder() });
  await problem(await handler(post({ "content-type": "application/json" }, "{}")), 415);
  await problem(await handler(post({ "content-type": "text/plain" }, "hi")), 415);
  await problem(await handler(post({}, "hi")), 415);
  await problem(
    await handler(post({ "content-type": "application/cloudevents+xml" }, "<e/>")),
    415,
  );
  await problem(
    await handler(post({ "content-type": "application/cloudevents+json; charset=latin1" }, "{}")),
    415,
  );
  const structuredOnly = createReceiver({ bus: recorder(), modes: ["structured"] });
  await problem(await structuredOnly(post(binaryHeaders)), 415);
});

Deno.test("a body over maxBodyBytes answers 413, with Content-Length before reading", async () => {
  const bus = recorder();
  const handler = createReceiver({ bus, maxBodyBytes: 64 });
  let pulled = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulled++;
      controller.enqueue(new Uint8Array(1000));
    },
  });
  const request = new Request(URL_, {
    method: "POST",
    headers: { "content-type": "application/cloudevents+json", "content-length": "1000" },
    body,
  });
  await problem(await handler(request), 413);
  assert.ok(pulled <= 1, `read ${pulled} chunks despite Content-Length`);
  assert.equal(bus.events.length, 0);
});

Deno.test("a streamed body without Content-Length is counted and cut off at the limit", async () => {
  const bus = recorder();
  const handler = createReceiver({ bus, maxBodyBytes: 10_000 });
  const cancelled = deferred<void>();
  // An endless body: only a reader that counts and stops can answer.
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      controller.enqueue(new Uint8Array(4096).fill(32));
    },
    cancel() {
      cancelled.resolve();
    },
  });
  const request = new Request(URL_, {
    method: "POST",
    headers: { "content-type": "application/cloudevents+json" },
    body,
  });
  assert.equal(request.headers.get("content-length"), null);
  await problem(await withDeadline(handler(request), 5_000, "endless body answered"), 413);
  await withDeadline(cancelled.promise, 5_000, "stream cancelled");
  assert.equal(bus.events.length, 0);
});

Deno.test("a batch with one bad event is refused whole; a good batch is published in order", async () => {
  const bus = recorder();
  const handler = createReceiver({ bus });
  const good = (id: string) => ({ specversion: "1.0", id, source: "/b", type: "t.batch" });
  const bad = await problem(
    await handler(
      post(
        { "content-type": "application/cloudevents-batch+json" },
        JSON.stringify([good("1"), { ...good("2"), id: "" }, good("3")]),
      ),
    ),
    400,
  );
  assert.deepEqual(paths(bad), ["[1].id"]);
  assert.equal(bus.events.length, 0);

  const ok = await handler(
    post(
      { "content-type": "application/cloudevents-batch+json" },
      CloudEvent.batchToJSON(["1", "2", "3"].map((id) => CloudEvent.fromJSON(good(id)))),
    ),
  );
  assert.equal(ok.status, 202);
  assert.deepEqual(bus.events.map((event) => event.id), ["1", "2", "3"]);
});

Deno.test("a method other than POST answers 405 with Allow", async () => {
  const handler = createReceiver({ bus: recorder() });
  for (const method of ["GET", "PUT", "DELETE"]) {
    const response = await handler(new Request(URL_, { method }));
    await problem(response, 405);
    assert.equal(response.headers.get("allow"), "POST");
  }
});

Deno.test("the web hook OPTIONS handshake grants listed origins only", async () => {
  const handler = createReceiver({ bus: recorder(), webhookOrigins: ["sender.example.com"] });
  const ask = (headers: Record<string, string>) =>
    handler(new Request(URL_, { method: "OPTIONS", headers }));
  const granted = await ask({
    "webhook-request-origin": "Sender.example.com",
    "webhook-request-rate": "120",
  });
  assert.equal(granted.status, 200);
  assert.equal(granted.headers.get("webhook-allowed-origin"), "Sender.example.com");
  assert.equal(granted.headers.get("webhook-allowed-rate"), "120");
  assert.equal(granted.headers.get("allow"), "POST, OPTIONS");
  await problem(await ask({ "webhook-request-origin": "evil.example.com" }), 403);
  await problem(await ask({}), 400);
  const put = await handler(new Request(URL_, { method: "PUT" }));
  await problem(put, 405);
  assert.equal(put.headers.get("allow"), "POST, OPTIONS");
  // Without webhookOrigins there is no handshake.
  const plain = await createReceiver({ bus: recorder() })(
    new Request(URL_, { method: "OPTIONS", headers: { "webhook-request-origin": "a.b" } }),
  );
  await problem(plain, 405);
  assert.throws(
    () => createReceiver({ bus: recorder(), webhookOrigins: [""] }),
    InvalidArgumentError,
  );
});

Deno.test("definitions: typed events with their scope; schema and unknown types answer 400", async () => {
  const bus = recorder();
  const handler = createReceiver({
    bus,
    definitions: [OrderCreated],
    allowUnknownTypes: false,
  });
  const order = new OrderCreated({ data: { orderId: "A1", amount: 12.5 } });
  assert.equal((await handler(toHttpRequest(order, URL_))).status, 202);
  const got = bus.events[0];
  assert.ok(got instanceof OrderCreated);
  assert.equal((got as ScopedEvent).scope, EventScope.PROCESS);
  assert.deepEqual(got.data, { orderId: "A1", amount: 12.5 });

  const wrong = { ...order.toJSON(), data: { orderId: "A2", amount: -1 } };
  const schema = await problem(
    await handler(post({ "content-type": "application/cloudevents+json" }, JSON.stringify(wrong))),
    400,
  );
  assert.deepEqual(paths(schema), ["data.amount"]);

  const batch = await problem(
    await handler(
      post(
        { "content-type": "application/cloudevents-batch+json" },
        JSON.stringify([order.toJSON(), wrong]),
      ),
    ),
    400,
  );
  assert.deepEqual(paths(batch), ["[1].data.amount"]);

  const unknown = await problem(
    await handler(post({ ...binaryHeaders, "ce-type": "other.type" })),
    400,
  );
  assert.deepEqual(paths(unknown), ["type"]);
  assert.equal(bus.events.length, 1);
});

Deno.test("untyped events get the configured scope", async () => {
  const bus = recorder();
  const handler = createReceiver({ bus, scope: EventScope.PROCESS });
  assert.equal((await handler(post(binaryHeaders))).status, 202);
  assert.ok(bus.events[0] instanceof ScopedEvent);
  assert.equal((bus.events[0] as ScopedEvent).scope, EventScope.PROCESS);
});

Deno.test("publish failures: not started answers 503, an unknown error 500 without its message", async () => {
  const stopped = new EventBus({ logger: silentLogger });
  const notStarted = await problem(
    await createReceiver({ bus: stopped, logger: silentLogger })(post(binaryHeaders)),
    503,
  );
  assert.match(notStarted.detail, /not published/);

  const failing: EventPublisher = { publish: () => Promise.reject(new Error("secret internals")) };
  const logged: unknown[] = [];
  const logger = { ...silentLogger, error: (...args: unknown[]) => void logged.push(args) };
  const internal = await problem(
    await createReceiver({ bus: failing, logger })(post(binaryHeaders)),
    500,
  );
  assert.doesNotMatch(JSON.stringify(internal), /secret/);
  assert.equal(logged.length, 1);

  let calls = 0;
  const failsSecond: EventPublisher = {
    publish:
      () => (++calls === 2
        ? Promise.reject(new EventBusError("BROKER", "down"))
        : Promise.resolve()),
  };
  const events = ["1", "2", "3"].map((id) => new CloudEvent({ id, type: "t", source: "/s" }));
  const partial = await problem(
    await createReceiver({ bus: failsSecond, logger: silentLogger })(
      post(
        { "content-type": "application/cloudevents-batch+json" },
        CloudEvent.batchToJSON(events),
      ),
    ),
    503,
  );
  assert.equal(partial.accepted, 1);
});

Deno.test("options are validated with typed errors", async () => {
  const bus = recorder();
  // deno-lint-ignore no-explicit-any
  const bad: any[] = [
    undefined,
    {},
    { bus: {} },
    { bus, maxBodyBytes: 0 },
    { bus, maxBodyBytes: 1.5 },
    { bus, modes: [] },
    { bus, modes: "binary" },
    { bus, modes: 5 },
    { bus, allowUnknownTypes: "no" },
    { bus, modes: ["smoke-signal"] },
    { bus, scope: "galaxy" },
    { bus, definitions: [{}] },
    { bus, definitions: [OrderCreated, OrderCreated] },
  ];
  for (const options of bad) {
    assert.throws(() => createReceiver(options), InvalidArgumentError, JSON.stringify(options));
  }
  const event = new CloudEvent({ type: "t", source: "/s" });
  assert.throws(() => toHttpRequest(event, "ftp://example.com"), InvalidArgumentError);
  assert.throws(() => toHttpRequest(event, "not a url"), InvalidArgumentError);
  // deno-lint-ignore no-explicit-any
  assert.throws(() => toHttpRequest({ type: "t" } as any, URL_), InvalidArgumentError);
  // deno-lint-ignore no-explicit-any
  assert.throws(() => toHttpRequest(event, URL_, { mode: "morse" as any }), InvalidArgumentError);
  assert.throws(() => httpSink("mailto:a@b.c"), InvalidArgumentError);
  assert.throws(() => httpSink(URL_, { attempts: 0 }), InvalidArgumentError);
  assert.throws(() => httpSink(URL_, { retryDelay: -1 }), InvalidArgumentError);
  assert.throws(() => httpSink(URL_, { name: " " }), InvalidArgumentError);
  // deno-lint-ignore no-explicit-any
  await assert.rejects(sendEvent(event, URL_, { timeout: "soon" as any }), InvalidArgumentError);
});

Deno.test("toHttpRequest output is read back by the SDK in both modes", async () => {
  const event = new CloudEvent({
    type: "t.sdk",
    source: "/ours",
    subject: "sub",
    data: { a: [1, 2] },
    extensions: { tenant: "acme" },
  });
  for (const mode of ["binary", "structured"] as const) {
    const request = toHttpRequest(event, URL_, { mode, headers: { authorization: "Bearer x" } });
    assert.equal(request.method, "POST");
    assert.equal(request.headers.get("authorization"), "Bearer x");
    const headers = Object.fromEntries(request.headers);
    const parsed = HTTP.toEvent({ headers, body: await request.text() }) as SdkCloudEvent;
    assert.equal(parsed.id, event.id);
    assert.equal(parsed.type, "t.sdk");
    assert.equal(parsed.subject, "sub");
    assert.equal(parsed.tenant, "acme");
    assert.deepEqual(parsed.data, { a: [1, 2] });
  }
});

/** A local sink answering with the given statuses in turn; the last repeats. */
function sink(statuses: number[]) {
  const requests: { headers: Headers; body: string }[] = [];
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (request) => {
    requests.push({ headers: request.headers, body: await request.text() });
    const status = statuses[Math.min(requests.length - 1, statuses.length - 1)];
    return new Response(status === 503 ? "busy" : null, { status });
  });
  const url = `http://127.0.0.1:${server.addr.port}/hook`;
  return { server, url, requests };
}

Deno.test("sendEvent retries a 503 and then succeeds", async () => {
  const { server, url, requests } = sink([503, 202]);
  try {
    const event = new CloudEvent({ type: "t.retry", source: "/s", data: { n: 1 } });
    const warnings: string[] = [];
    const logger = { ...silentLogger, warn: (message: string) => void warnings.push(message) };
    const result = await sendEvent(event, url, { retryDelay: 1, logger });
    assert.deepEqual(result, { status: 202, attempts: 2 });
    assert.equal(requests.length, 2);
    for (const request of requests) assert.equal(request.headers.get("ce-id"), event.id);
    assert.equal(requests[1].body, '{"n":1}');
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /503/);
  } finally {
    await server.shutdown();
  }
});

Deno.test("sendEvent fails at once with HttpDeliveryError on a 4xx", async () => {
  const { server, url, requests } = sink([422]);
  try {
    const event = new CloudEvent({ type: "t.reject", source: "/s" });
    const error = await sendEvent(event, `${url}?token=secret`, {
      retryDelay: 1,
      mode: "structured",
    })
      .then(() => assert.fail("resolved"), (e) => e);
    assert.ok(error instanceof HttpDeliveryError);
    assert.ok(error instanceof EventBusError);
    assert.equal(error.code, "HTTP_DELIVERY");
    assert.equal(error.status, 422);
    assert.equal(error.attempts, 1);
    assert.equal(error.retryable, false);
    assert.doesNotMatch(error.message, /secret/);
    assert.equal(requests.length, 1);
    assert.equal(CloudEvent.fromJSON(requests[0].body).id, event.id);
  } finally {
    await server.shutdown();
  }
});

Deno.test("sendEvent gives up after its attempts on persistent 5xx and network errors", async () => {
  const { server, url, requests } = sink([500]);
  const event = new CloudEvent({ type: "t.down", source: "/s" });
  try {
    const error = await sendEvent(event, url, { attempts: 3, retryDelay: 1, logger: silentLogger })
      .then(() => assert.fail("resolved"), (e) => e);
    assert.ok(error instanceof HttpDeliveryError);
    assert.equal(error.status, 500);
    assert.equal(error.attempts, 3);
    assert.equal(error.retryable, true);
    assert.equal(requests.length, 3);
  } finally {
    await server.shutdown();
  }
  // The server is gone: its port now refuses connections.
  const refused = await sendEvent(event, url, { attempts: 2, retryDelay: 1, logger: silentLogger })
    .then(() => assert.fail("resolved"), (e) => e);
  assert.ok(refused instanceof HttpDeliveryError);
  assert.equal(refused.status, undefined);
  assert.equal(refused.attempts, 2);
  assert.ok(refused.cause !== undefined);
});

Deno.test("sendEvent stops retrying when its signal aborts", async () => {
  const { server, url } = sink([503]);
  try {
    const controller = new AbortController();
    const event = new CloudEvent({ type: "t.abort", source: "/s" });
    const logger = { ...silentLogger, warn: () => controller.abort(new Error("stop now")) };
    const error = await sendEvent(event, url, {
      retryDelay: 60_000,
      signal: controller.signal,
      logger,
    })
      .then(() => assert.fail("resolved"), (e) => e);
    assert.equal((error as Error).message, "stop now");
  } finally {
    await server.shutdown();
  }
});

Deno.test("httpSink forwards bus events to a webhook, behind a real Deno.serve handler", async () => {
  const received = deferred<{ headers: Headers; body: string }>();
  const webhook = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (request) => {
    received.resolve({ headers: request.headers, body: await request.text() });
    return new Response(null, { status: 204 });
  });
  const bus = new EventBus({ logger: silentLogger });
  const ingress = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    createReceiver({ bus, definitions: [OrderCreated] }),
  );
  try {
    const forward = httpSink(`http://127.0.0.1:${webhook.addr.port}/orders`, {
      mode: "structured",
    });
    assert.match(forward.name, /^httpSink http:\/\/127\.0\.0\.1:\d+\/orders$/);
    bus.subscribe(OrderCreated, forward);
    await bus.start();
    const order = new OrderCreated({ data: { orderId: "A7", amount: 3 } });
    const message = HTTP.binary(new SdkCloudEvent(order.toJSON() as never));
    const response = await fetch(`http://127.0.0.1:${ingress.addr.port}/`, {
      method: "POST",
      headers: message.headers as Record<string, string>,
      body: message.body as string,
    });
    assert.equal(response.status, 202);
    await response.body?.cancel();
    const got = await withDeadline(received.promise, 5_000, "webhook called");
    assert.equal(got.headers.get("content-type"), "application/cloudevents+json; charset=utf-8");
    const forwarded = OrderCreated.parse(got.body);
    assert.equal(forwarded.id, order.id);
    assert.deepEqual(forwarded.data, { orderId: "A7", amount: 3 });
  } finally {
    await bus.stop();
    await ingress.shutdown();
    await webhook.shutdown();
  }
});

Deno.test("sendEvent never follows a redirect: the event would be lost in a GET", async () => {
  const hits: string[] = [];
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (request) => {
    hits.push(`${request.method} ${new URL(request.url).pathname}`);
    await request.body?.cancel();
    return request.url.endsWith("/old")
      ? new Response(null, { status: 301, headers: { location: "/new" } })
      : new Response(null, { status: 200 });
  });
  try {
    const event = new CloudEvent({ type: "t.redirect", source: "/s", data: { n: 1 } });
    const error = await sendEvent(event, `http://127.0.0.1:${server.addr.port}/old`, {
      retryDelay: 1,
    })
      .then(() => assert.fail("resolved"), (e) => e);
    assert.ok(error instanceof HttpDeliveryError);
    assert.equal(error.status, 301);
    assert.deepEqual(hits, ["POST /old"]);
  } finally {
    await server.shutdown();
  }
});

Deno.test("an event the bus refuses for what it is answers 400, not a retryable 5xx", async () => {
  const refusing: EventPublisher = {
    publish: () =>
      Promise.reject(new InvalidArgumentError("message", "is 2000 bytes; the limit is 1000")),
  };
  const body = await problem(
    await createReceiver({ bus: refusing, logger: silentLogger })(post(binaryHeaders)),
    400,
  );
  assert.match(body.detail, /limit is 1000/);
});

Deno.test("an invalid sink URL is reported without its credentials", () => {
  assert.throws(
    () =>
      toHttpRequest(
        new CloudEvent({ type: "t", source: "/s" }),
        "https://user:sekret@exa mple.com/hook",
      ),
    (error: unknown) => error instanceof InvalidArgumentError && !/sekret/.test(error.message),
  );
});

// ---------------------------------------------------------------------------
// Hostile input
// ---------------------------------------------------------------------------

/** An EventBus on memory brokers that counts what reaches its brokers. */
async function countingBus(): Promise<{ bus: EventBus; published: CloudEvent[] }> {
  const bus = new EventBus({ logger: silentLogger });
  const published: CloudEvent[] = [];
  bus.use({
    async publish(call, next) {
      await next();
      published.push(call.event);
    },
  });
  await bus.start();
  return { bus, published };
}

const STRUCTURED = "application/cloudevents+json";
const BATCH = "application/cloudevents-batch+json";
const minimal = (id: string, type = "t.min") => ({
  specversion: "1.0",
  id,
  source: "http://a.aa",
  type,
});

Deno.test("a repeated media-type parameter answers 400, never 500, and publishes nothing", async () => {
  const { bus, published } = await countingBus();
  try {
    const receive = createReceiver({ bus });
    const structured = await problem(
      await receive(
        post(
          { "content-type": `${STRUCTURED}; charset=utf-8; charset=latin1` },
          JSON.stringify(minimal("1")),
        ),
      ),
      400,
    );
    assert.match(structured.detail, /repeats the parameter "charset"/);
    // Parameter names are case-insensitive: v and V are the same parameter.
    const batch = await problem(
      await receive(post({ "content-type": `${BATCH}; v=1; V=2` }, "[]")),
      400,
    );
    assert.match(batch.detail, /repeats the parameter "v"/);
    const binary = await problem(
      await receive(post({ ...binaryHeaders, "content-type": "text/plain; a=1; a=2" }, "hi")),
      400,
    );
    assert.deepEqual(paths(binary), ["datacontenttype"]);
    assert.equal(published.length, 0);
  } finally {
    await bus.stop();
  }
});

Deno.test("toHttpRequest refuses in binary mode a datacontenttype no Content-Type can carry", async () => {
  for (const datacontenttype of ["text/plain; a=1; a=2", 'text/plain; a="✓"']) {
    const event = new CloudEvent({ type: "t", source: "/s", datacontenttype, data: "x" });
    assert.throws(
      () => toHttpRequest(event, URL_),
      (error: unknown) => error instanceof InvalidArgumentError && /structured/.test(error.message),
    );
    // Structured mode carries it inside the JSON document, as it is.
    const request = toHttpRequest(event, URL_, { mode: "structured" });
    assert.equal(CloudEvent.fromJSON(await request.text()).datacontenttype, datacontenttype);
  }
});

Deno.test("data nested 2000 levels deep under a recursive schema answers 400, not 500", async () => {
  type Tree = { children: Tree[] };
  const TreeSchema: z.ZodType<Tree> = z.lazy(() => z.object({ children: z.array(TreeSchema) }));
  const JsonDoc = defineEvent({ type: "doc.json", source: "/d", data: z.json() });
  const TreeDoc = defineEvent({ type: "doc.tree", source: "/d", data: TreeSchema });
  const { bus, published } = await countingBus();
  const logged: unknown[] = [];
  const logger = { ...silentLogger, error: (...args: unknown[]) => void logged.push(args) };
  try {
    const receive = createReceiver({ bus, definitions: [JsonDoc, TreeDoc], logger });
    const arrays = "[".repeat(2000) + "]".repeat(2000);
    const tree = '{"children":['.repeat(2000) + "]}".repeat(2000);
    for (const [type, data] of [["doc.json", arrays], ["doc.tree", tree]]) {
      const body = `{"specversion":"1.0","id":"1","source":"/d","type":"${type}","data":${data}}`;
      const answer = await problem(
        await receive(post({ "content-type": STRUCTURED }, body)),
        400,
      );
      assert.match(answer.detail, /nested (too deeply|more than \d+ levels deep)/, type);
      const binary = await receive(
        post({ ...binaryHeaders, "ce-type": type, "content-type": "application/json" }, data),
      );
      await problem(binary, 400);
    }
    assert.equal(published.length, 0);
    assert.deepEqual(logged, []);
  } finally {
    await bus.stop();
  }
});

Deno.test("a batch whose second type has a space is published whole, on a real bus", async () => {
  const { bus, published } = await countingBus();
  const spaced: string[] = [];
  bus.subscribe("a b", function spacedType(event) {
    spaced.push(event.id);
  });
  try {
    const receive = createReceiver({ bus });
    const response = await receive(
      post(
        { "content-type": BATCH },
        JSON.stringify([minimal("1", "t"), minimal("2", "a b")]),
      ),
    );
    assert.equal(response.status, 202);
    assert.deepEqual(await response.json(), { accepted: 2 });
    assert.deepEqual(published.map((event) => event.id), ["1", "2"]);
  } finally {
    await bus.stop();
  }
  assert.deepEqual(spaced, ["2"]);
});

Deno.test("a batch goes through publishBatch when the publisher has it, and is refused whole", async () => {
  const batches: string[][] = [];
  const single: string[] = [];
  const publisher: EventPublisher = {
    publish: (event) => Promise.resolve(void single.push(event.id)),
    publishBatch: (events) => Promise.resolve(void batches.push(events.map((e) => e.id))),
  };
  const receive = createReceiver({ bus: publisher });
  const ok = await receive(
    post({ "content-type": BATCH }, JSON.stringify([minimal("1"), minimal("2")])),
  );
  assert.equal(ok.status, 202);
  assert.deepEqual(batches, [["1", "2"]]);
  assert.deepEqual(single, []);

  // A real bus that is not started refuses the whole batch before publishing any.
  const stopped = new EventBus({ logger: silentLogger });
  let reached = 0;
  stopped.use({
    async publish(_call, next) {
      reached++;
      await next();
    },
  });
  const refused = await problem(
    await createReceiver({ bus: stopped, logger: silentLogger })(
      post({ "content-type": BATCH }, JSON.stringify([minimal("1"), minimal("2")])),
    ),
    503,
  );
  assert.equal(reached, 0);
  assert.equal(refused.accepted, undefined);
});

Deno.test("a batch KvBroker refuses answers 400 and publishes none of it", async () => {
  const bus = new EventBus({
    app: new KvBroker({ path: ":memory:", logger: silentLogger }),
    logger: silentLogger,
  });
  const got: string[] = [];
  const sentinel = deferred();
  bus.subscribe("t", function record(event) {
    got.push(event.id);
    if (event.id === "sentinel") sentinel.resolve();
  });
  await bus.start();
  try {
    const receive = createReceiver({ bus, logger: silentLogger });
    const big = { ...minimal("2", "t"), data: { big: "x".repeat(80_000) } };
    const refused = await problem(
      await receive(post({ "content-type": BATCH }, JSON.stringify([minimal("1", "t"), big]))),
      400,
    );
    assert.match(refused.detail, /events\[1\]\.message: encoded size/);
    assert.match(refused.detail, /nothing was published/);
    assert.equal(refused.accepted, undefined);
    await bus.publish(new CloudEvent({ id: "sentinel", type: "t", source: "/s" }));
    await withDeadline(sentinel.promise, 20_000, "the sentinel");
    assert.deepEqual(got, ["sentinel"], "no event of the refused batch was delivered");
  } finally {
    await bus.stop();
  }
});

Deno.test("maxDepth bounds the nesting of data; deeper data answers 400", async () => {
  const nested = (depth: number): unknown => depth === 0 ? 1 : { a: nested(depth - 1) };
  const events = recorder();
  const receive = createReceiver({ bus: events, maxDepth: 3 });
  const structured = (depth: number) =>
    receive(
      post(
        { "content-type": "application/cloudevents+json" },
        JSON.stringify({ ...minimal(`s${depth}`), data: nested(depth) }),
      ),
    );
  assert.equal((await structured(3)).status, 202);
  const deep = await problem(await structured(4), 400);
  assert.ok(paths(deep).some((path) => path.startsWith("data")), JSON.stringify(deep.issues));
  // Binary mode: a JSON body is the data.
  const binary = await receive(
    post({ ...binaryHeaders, "content-type": "application/json" }, JSON.stringify(nested(4))),
  );
  await problem(binary, 400);
  // A batch with one event too deep is refused whole.
  const batch = await receive(
    post(
      { "content-type": BATCH },
      JSON.stringify([minimal("ok"), { ...minimal("deep"), data: nested(4) }]),
    ),
  );
  assert.ok(paths(await problem(batch, 400)).some((path) => path.startsWith("[1].data")));
  assert.deepEqual(events.events.map((e) => e.id), ["s3"]);
  // Without the option, the default (512) holds.
  assert.equal(
    (await createReceiver({ bus: recorder() })(
      post(
        { "content-type": "application/cloudevents+json" },
        JSON.stringify({ ...minimal("d"), data: nested(4) }),
      ),
    )).status,
    202,
  );
  // parseRequest takes it too; a bad value is refused when the options are read.
  await assert.rejects(
    parseRequest(
      post(
        { "content-type": "application/cloudevents+json" },
        JSON.stringify({ ...minimal("p"), data: nested(2) }),
      ),
      { maxDepth: 1 },
    ),
    (error: unknown) => error instanceof HttpRequestError && error.status === 400,
  );
  for (const maxDepth of [-1, 1.5, 1001, "3"]) {
    assert.throws(
      () => createReceiver({ bus: recorder(), maxDepth: maxDepth as number }),
      (error: unknown) => error instanceof InvalidArgumentError && error.argument === "maxDepth",
    );
  }
});

Deno.test("a refused batch says how many issues it omits and how many events it left unchecked", async () => {
  const receive = createReceiver({ bus: recorder() });
  // One empty object: the issues of one event.
  const single = await problem(
    await receive(post({ "content-type": BATCH }, "[{}]")),
    400,
  );
  const perEvent = single.issues!.length;
  assert.ok(perEvent >= 1);
  assert.equal(single.issuesOmitted, undefined);
  assert.equal(single.eventsUnchecked, undefined, "every event was checked");

  const count = 200_000;
  const body = await problem(
    await receive(post({ "content-type": BATCH }, `[${Array(count).fill("{}").join(",")}]`)),
    400,
  );
  const stoppedAt = Number(/checking stopped at event \[(\d+)\] of 200000/.exec(body.detail)?.[1]);
  assert.ok(Number.isInteger(stoppedAt), body.detail);
  const checked = stoppedAt + 1;
  assert.equal(body.issues!.length + (body.issuesOmitted ?? 0), checked * perEvent);
  assert.equal(body.eventsUnchecked, count - checked);
  // parseRequest's error carries the same answer.
  const error = await parseRequest(
    post({ "content-type": BATCH }, `[${Array(100).fill("{}").join(",")}]`),
  ).catch((e) => e);
  assert.ok(error instanceof HttpRequestError);
  assert.equal(
    error.problem.eventsUnchecked,
    100 - Number(/event \[(\d+)\]/.exec(error.problem.detail)![1]) - 1,
  );
});

Deno.test("answers stay small whatever the input", async () => {
  const LIMIT = 4096;
  const size = async (response: Response) => (await response.arrayBuffer()).byteLength;
  const hugeId = "i".repeat(65_000);
  const { bus, published } = await countingBus();
  try {
    const receive = createReceiver({ bus, logger: silentLogger });
    // 415 quoting a 20 KB media type.
    const longType = `application/${"x".repeat(20_000)}`;
    const unsupported = await receive(post({ "content-type": longType }, "{}"));
    assert.equal(unsupported.status, 415);
    assert.ok((await size(unsupported)) < LIMIT);
    const longStructured = await receive(
      post({ "content-type": `application/cloudevents+${"x".repeat(20_000)}` }, "{}"),
    );
    assert.equal(longStructured.status, 415);
    assert.ok((await size(longStructured)) < LIMIT);
    // A ce-* header name of 10 000 characters with a badly encoded value.
    const longName = await receive(post({ ...binaryHeaders, [`ce-${"n".repeat(10_000)}`]: "%" }));
    assert.equal(longName.status, 400);
    assert.ok((await size(longName)) < LIMIT);
    // 1 MiB of "{}," as a batch: hundreds of thousands of issues.
    const many = "[" + "{},".repeat(349_000) + "{}]";
    const manyAnswer = await receive(post({ "content-type": BATCH }, many));
    const manyBody = await problem(manyAnswer.clone(), 400);
    assert.ok((await size(manyAnswer)) < LIMIT);
    assert.equal(manyBody.issues?.length, 20);
    assert.ok((manyBody.issuesOmitted ?? 0) >= 1, String(manyBody.issuesOmitted));
    assert.match(manyBody.detail, /checking stopped at event \[\d+\] of 349001/);
    // A 64 KB id, accepted, and refused by a stopped bus and by a refusing one.
    const accepted = await receive(post({ ...binaryHeaders, "ce-id": hugeId }));
    assert.equal(accepted.status, 202);
    assert.ok((await size(accepted)) < LIMIT);
    assert.equal(published[0].id, hugeId);
  } finally {
    await bus.stop();
  }
  const stopped = createReceiver({
    bus: new EventBus({ logger: silentLogger }),
    logger: silentLogger,
  });
  const unavailable = await stopped(post({ ...binaryHeaders, "ce-id": hugeId }));
  assert.equal(unavailable.status, 503);
  assert.ok((await size(unavailable)) < LIMIT);
  const refusing: EventPublisher = {
    publish: () => Promise.reject(new InvalidArgumentError("message", "too large")),
  };
  const refused = await createReceiver({ bus: refusing, logger: silentLogger })(
    post({ ...binaryHeaders, "ce-id": hugeId }),
  );
  assert.equal(refused.status, 400);
  assert.ok((await size(refused)) < LIMIT);
});

Deno.test("a stalled body answers 408 after bodyTimeout, and the stream is cancelled", async () => {
  const bus = recorder();
  const receive = createReceiver({ bus, bodyTimeout: 50 });
  const cancelled = deferred<void>();
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode('{"specversion":"1.0",'));
      // Never closes: a client that stopped sending.
    },
    cancel() {
      cancelled.resolve();
    },
  });
  const request = new Request(URL_, {
    method: "POST",
    headers: { "content-type": STRUCTURED },
    body,
  });
  const answer = await problem(
    await withDeadline(receive(request), 10_000, "stalled body answered"),
    408,
  );
  assert.match(answer.detail, /50 ms/);
  await withDeadline(cancelled.promise, 10_000, "stream cancelled");
  assert.equal(bus.events.length, 0);
  for (const bodyTimeout of [0, -1, 1.5, Infinity, "5s", 2 ** 31]) {
    assert.throws(
      () => createReceiver({ bus, bodyTimeout: bodyTimeout as number }),
      InvalidArgumentError,
      String(bodyTimeout),
    );
  }
});

// ---------------------------------------------------------------------------
// Declared extension types, parseRequest, batches out, no SDK at run time
// ---------------------------------------------------------------------------

Deno.test("declared integer and boolean extensions are read from their canonical strings", async () => {
  const bus = recorder();
  const receive = createReceiver({ bus, extensionTypes: { num: "integer", flag: "boolean" } });
  const binary = await receive(post({ ...binaryHeaders, "ce-num": "42", "ce-flag": "true" }));
  assert.equal(binary.status, 202);
  assert.deepEqual(bus.events[0].extensions, { num: 42, flag: true });
  const structured = await receive(
    post(
      { "content-type": STRUCTURED },
      JSON.stringify({ ...minimal("2"), num: "-7", flag: "false" }),
    ),
  );
  assert.equal(structured.status, 202);
  assert.deepEqual(bus.events[1].extensions, { num: -7, flag: false });
  const batch = await receive(
    post({ "content-type": BATCH }, JSON.stringify([{ ...minimal("3"), num: 0, flag: true }])),
  );
  assert.equal(batch.status, 202);
  assert.deepEqual(bus.events[2].extensions, { num: 0, flag: true });
  // What the binary sender writes is what the receiver reads back.
  const sent = new CloudEvent({ type: "t", source: "/s", extensions: { num: 5, flag: false } });
  assert.equal((await receive(toHttpRequest(sent, URL_))).status, 202);
  assert.deepEqual(bus.events[3].extensions, { num: 5, flag: false });

  for (
    const [num, flag, bad] of [["042", "true", "num"], ["1", "TRUE", "flag"], ["1.0", "1", "num"]]
  ) {
    const refused = await problem(
      await receive(post({ ...binaryHeaders, "ce-num": num, "ce-flag": flag })),
      400,
    );
    assert.ok(paths(refused).includes(bad), `${num} ${flag}: ${JSON.stringify(refused.issues)}`);
  }
  assert.equal(bus.events.length, 4);
  for (const extensionTypes of [[], { num: "float" }, { Bad: "string" }, "integer"]) {
    assert.throws(
      () => createReceiver({ bus, extensionTypes: extensionTypes as never }),
      InvalidArgumentError,
      JSON.stringify(extensionTypes),
    );
  }
});

Deno.test("parseRequest returns the events of every mode, without publishing", async () => {
  const binary = await parseRequest(post({ ...binaryHeaders, "content-type": "text/plain" }, "hi"));
  assert.equal(binary.length, 1);
  assert.equal(binary[0].data, "hi");
  const order = new OrderCreated({ data: { orderId: "P1", amount: 2 } });
  const [typed] = await parseRequest(toHttpRequest(order, URL_, { mode: "structured" }), {
    definitions: [OrderCreated],
  });
  assert.ok(typed instanceof OrderCreated);
  assert.equal((typed as ScopedEvent).scope, EventScope.PROCESS);
  const batch = await parseRequest(
    toHttpRequest([order, new CloudEvent({ id: "x", type: "t", source: "/s" })], URL_),
  );
  assert.deepEqual(batch.map((event) => event.id), [order.id, "x"]);
});

Deno.test("parseRequest rejects with HttpRequestError carrying the receiver's answer", async () => {
  const cases: [Request, number, ParseRequestOptions?][] = [
    [post({ ...binaryHeaders, "ce-time": "yesterday" }), 400],
    [new Request(URL_, { method: "PUT" }), 405],
    [post({ "content-type": STRUCTURED, "content-length": "100" }, "x".repeat(100)), 413, {
      maxBodyBytes: 10,
    }],
    [post({ "content-type": "text/plain" }, "hi"), 415],
    [post(binaryHeaders), 415, { modes: ["structured"] }],
  ];
  for (const [request, status, options] of cases) {
    const error = await parseRequest(request, options).then(
      () => assert.fail(`resolved for ${status}`),
      (e) => e,
    );
    assert.ok(error instanceof HttpRequestError, String(error));
    assert.ok(error instanceof EventBusError);
    assert.equal(error.code, "HTTP_REQUEST");
    assert.equal(error.status, status);
    assert.equal(error.problem.status, status);
    const response = error.toResponse();
    const body = await problem(response, status);
    assert.deepEqual(body, error.problem);
    if (status === 400) assert.deepEqual(paths(body), ["time"]);
    if (status === 405) assert.equal(response.headers.get("allow"), "POST");
  }
  await assert.rejects(parseRequest("not a request" as never), InvalidArgumentError);
  await assert.rejects(
    parseRequest(post(binaryHeaders), { maxBodyBytes: -1 }),
    InvalidArgumentError,
  );
});

Deno.test("toHttpRequest batch mode: an array of events as application/cloudevents-batch+json", async () => {
  const events = ["1", "2"].map((id) => new CloudEvent({ id, type: "t.batch", source: "/s" }));
  const request = toHttpRequest(events, URL_, { mode: "batch" });
  assert.equal(request.headers.get("content-type"), `${BATCH}; charset=utf-8`);
  assert.deepEqual(CloudEvent.batchFromJSON(await request.text()).map((e) => e.id), ["1", "2"]);
  // An array defaults to batch mode; one event in batch mode is a batch of one.
  assert.equal(toHttpRequest(events, URL_).headers.get("content-type"), `${BATCH}; charset=utf-8`);
  const one = toHttpRequest(events[0], URL_, { mode: "batch" });
  assert.equal(CloudEvent.batchFromJSON(await one.text()).length, 1);
  assert.throws(() => toHttpRequest(events, URL_, { mode: "binary" }), InvalidArgumentError);
  assert.throws(() => toHttpRequest([], URL_, { mode: "batch" }), InvalidArgumentError);
  assert.throws(
    () => toHttpRequest([events[0], { id: "x" } as never], URL_),
    (error: unknown) => error instanceof InvalidArgumentError && error.argument === "events[1]",
  );
});

Deno.test("sendBatch delivers a batch to a receiver behind Deno.serve, retrying a 503 first", async () => {
  const bus = recorder();
  const receive = createReceiver({ bus });
  let calls = 0;
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    async (request) => {
      if (++calls === 1) {
        await request.body?.cancel();
        return new Response("busy", { status: 503 });
      }
      return await receive(request);
    },
  );
  try {
    const url = `http://127.0.0.1:${server.addr.port}/events`;
    const events = ["1", "2", "3"].map((id) => new CloudEvent({ id, type: "t.out", source: "/s" }));
    const result = await sendBatch(events, url, { retryDelay: 1, logger: silentLogger });
    assert.deepEqual(result, { status: 202, attempts: 2 });
    assert.deepEqual(bus.events.map((event) => event.id), ["1", "2", "3"]);

    const invalid = [
      new CloudEvent({
        id: "4",
        type: "t.out",
        source: "/s",
        datacontenttype: "text/plain",
        data: "x",
      }),
    ];
    // The receiver refuses nothing here: a 4xx comes from a sink that does.
    const refusing = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (r) => {
      await r.body?.cancel();
      return new Response(null, { status: 422 });
    });
    try {
      const error = await sendBatch(invalid, `http://127.0.0.1:${refusing.addr.port}/`, {
        retryDelay: 1,
      }).then(() => assert.fail("resolved"), (e) => e);
      assert.ok(error instanceof HttpDeliveryError);
      assert.equal(error.status, 422);
      assert.equal(error.attempts, 1);
      assert.equal(error.retryable, false);
    } finally {
      await refusing.shutdown();
    }
  } finally {
    await server.shutdown();
  }
  await assert.rejects(sendBatch([], URL_), InvalidArgumentError);
  await assert.rejects(sendBatch("x" as never, URL_), InvalidArgumentError);
  await assert.rejects(
    sendBatch([new CloudEvent({ type: "t", source: "/s" })], URL_, { mode: "binary" } as never),
    InvalidArgumentError,
  );
});

Deno.test("the HTTP binding loads no CloudEvents SDK at run time", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "http.ts"],
    cwd: new URL("../", import.meta.url).pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  const info = JSON.parse(new TextDecoder().decode(output.stdout)) as {
    modules: { specifier: string }[];
  };
  const specifiers = info.modules.map((module) => module.specifier);
  assert.ok(specifiers.some((s) => s.endsWith("/http.ts")), "http.ts itself is in the graph");
  assert.deepEqual(specifiers.filter((s) => s.includes("cloudevents")), []);
  assert.deepEqual(
    specifiers.filter((s) => s.startsWith("npm:")).map((s) => s.replace(/@[^@/]*$/, "")),
    ["npm:/zod"],
  );
});

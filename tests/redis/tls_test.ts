/**
 * RedisBroker over TLS (`rediss://`), against a private `redis-server` with a
 * TLS port and certificates made by openssl at test time: both modes,
 * request/reply and blocking reads work with the CA given in `redis.tls`,
 * every connection the broker opens is a TLS one, an untrusted server
 * certificate makes `start()` reject with a `BrokerError` that names the
 * problem (password masked), a missing client certificate makes it reject
 * (without the process dying of the refused socket's later errors), and a
 * client certificate is accepted when the server asks for one.
 */

import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { BrokerError, type Logger, silentLogger } from "../../mod.ts";
import { RedisBroker, type RedisBrokerOptions } from "../../redis.ts";
import {
  adminClient,
  clientList,
  deferred,
  stopAll,
  waitUntil,
  withDeadline,
} from "./_fault_util.ts";
import { TlsRedisServer } from "./_tls.ts";

const DEADLINE = 20_000;
const CONNECT_TIMEOUT_MS = 5_000;
/** Longer than `connectTimeout`: a `start()` still pending then has hung. */
const START_DEADLINE_MS = CONNECT_TIMEOUT_MS + 10_000;

const FAST: RedisBrokerOptions = {
  logger: silentLogger,
  blockMs: 200,
  connectTimeout: CONNECT_TIMEOUT_MS,
};

function wait<T>(promise: Promise<T>, what: string): Promise<T> {
  return withDeadline(promise, DEADLINE, what);
}

function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const record = (message: string, ...details: unknown[]) =>
    lines.push([message, ...details.map(String)].join(" "));
  return { lines, debug: record, info: record, warn: record, error: record };
}

/** Local port of a `CLIENT LIST` record (`laddr=127.0.0.1:<port>`). */
function localPort(client: Record<string, string>): number {
  return Number(client.laddr.slice(client.laddr.lastIndexOf(":") + 1));
}

/** The server's connections other than `admin`'s own. */
async function brokerConnections(admin: Redis): Promise<Record<string, string>[]> {
  const own = String(await admin.client("ID"));
  return (await clientList(admin)).filter((client) => client.id !== own);
}

/** Asserts that every connection but the admin's came in on the TLS port. */
async function assertAllOverTls(admin: Redis, server: TlsRedisServer): Promise<void> {
  const connections = await brokerConnections(admin);
  assert.ok(connections.length > 0, "the broker has connections");
  const plain = connections.filter((client) => localPort(client) !== server.tlsPort);
  assert.deepEqual(
    plain.map((client) => `${client.laddr} ${client.cmd}`),
    [],
    "no broker connection on the plain port",
  );
}

Deno.test("tls stream mode: publish/subscribe, a blocking read and request/reply over rediss:// with the CA", async () => {
  await using server = await TlsRedisServer.start();
  const admin = await adminClient(server.plainUrl());
  const broker = new RedisBroker({
    ...FAST,
    url: server.tlsUrl(),
    redis: { tls: { ca: [server.tls.ca] } },
  });
  try {
    const received = deferred<unknown>();
    broker.subscribe("orders", (message: unknown) => received.resolve(message), { name: "book" });
    broker.subscribe("double", (n: number) => n * 2, { name: "doubler" });
    await wait(broker.start(), "start over TLS");

    // Publish only once the read blocks, so the message wakes a blocking read made over TLS.
    await waitUntil(
      async () =>
        (await brokerConnections(admin)).filter((client) => client.cmd === "xreadgroup").length ===
          2,
      DEADLINE,
      "both subscriptions block in XREADGROUP",
    );
    await wait(broker.publish({ order: 1 }, "orders"), "publish");
    assert.deepEqual(await wait(received.promise, "the handler gets the message"), { order: 1 });
    assert.equal(await wait(broker.request(21, "double", { timeout: DEADLINE }), "reply"), 42);

    const connections = await brokerConnections(admin);
    const blocked = connections.filter((client) => client.cmd === "xreadgroup");
    assert.equal(blocked.length, 2, "one blocking connection per subscription");
    assert.ok(
      connections.some((client) => Number(client["sub"] ?? 0) + Number(client["ssub"] ?? 0) > 0),
      "the reply subscription is open",
    );
    await assertAllOverTls(admin, server);
  } finally {
    await stopAll([broker]);
    admin.disconnect();
  }
});

Deno.test("tls pub/sub mode: publish/subscribe and request/reply over rediss:// with the CA", async () => {
  await using server = await TlsRedisServer.start();
  const admin = await adminClient(server.plainUrl());
  const broker = new RedisBroker({
    ...FAST,
    mode: "pubsub",
    url: server.tlsUrl(),
    redis: { tls: { ca: [server.tls.ca] } },
  });
  try {
    const received = deferred<unknown>();
    broker.subscribe("prices", (message: unknown) => received.resolve(message), { name: "tick" });
    broker.subscribe("double", (n: number) => n * 2, { name: "doubler" });
    await wait(broker.start(), "start over TLS");
    await wait(broker.publish({ price: 7 }, "prices"), "publish");
    assert.deepEqual(await wait(received.promise, "the handler gets the message"), { price: 7 });
    assert.equal(await wait(broker.request(4, "double", { timeout: DEADLINE }), "reply"), 8);
    await assertAllOverTls(admin, server);
  } finally {
    await stopAll([broker]);
    admin.disconnect();
  }
});

Deno.test("tls: an untrusted server certificate rejects start() with a BrokerError naming it, password masked", async () => {
  const secret = "Tls-s3cret-pw";
  await using server = await TlsRedisServer.start({ args: ["--requirepass", secret] });
  const logger = recordingLogger();
  // No CA given: the test CA is not among the trusted ones.
  const broker = new RedisBroker({ ...FAST, logger, url: server.tlsUrl(secret) });
  const error = await withDeadline(
    broker.start().then(() => undefined, (error: unknown) => error),
    START_DEADLINE_MS,
    "start() settles",
  );
  assert.ok(error instanceof BrokerError, `start() rejected with ${String(error)}`);
  assert.match(error.message, /certificate/i);
  assert.doesNotMatch(error.message, /no connection within/, "failed on the TLS error, not late");
  assert.ok(error.message.includes(`rediss://:***@127.0.0.1:${server.tlsPort}`), error.message);
  assert.ok(!error.message.includes(secret), error.message);
  assert.ok(!String((error.cause as Error | undefined)?.message).includes(secret));
  assert.ok(logger.lines.every((line) => !line.includes(secret)), logger.lines.join("\n"));
  await stopAll([broker]);
});

/** Starts refused for want of a client certificate; a refused socket's second error shows within a few. */
const REFUSED_STARTS = 10;

Deno.test("tls client certificates: start() rejects without one, works with cert and key", async () => {
  await using server = await TlsRedisServer.start({ requireClientCert: true });
  const admin = await adminClient(server.plainUrl());
  const refused: RedisBroker[] = [];
  const withCert = new RedisBroker({
    ...FAST,
    url: server.tlsUrl(),
    redis: { tls: { ca: [server.tls.ca], cert: server.tls.clientCert, key: server.tls.clientKey } },
  });
  try {
    // A refused socket can fail once more after the error that rejects start() (a write
    // meeting the closed socket); unheard, that error would end the process and this test.
    for (let attempt = 0; attempt < REFUSED_STARTS; attempt++) {
      const withoutCert = new RedisBroker({
        ...FAST,
        url: server.tlsUrl(),
        redis: { tls: { ca: [server.tls.ca] } },
      });
      refused.push(withoutCert);
      const error = await withDeadline(
        withoutCert.start().then(() => undefined, (error: unknown) => error),
        START_DEADLINE_MS,
        "start() without a client certificate settles",
      );
      assert.ok(error instanceof BrokerError, `start() rejected with ${String(error)}`);
      // The reason is the server's alert (CertificateRequired), or, when the client's first
      // write meets the closed socket before it reads the alert, EPIPE: the TLS stack decides.
      assert.ok(
        error.message.startsWith(
          `cannot connect the redis command connection to ${server.tlsUrl()}:`,
        ),
        error.message,
      );
      assert.doesNotMatch(error.message, /no connection within/, "failed on the refusal");
    }

    const received = deferred<unknown>();
    withCert.subscribe("orders", (message: unknown) => received.resolve(message), { name: "book" });
    await wait(withCert.start(), "start with a client certificate");
    await wait(withCert.publish({ order: 2 }, "orders"), "publish");
    assert.deepEqual(await wait(received.promise, "the handler gets the message"), { order: 2 });
    await assertAllOverTls(admin, server);
  } finally {
    await stopAll([...refused, withCert]);
    admin.disconnect();
  }
});

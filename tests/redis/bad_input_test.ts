/**
 * Bad input: oversize events, a wrong URL, a wrong password and invalid
 * options all end in a clear typed error, promptly, without leaking a
 * connection or a timer (Deno's test sanitizers fail the test on a leak) and
 * without ever echoing a password.
 */

import assert from "node:assert/strict";
import { streamKey } from "../../src/redis/keys.ts";
import { RedisBroker } from "../../redis.ts";
import {
  BrokerError,
  CloudEvent,
  InvalidArgumentError,
  type Logger,
  NotStartedError,
  silentLogger,
} from "../../mod.ts";
import { freePort, RedisServer } from "./_redis_server.ts";
import { adminClient, deleteKeys, uniquePrefix, withDeadline } from "./_fault_util.ts";

const CHANNEL = "inbox";

/** A logger that keeps every line, details included, as text. */
function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const record = (message: string, ...details: unknown[]) => {
    lines.push([message, ...details.map(describe)].join(" "));
  };
  return { lines, debug: record, info: record, warn: record, error: record };
}

/** Everything an error exposes: message, stack, own fields and its causes. */
function describe(value: unknown, depth = 0): string {
  if (depth > 5) return "";
  if (value instanceof Error) {
    const fields = Object.entries(value).map(([k, v]) => `${k}=${describe(v, depth + 1)}`);
    return [String(value), value.stack ?? "", ...fields, describe(value.cause, depth + 1)].join(
      "\n",
    );
  }
  try {
    return typeof value === "string" ? value : JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

Deno.test("bad input: an oversize event is rejected with InvalidArgumentError and nothing is written", async () => {
  const keyPrefix = uniquePrefix("oversize");
  const admin = await adminClient();
  const handled: unknown[] = [];
  const broker = new RedisBroker({ keyPrefix, maxMessageBytes: 512, logger: silentLogger });
  broker.subscribe(CHANNEL, (message) => {
    handled.push(message);
  }, { name: "reader" });
  const stream = streamKey(keyPrefix, CHANNEL);
  try {
    await broker.start();
    await assert.rejects(broker.publish("x".repeat(2_000), CHANNEL), InvalidArgumentError);
    await assert.rejects(
      broker.publish(
        new CloudEvent({ type: "big", source: "/t", data: { blob: "y".repeat(2_000) } }),
        CHANNEL,
      ),
      InvalidArgumentError,
    );
    await assert.rejects(
      broker.publish("small", CHANNEL, { headers: { "x-padding": "z".repeat(2_000) } }),
      InvalidArgumentError,
      "headers count toward the size",
    );
    assert.equal(await admin.xlen(stream), 0, "nothing written");
    assert.equal(broker.stats().published, 0);
    // The limit is a limit, not a wall: a small event still goes through.
    await broker.publish("small", CHANNEL);
    assert.equal(await admin.xlen(stream), 1);
  } finally {
    await broker.stop();
    await deleteKeys(admin, keyPrefix);
    admin.disconnect();
  }
});

Deno.test("bad input: an oversize event in pub/sub mode is rejected with InvalidArgumentError", async () => {
  const broker = new RedisBroker({
    keyPrefix: uniquePrefix("oversize-pubsub"),
    mode: "pubsub",
    maxMessageBytes: 512,
    logger: silentLogger,
  });
  try {
    await broker.start();
    await assert.rejects(broker.publish("x".repeat(2_000), CHANNEL), InvalidArgumentError);
    assert.equal(broker.stats().published, 0);
  } finally {
    await broker.stop();
  }
});

Deno.test("bad input: nothing listening on the URL -> start() rejects with BrokerError, no hang, no leak", async () => {
  const port = freePort();
  const logger = recordingLogger();
  const broker = new RedisBroker({
    url: `redis://127.0.0.1:${port}`,
    connectTimeout: 500,
    publishTimeout: 500,
    logger,
  });
  broker.subscribe(CHANNEL, function reader() {});
  const [outcome] = await withDeadline(
    Promise.allSettled([broker.start()]),
    10_000,
    "start() against a dead port",
  );
  assert.equal(outcome.status, "rejected");
  const error = (outcome as PromiseRejectedResult).reason;
  assert.ok(error instanceof BrokerError, `expected BrokerError, got ${describe(error)}`);
  assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${port}`), "the error names the address");
  await assert.rejects(broker.publish("x", CHANNEL), NotStartedError);
  await withDeadline(broker.stop(), 5_000, "stop() after a failed start");
});

Deno.test("bad input: a server that accepts but never answers -> start() rejects with BrokerError after connectTimeout", async () => {
  // A TCP listener that takes connections and says nothing: only connectTimeout can end the wait.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted: Deno.Conn[] = [];
  const accepting = (async () => {
    try {
      for await (const conn of listener) accepted.push(conn);
    } catch {
      // listener closed
    }
  })();
  const { port } = listener.addr as Deno.NetAddr;
  const broker = new RedisBroker({
    url: `redis://127.0.0.1:${port}`,
    connectTimeout: 300,
    logger: silentLogger,
  });
  broker.subscribe(CHANNEL, function reader() {});
  try {
    const [outcome] = await withDeadline(
      Promise.allSettled([broker.start()]),
      10_000,
      "start() against a silent server",
    );
    assert.equal(outcome.status, "rejected");
    const error = (outcome as PromiseRejectedResult).reason;
    assert.ok(error instanceof BrokerError, `expected BrokerError, got ${describe(error)}`);
    assert.match(error.message, /300 ms|timed? ?out/i, "the error says the connection timed out");
    assert.ok(accepted.length >= 1, "the broker did try the server");
    await withDeadline(broker.stop(), 5_000, "stop() after a failed start");
  } finally {
    listener.close();
    await accepting;
    for (const conn of accepted) {
      try {
        conn.close();
      } catch {
        // closed by the client already
      }
    }
  }
});

Deno.test("bad input: a wrong password -> clear error that never shows the password", async () => {
  const correct = "correct-Horse-battery-77";
  const wrong = "wr0ng-Pa55word-zebra";
  await using server = await RedisServer.start({ args: ["--requirepass", correct] });
  const attempts: { label: string; options: ConstructorParameters<typeof RedisBroker>[0] }[] = [
    { label: "password in the URL", options: { url: server.url(wrong) } },
    {
      label: "password in the ioredis options",
      options: { url: server.url(), redis: { password: wrong } },
    },
  ];
  for (const { label, options } of attempts) {
    const logger = recordingLogger();
    const broker = new RedisBroker({ ...options, connectTimeout: 2_000, logger });
    broker.subscribe(CHANNEL, function reader() {});
    const [outcome] = await withDeadline(
      Promise.allSettled([broker.start()]),
      10_000,
      `start() with a ${label}`,
    );
    assert.equal(outcome.status, "rejected", label);
    const error = (outcome as PromiseRejectedResult).reason;
    assert.ok(
      error instanceof BrokerError,
      `${label}: expected BrokerError, got ${describe(error)}`,
    );
    assert.match(
      error.message,
      /WRONGPASS|auth|password/i,
      `${label}: the error says what is wrong`,
    );
    const exposed = [describe(error), ...logger.lines, JSON.stringify(broker.stats())].join("\n");
    assert.ok(!exposed.includes(wrong), `${label}: the password leaks:\n${exposed}`);
    await withDeadline(broker.stop(), 5_000, "stop() after a failed start");
  }

  // Without any password the server says so, clearly too.
  const anonymous = new RedisBroker({
    url: server.url(),
    connectTimeout: 2_000,
    logger: silentLogger,
  });
  await assert.rejects(anonymous.start(), (error: unknown) => {
    assert.ok(error instanceof BrokerError);
    assert.match(error.message, /NOAUTH|auth|password/i);
    return true;
  });
  await anonymous.stop();

  // The same setup with the right password works: the failures above are the password's.
  const logger = recordingLogger();
  const broker = new RedisBroker({ url: server.url(correct), logger });
  try {
    await broker.start();
    await broker.publish("hello", CHANNEL);
    assert.ok(!JSON.stringify(broker.stats()).includes(correct));
  } finally {
    await broker.stop();
  }
  assert.ok(!logger.lines.join("\n").includes(correct));
});

Deno.test("bad input: invalid options -> InvalidArgumentError naming the option", () => {
  const invalid: [string, Record<string, unknown>][] = [
    ["mode", { mode: "queue" }],
    ["delivery", { delivery: "fanout" }],
    ["maxDeliveries", { maxDeliveries: 0 }],
    ["maxDeliveries", { maxDeliveries: 2.5 }],
    ["claimIdleMs", { claimIdleMs: -1 }],
    ["blockMs", { blockMs: -5 }],
    ["batchSize", { batchSize: 0 }],
    ["maxLen", { maxLen: -1 }],
    ["maxMessageBytes", { maxMessageBytes: 0 }],
    ["publishTimeout", { publishTimeout: Number.NaN }],
    ["connectTimeout", { connectTimeout: Infinity }],
    ["url", { url: "http://127.0.0.1:6379" }],
    ["url", { url: "not a url" }],
    ["url", { url: 6379 }],
    ["keyPrefix", { keyPrefix: 5 }],
    ["group", { group: "" }],
    ["consumer", { consumer: "has space" }],
    ["retryBackoff.factor", { retryBackoff: { factor: 0.5 } }],
    ["redis", { redis: "password=x" }],
  ];
  for (const [argument, options] of invalid) {
    assert.throws(
      () => new RedisBroker({ logger: silentLogger, ...options }),
      (error: unknown) => {
        assert.ok(
          error instanceof InvalidArgumentError,
          `${JSON.stringify(options)}: ${describe(error)}`,
        );
        assert.equal(error.argument, argument, JSON.stringify(options));
        return true;
      },
    );
  }
  // An invalid URL is quoted without its password.
  assert.throws(
    () => new RedisBroker({ url: "http://user:top-secret-pw@cache:6379" }),
    (error: unknown) =>
      error instanceof InvalidArgumentError && !error.message.includes("top-secret-pw"),
  );
});

Deno.test("bad input: an anonymous handler without a name, or a bad channel -> InvalidArgumentError", () => {
  const broker = new RedisBroker({ logger: silentLogger });
  assert.throws(
    () => broker.subscribe(CHANNEL, () => {}),
    (error: unknown) => error instanceof InvalidArgumentError && /name/.test(error.message),
  );
  assert.throws(() => broker.subscribe("", function reader() {}), InvalidArgumentError);
  assert.throws(() => broker.subscribe("has space", function reader() {}), InvalidArgumentError);
});

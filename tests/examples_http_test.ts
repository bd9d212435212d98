/**
 * The HTTP examples run as subprocesses, as a user would run them: each smoke
 * run serves on port 0, sends its own requests and must exit 0 by itself with
 * the expected output; example 15 also stops gracefully on SIGTERM.
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { withDeadline } from "./_deferred.ts";
import { runExample } from "./_run_example.ts";

const root = fileURLToPath(new URL("../", import.meta.url));

async function runSmoke(example: string, env: Record<string, string> = {}): Promise<string> {
  const { code, stdout, stderr } = await runExample(example, { args: ["--smoke"], env });
  assert.equal(code, 0, `${example} exited ${code}\n${stdout}\n${stderr}`);
  return stdout;
}

function assertLines(stdout: string, expected: (string | RegExp)[]): void {
  for (const line of expected) {
    if (typeof line === "string") {
      assert.ok(stdout.includes(line), `missing "${line}" in:\n${stdout}`);
    } else assert.match(stdout, line);
  }
}

Deno.test("example 07: broker bound to Deno.serve, POST /orders publishes", async () => {
  const stdout = await runSmoke("07_http_integration.ts");
  assertLines(stdout, [
    /listening on http:\/\/127\.0\.0\.1:\d+/,
    'order created: {"orderId":"ORD-001","amount":99.99}',
    'POST /orders -> 200 {"status":"ok"}',
    "POST /orders (bad body) -> 400",
    "broker stopped",
  ]);
});

Deno.test("example 15: bus with module-level handlers behind HTTP endpoints", async () => {
  const stdout = await runSmoke("15_http_eventbus_integration.ts", { REDIS_URL: "" });
  assertLines(stdout, [
    "REDIS_URL not set: the APP scope uses an in-memory broker",
    "event bus started",
    /POST \/events\/process -> 200 \{"success":true,"event_id":"[0-9a-f-]{36}","event_type":"order\.created","scope":"process"/,
    /POST \/events\/app -> 200 \{"success":true,"event_id":"[0-9a-f-]{36}","event_type":"notification\.sent","scope":"app"/,
    'POST /events/process -> 400 {"success":false',
    '"path":"data.amount"',
    'GET /events/handlers -> 200 {"total_event_types":2,"handlers":{"order.created":[{"name":"handleOrderCreated","scope":"process"}],"notification.sent":[{"name":"handleNotification","scope":"app"}]}}',
    /POST \/events \(binary CloudEvent\) -> 202 \{"accepted":1/,
    "order ORD-001 processed",
    "notification sent via email",
    "order ORD-003 processed",
    "handled 3 events",
    "event bus stopped",
  ]);
});

Deno.test("example 15 with REDIS_URL: the APP scope goes through Redis streams", async () => {
  const prefix = `test-example15-${crypto.randomUUID()}:`;
  const redis = new Redis("redis://127.0.0.1:6379", { lazyConnect: true });
  await redis.connect();
  try {
    const stdout = await runSmoke("15_http_eventbus_integration.ts", {
      REDIS_URL: "redis://127.0.0.1:6379",
      REDIS_KEY_PREFIX: prefix,
    });
    assert.ok(!stdout.includes("REDIS_URL not set"), stdout);
    assertLines(stdout, ["notification sent via email", "handled 3 events", "event bus stopped"]);
    const keys = await redis.keys(`${prefix}*`);
    assert.ok(keys.some((key) => key.includes("notification.sent")), `keys: ${keys.join(", ")}`);
  } finally {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  }
});

Deno.test("example 15: SIGTERM stops the server and the bus, and the process exits 0", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "examples/15_http_eventbus_integration.ts"],
    cwd: root,
    env: { PORT: "0", REDIS_URL: "" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let stdout = "";
  const port = await withDeadline(
    (async () => {
      while (true) {
        const { value, done } = await lines.read();
        if (done) throw new Error(`exited before listening:\n${stdout}\n${await stderr}`);
        stdout += value;
        const match = stdout.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
        if (match) return Number(match[1]);
      }
    })(),
    30_000,
    "example 15 listening",
  );
  const response = await fetch(`http://127.0.0.1:${port}/events/process`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ orderId: "SIG-1", customerId: "C", amount: 1 }),
  });
  assert.equal(response.status, 200);
  await response.body?.cancel();
  child.kill("SIGTERM");
  while (true) {
    const { value, done } = await lines.read();
    if (done) break;
    stdout += value;
  }
  const status = await child.status;
  assert.equal(status.code, 0, `${stdout}\n${await stderr}`);
  assertLines(stdout, ["order SIG-1 processed", "signal received: stopping", "event bus stopped"]);
});

Deno.test("example 19: Hono app with the CloudEvents route", async () => {
  const stdout = await runSmoke("19_hono_integration.ts");
  assertLines(stdout, [
    /POST \/signups -> 201 \{"success":true,"event_id":"[0-9a-f-]{36}"\}/,
    'POST /signups (bad email) -> 400 {"success":false,"issues":[{"path":"data.email"',
    /POST \/webhooks\/cloudevents \(structured\) -> 202 \{"accepted":1/,
    /POST \/webhooks\/cloudevents \(unknown type\) -> 400 .*"path":"type"/,
    'POST /imports (batch) -> 201 {"imported":1,"skipped":1}',
    /POST \/imports \(bad email\) -> 400 .*"path":"\[0\]\.data\.email"/,
    'GET /handlers -> 200 {"user.signed_up":[{"name":"sendWelcomeMail","scope":"app"}]}',
    "welcomed: ada@example.com, grace@example.com, linus@example.com",
    "bus stopped",
  ]);
});

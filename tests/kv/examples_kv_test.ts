/**
 * Example 23 (a Deno Deploy app on KvBroker) runs as a subprocess, as a user
 * would run it: the smoke run serves on port 0 with an in-memory database,
 * sends its own requests and must exit 0 by itself with the expected output.
 */

import assert from "node:assert/strict";
import { runExample } from "../_run_example.ts";

Deno.test("example 23: a Deno.serve app with process events in memory and app events on KV", async () => {
  const { code, stdout, stderr } = await runExample("23_deno_deploy.ts", { args: ["--smoke"] });
  assert.equal(code, 0, `exited ${code}\n${stdout}\n${stderr}`);
  const expected: (string | RegExp)[] = [
    /listening on http:\/\/[\d.]+:\d+/,
    /POST \/orders -> 202 \{"accepted":true,"event_id":"[0-9a-f-]{36}"\}/,
    'POST /orders (bad amount) -> 400 {"accepted":false,"issues":[{"path":"data.amount"',
    "receipt stored for A1",
    /GET \/orders\/A1 -> 200 \{"orderId":"A1","amount":12\.5,"event":"[0-9a-f-]{36}","attempt":1\}/,
    'GET /stats -> 200 {"pageViews":4,"app":{"published":1,"consumed":1,"deadLettered":0}}',
    "bus stopped",
  ];
  for (const line of expected) {
    if (typeof line === "string") {
      assert.ok(stdout.includes(line), `missing "${line}" in:\n${stdout}`);
    } else assert.match(stdout, line);
  }
});

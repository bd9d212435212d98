import assert from "node:assert/strict";
import { runExample } from "../_run_example.ts";
import { RedisCluster } from "./_redis_cluster.ts";

Deno.test("example 10_eventbus_scopes: an app event reaches both services, a process event stays", async () => {
  const run = await runExample("10_eventbus_scopes.ts", { check: true });
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /\[billing\] own cache warmed: 128 entries/);
  assert.match(run.stdout, /\[billing\] opening an account for U-7/);
  assert.match(run.stdout, /\[mailer\] sending a welcome mail to ada@example.com/);
  assert.doesNotMatch(run.stdout, /this never prints/);
});

Deno.test("example 18_crash_recovery: every order of the crashed worker is shipped by the other", async () => {
  const run = await runExample("18_crash_recovery.ts", { check: true });
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /worker A: crashes before acknowledging anything/);
  // Attempts count handler starts. Worker A's starts are written once its handlers yield; when
  // all three orders arrive in one read, ORD-3's handler ends the process before they are.
  for (const order of ["ORD-1", "ORD-2", "ORD-3"]) {
    assert.match(run.stdout, new RegExp(`worker B: shipped ${order} \\(delivery attempt [12]\\)`));
  }
  assert.match(run.stdout, /recovered 3 of 3 orders after the crash: nothing lost/);
});

Deno.test("example 24_redis_cluster: three channels on a cluster, each publish held by a replica", async () => {
  await using cluster = await RedisCluster.start();
  const run = await runExample("24_redis_cluster.ts", {
    check: true,
    env: { REDIS_CLUSTER: cluster.urls().join(",") },
  });
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /published 300 events, each held by a replica/);
  for (const channel of ["orders", "payments", "shipments"]) {
    assert.match(run.stdout, new RegExp(`${channel}: handled 100\\b`));
  }
  assert.match(run.stdout, /the channels spread over [23] masters/);
});

/**
 * The shared timers every wait of the Redis broker goes through: `delay`
 * ends early (without rejecting) when its signal aborts, `deadline` settles
 * with the promise or with the timeout's value, and neither leaves a timer
 * behind (Deno's test sanitizers would fail the test otherwise).
 */

import assert from "node:assert/strict";
import { deadline, delay } from "../../src/timers.ts";

Deno.test("timers: delay resolves true after its time, false at once when its signal aborts", async () => {
  assert.equal(await delay(1), true);
  const controller = new AbortController();
  const waiting = delay(60_000, controller.signal);
  controller.abort(new Error("stop"));
  assert.equal(await waiting, false);
  assert.equal(await delay(60_000, controller.signal), false, "an aborted signal ends it at once");
});

Deno.test("timers: deadline settles with the promise, the timeout's value, or what the timeout throws", async () => {
  assert.equal(await deadline(Promise.resolve("done"), 60_000, () => "late"), "done");
  await assert.rejects(deadline(Promise.reject(new Error("boom")), 60_000, () => "late"), /boom/);
  const never = new Promise<string>(() => {});
  assert.equal(await deadline(never, 1, () => "gave up"), "gave up");
  await assert.rejects(
    deadline(never, 1, () => {
      throw new Error("too slow");
    }),
    /too slow/,
  );
  // A rejection after the timeout is swallowed: it cannot surface as unhandled.
  let reject!: (error: Error) => void;
  const late = new Promise<string>((_, r) => (reject = r));
  assert.equal(await deadline(late, 1, () => "gave up"), "gave up");
  reject(new Error("late failure"));
  await Promise.resolve();
});

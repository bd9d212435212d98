/**
 * The public surface of `@opensecflow/eventbus/redis`: the broker class and
 * nothing else at run time (its option, stats and dead-letter types are
 * type-only; the broker types live in the main module).
 */

import assert from "node:assert/strict";
import * as redis from "../../redis.ts";

Deno.test("exports: ./redis exports exactly RedisBroker at run time", () => {
  assert.deepEqual(Object.keys(redis), ["RedisBroker"]);
  assert.equal(typeof redis.RedisBroker, "function");
});

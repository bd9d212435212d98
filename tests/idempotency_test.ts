import assert from "node:assert/strict";
import { InvalidArgumentError } from "../mod.ts";
import { checkIdempotent, DEFAULT_IDEMPOTENCY_TTL, RememberedKeys } from "../src/idempotency.ts";

Deno.test("idempotency: keys expire after their ttl and the oldest go first past the bound", () => {
  const seen = new RememberedKeys(1_000, 3);
  seen.add("a", 0);
  seen.add("b", 10);
  assert.ok(seen.has("a", 999));
  assert.ok(!seen.has("a", 1_000), "expired at its ttl");
  seen.add("c", 20);
  seen.add("d", 30);
  assert.equal(seen.size, 3, "bounded");
  assert.ok(!seen.has("a", 30), "the oldest was forgotten");
  assert.ok(seen.has("d", 30));
  seen.add("e", 5_000);
  assert.equal(seen.size, 1, "expired keys are swept when a key is added");
});

Deno.test("idempotency: the option is true, false or { ttl }, anything else is refused", () => {
  assert.equal(checkIdempotent(undefined), undefined);
  assert.equal(checkIdempotent(false), undefined);
  assert.equal(checkIdempotent(true), DEFAULT_IDEMPOTENCY_TTL);
  assert.equal(checkIdempotent({ ttl: 50 }), 50);
  assert.throws(() => checkIdempotent({ ttl: -1 }), InvalidArgumentError);
  assert.throws(() => checkIdempotent("yes"), InvalidArgumentError);
});

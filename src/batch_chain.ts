/**
 * A batch through the publish middleware. Each event runs its own chain of
 * `publish` hooks, as a single publish would; the chains meet where they
 * would reach the broker. Once every chain got there, the whole batch is
 * written at once and each chain's `next()` settles with the result; when a
 * hook refused one event (threw, or returned without `next()`), nothing is
 * written and every waiting `next()` rejects with that refusal.
 *
 * @module
 */

import type { CloudEvent } from "./event.ts";
import type { PublishCall } from "./middleware.ts";
import type { MiddlewareChain } from "./middleware_chain.ts";

/**
 * Runs `calls` through `chain` and, unless a hook refuses one, hands the
 * calls the chains end with (replacements included) to `write`, in order.
 * Rejects with the refusal of the first refused call, else with the first
 * chain's failure (`write`'s error, unless a hook turned it into another).
 */
export async function publishBatchThrough(
  chain: MiddlewareChain<PublishCall, void, CloudEvent>,
  calls: readonly PublishCall[],
  write: (finals: readonly PublishCall[]) => Promise<void>,
): Promise<void> {
  const finals: PublishCall[] = new Array(calls.length);
  /** Whether each chain reached the write or failed before it. */
  const settled: boolean[] = new Array(calls.length).fill(false);
  const refusals: { index: number; error: unknown }[] = [];
  const written = Promise.withResolvers<void>();
  // A chain may already have given up waiting: nobody else must see this rejection.
  written.promise.catch(() => {});
  const arrived = Promise.withResolvers<void>();
  let waiting = calls.length;
  const arrive = (index: number): boolean => {
    if (settled[index]) return false;
    settled[index] = true;
    if (--waiting === 0) arrived.resolve();
    return true;
  };
  const chains = calls.map((call, index) => {
    const run = chain.run(call, (final: PublishCall) => {
      // A chain counted as refused that calls next() late is not written.
      if (arrive(index)) finals[index] = final;
      return written.promise;
    }, undefined);
    run.catch((error: unknown) => {
      if (arrive(index)) refusals.push({ index, error });
    });
    return run;
  });
  await arrived.promise;
  if (refusals.length > 0) {
    const first = refusals.reduce((a, b) => (b.index < a.index ? b : a));
    written.reject(first.error);
    await Promise.allSettled(chains);
    throw first.error;
  }
  try {
    await write(finals);
    written.resolve();
  } catch (error) {
    written.reject(error);
  }
  for (const result of await Promise.allSettled(chains)) {
    if (result.status === "rejected") throw result.reason;
  }
}

/**
 * The two timer shapes the brokers need, so no module races a promise
 * against a hand-made `setTimeout` of its own:
 *
 * - {@linkcode delay}: wait some time, cut short by an `AbortSignal`;
 * - {@linkcode deadline}: wait for a promise, or give up after some time.
 *
 * Both clear their timer and remove their listener however they end, so a
 * loop calling them leaves nothing behind and no timer keeps the process
 * alive after the awaited work is done.
 *
 * @module
 */

/**
 * Resolves after `ms` milliseconds with `true`. The one abort behaviour:
 * when `signal` aborts (or has already aborted) it resolves at once with
 * `false`; it never rejects. Callers decide what an early end means by
 * checking their own state, which keeps stop paths free of
 * `AbortError` handling.
 *
 * @example
 * ```ts
 * import { delay } from "./timers.ts";
 * const controller = new AbortController();
 * const waiting = delay(60_000, controller.signal);
 * controller.abort();
 * console.assert((await waiting) === false); // cut short, not rejected
 * console.assert((await delay(1)) === true);
 * ```
 */
export function delay(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Settles like `promise` if it settles within `ms` milliseconds; otherwise
 * settles with what `onTimeout` returns (or rejects with what it throws).
 * `promise` is not cancelled: a late result is ignored, a late rejection is
 * swallowed so it cannot surface as unhandled.
 *
 * @example
 * ```ts
 * import { deadline } from "./timers.ts";
 * const never = new Promise<string>(() => {});
 * console.assert((await deadline(never, 5, () => "gave up")) === "gave up");
 * console.assert((await deadline(Promise.resolve("done"), 1_000, () => "gave up")) === "done");
 * await deadline(never, 5, () => {
 *   throw new Error("too slow");
 * }).catch((error) => console.assert(error.message === "too slow"));
 * ```
 */
export function deadline<T, U>(
  promise: Promise<T>,
  ms: number,
  onTimeout: () => U,
): Promise<T | U> {
  return new Promise<T | U>((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      try {
        resolve(onTimeout());
      } catch (error) {
        reject(error);
      }
    }, Math.max(0, ms));
    promise.then((value) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(value);
    }, (error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(error);
    });
  });
}

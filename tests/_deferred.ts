/**
 * Test helpers: promises a test can await instead of sleeping.
 *
 * @module
 */

/** A promise with its resolve/reject exposed. */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(reason: unknown): void;
}

/** Makes a {@linkcode Deferred}. */
export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * Resolves with `promise`, or rejects once `ms` have passed: a deadline that
 * fails a test that would otherwise hang. The timer never outlives the call.
 */
export async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`deadline of ${ms} ms passed: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** A counter that resolves `reached` once it has been hit `target` times. */
export function countdown(
  target: number,
): { hit(): void; readonly count: number; reached: Promise<void> } {
  const done = deferred();
  let count = 0;
  if (target === 0) done.resolve();
  return {
    hit() {
      count++;
      if (count === target) done.resolve();
    },
    get count() {
      return count;
    },
    reached: done.promise,
  };
}

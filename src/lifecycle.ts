/**
 * Serializes `start()` and `stop()` calls so the last call always decides the
 * final state: `start(); stop(); start()` ends started, and every returned
 * promise settles with the operation it asked for.
 *
 * @module
 */

type Kind = "start" | "stop";

interface Operation {
  readonly kind: Kind;
  readonly promise: Promise<void>;
  failed: boolean;
}

/**
 * Runs lifecycle operations one after another. A call of the same kind as
 * the last queued (or last completed) operation joins it instead of queueing
 * a duplicate; a failed operation is never joined, so a retry really retries.
 *
 * @example
 * ```ts
 * import { LifecycleQueue } from "./lifecycle.ts";
 * let state = "stopped";
 * const lifecycle = new LifecycleQueue();
 * const start = () => lifecycle.run("start", async () => { state = "started"; });
 * const stop = () => lifecycle.run("stop", async () => { state = "stopped"; });
 * start(); stop(); await start();
 * console.assert(state === "started");
 * ```
 */
export class LifecycleQueue {
  #tail: Promise<void> = Promise.resolve();
  #last: Operation | undefined;

  /** Queues `operation` unless an operation of the same kind is the last one and did not fail. */
  run(kind: Kind, operation: () => Promise<void>): Promise<void> {
    const last = this.#last;
    if (last !== undefined && last.kind === kind && !last.failed) return last.promise;
    const promise = this.#tail.then(operation);
    const entry: Operation = { kind, promise, failed: false };
    this.#tail = promise.catch(() => {
      entry.failed = true;
    });
    this.#last = entry;
    return promise;
  }
}

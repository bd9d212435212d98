/**
 * The one lifecycle of every broker and of the bus: `start()` and `stop()`
 * calls are serialized so the last call always decides the final state
 * (`start(); stop(); start()` ends started), every returned promise settles
 * with the operation it asked for, and each transition is dispatched as a
 * `statechange` event.
 *
 * @module
 */

import type { BrokerState } from "./broker.ts";
import { StateChangeEvent } from "./broker_events.ts";

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

/**
 * State plus serialized transitions for a component that is an
 * `EventTarget`. `start(work)` runs `work` between `starting` and `started`
 * (back to `stopped` when it throws); `stop(work)` refuses new work from the
 * moment of the call (`stopping`) and runs `work` before `stopped`.
 *
 * @example
 * ```ts
 * import { Lifecycle } from "./lifecycle.ts";
 * const lifecycle = new Lifecycle(new EventTarget());
 * lifecycle.start(async () => {}); lifecycle.stop(async () => {});
 * await lifecycle.start(async () => {});
 * console.assert(lifecycle.state === "started");
 * ```
 */
export class Lifecycle {
  #state: BrokerState = "stopped";
  readonly #queue = new LifecycleQueue();
  readonly #target: EventTarget;

  /** Creates a stopped lifecycle dispatching its transitions on `target`. */
  constructor(target: EventTarget) {
    this.#target = target;
  }

  /** Current state. */
  get state(): BrokerState {
    return this.#state;
  }

  #set(state: BrokerState): void {
    const previous = this.#state;
    if (previous === state) return;
    this.#state = state;
    this.#target.dispatchEvent(new StateChangeEvent(state, previous));
  }

  /** Starts unless started; `work` connects and starts consuming. */
  start(work: () => Promise<void> | void): Promise<void> {
    return this.#queue.run("start", async () => {
      if (this.#state === "started") return;
      this.#set("starting");
      try {
        await work();
      } catch (error) {
        this.#set("stopped");
        throw error;
      }
      this.#set("started");
    });
  }

  /** Stops unless stopped; `work` drains and closes. */
  stop(work: () => Promise<void> | void): Promise<void> {
    // Refuse new work from this call on, not from when the queued stop runs.
    if (this.#state === "started") this.#set("stopping");
    return this.#queue.run("stop", async () => {
      if (this.#state === "stopped") return;
      this.#set("stopping");
      try {
        await work();
      } finally {
        this.#set("stopped");
      }
    });
  }
}

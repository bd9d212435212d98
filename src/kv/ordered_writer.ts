/**
 * Commits whose enqueues must be delivered in commit order. KV delivers a
 * queue message by its due time, in milliseconds, and breaks ties between
 * messages due in the same millisecond at random; so two batches of one
 * publisher enqueued within the same millisecond could overtake each other.
 * The writer runs such commits one at a time and starts each at least two
 * milliseconds after the last due time of the one before (two, because the
 * database reads its clock a moment after ours), so their due times differ
 * and KV keeps their order.
 *
 * @module
 */

/**
 * Waits for the clock, then records an attempt: call it after building the
 * operation and right before `commit()`, so the recorded time is the
 * database's to within a millisecond.
 */
export type Stamp = (spread: number) => Promise<void>;

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Serializes ordered commits.
 *
 * @example
 * ```ts
 * import { OrderedWriter } from "./ordered_writer.ts";
 * const writer = new OrderedWriter();
 * const due: number[] = [];
 * await Promise.all([1, 2].map(() =>
 *   writer.write(async (stamp) => {
 *     await stamp(1);
 *     due.push(Date.now());
 *   })
 * ));
 * console.assert(due[1] - due[0] >= 2);
 * ```
 */
export class OrderedWriter {
  #tail: Promise<void> = Promise.resolve();
  /** Latest due time (ms) an ordered enqueue may have got. */
  #last = Number.NEGATIVE_INFINITY;

  /**
   * Runs `commit` once the ordered commits before it are done. `commit`
   * calls `stamp(spread)` right before each attempt, where `spread` is the
   * number of consecutive milliseconds its enqueue delays use (1 when every
   * enqueue has no delay).
   */
  async write<R>(commit: (stamp: Stamp) => Promise<R>): Promise<R> {
    const previous = this.#tail;
    let release!: () => void;
    this.#tail = new Promise<void>((resolve) => (release = resolve));
    await previous;
    try {
      return await commit((spread) => this.#stamp(spread));
    } finally {
      release();
    }
  }

  async #stamp(spread: number): Promise<void> {
    const wait = this.#last + 2 - Date.now();
    if (wait > 0) await pause(wait);
    this.#last = Date.now() + Math.max(1, spread) - 1;
  }
}

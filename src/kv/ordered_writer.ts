/**
 * Commits whose enqueues must be delivered in commit order. KV delivers a
 * queue message by its due time, in milliseconds, and breaks ties between
 * messages due in the same millisecond at random; so two batches of one
 * publisher enqueued within the same millisecond could overtake each other.
 * The writer runs such commits one at a time and gives each enqueue a delay
 * that makes it due at least a millisecond after every enqueue before it.
 *
 * The database reads its clock when the commit starts, so once a commit has
 * resolved its enqueues are due no later than the time of resolution plus
 * their delay. A commit that starts in a later millisecond needs no delay; one
 * that starts in the same millisecond gets a delay of one. No one waits, and
 * due times stay within a millisecond of the publishes unless commits resolve
 * faster than one per millisecond for a long while.
 *
 * @module
 */

/**
 * Serializes ordered commits.
 *
 * @example
 * ```ts
 * import { OrderedWriter } from "./ordered_writer.ts";
 * const writer = new OrderedWriter();
 * const delays: number[] = [];
 * for (let i = 0; i < 3; i++) {
 *   await writer.write(1, async (delay) => {
 *     delays.push(delay); // the enqueue delay that keeps this commit's messages after the last
 *   });
 * }
 * console.assert(delays.every((delay) => delay >= 0));
 * ```
 */
export class OrderedWriter {
  #tail: Promise<void> = Promise.resolve();
  /** Latest due time (ms) an ordered enqueue may have got. */
  #lastDue = Number.NEGATIVE_INFINITY;

  /**
   * Runs `commit` once the ordered commits before it are done, with the
   * delay (ms) its first enqueue must have; its enqueues use `delay`,
   * `delay + 1`, ... up to `delay + spread - 1`.
   */
  async write<R>(spread: number, commit: (delay: number) => Promise<R>): Promise<R> {
    const previous = this.#tail;
    let release!: () => void;
    this.#tail = new Promise<void>((resolve) => (release = resolve));
    await previous;
    const delay = Math.max(0, this.#lastDue + 1 - Date.now());
    try {
      return await commit(delay);
    } finally {
      // Even after a failure: the commit may have gone through before the error.
      this.#lastDue = Math.max(this.#lastDue, Date.now() + delay + Math.max(1, spread) - 1);
      release();
    }
  }
}

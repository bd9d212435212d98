/**
 * A growable FIFO ring buffer: O(1) push and shift without the copying that
 * `Array.prototype.shift` may do on long arrays. Callers enforce any bound.
 *
 * @module
 */

const INITIAL_CAPACITY = 16;

/**
 * A first-in first-out queue on a ring buffer whose capacity doubles when full.
 *
 * @example
 * ```ts
 * import { RingQueue } from "./ring_queue.ts";
 * const queue = new RingQueue<number>();
 * queue.push(1);
 * queue.push(2);
 * console.assert(queue.shift() === 1 && queue.length === 1);
 * ```
 */
export class RingQueue<T> {
  #items: (T | undefined)[] = new Array(INITIAL_CAPACITY);
  #mask = INITIAL_CAPACITY - 1;
  #head = 0;
  #length = 0;

  /** Items waiting. */
  get length(): number {
    return this.#length;
  }

  /** Appends an item at the tail. */
  push(item: T): void {
    if (this.#length === this.#items.length) this.#grow();
    this.#items[(this.#head + this.#length) & this.#mask] = item;
    this.#length++;
  }

  /** Puts an item at the head, before every waiting one. */
  unshift(item: T): void {
    if (this.#length === this.#items.length) this.#grow();
    this.#head = (this.#head - 1) & this.#mask;
    this.#items[this.#head] = item;
    this.#length++;
  }

  /** Removes and returns the head item, or `undefined` when empty. */
  shift(): T | undefined {
    if (this.#length === 0) return undefined;
    const head = this.#head;
    const item = this.#items[head];
    // Clearing the slot lets the item be collected once handled.
    this.#items[head] = undefined;
    this.#head = (head + 1) & this.#mask;
    this.#length--;
    return item;
  }

  /** Removes every item and returns them in FIFO order; the capacity shrinks back. */
  drain(): T[] {
    const out: T[] = [];
    for (let item = this.shift(); item !== undefined; item = this.shift()) out.push(item);
    this.#items = new Array(INITIAL_CAPACITY);
    this.#mask = INITIAL_CAPACITY - 1;
    this.#head = 0;
    return out;
  }

  #grow(): void {
    const old = this.#items;
    const capacity = old.length * 2;
    const items: (T | undefined)[] = new Array(capacity);
    for (let i = 0; i < this.#length; i++) items[i] = old[(this.#head + i) & this.#mask];
    this.#items = items;
    this.#mask = capacity - 1;
    this.#head = 0;
  }
}

/**
 * The entries one stream consumer holds (read or claimed, not yet
 * acknowledged, dead-lettered or released), as an intrusive doubly linked
 * list: adding and removing an entry costs two pointer writes and no
 * hashing, which matters once per entry on the hot path. Looking an id up
 * walks the list; only claims do that, and the list is bounded by the
 * consumer's capacity.
 *
 * @module
 */

/** An entry that can sit in a {@linkcode HeldEntries} list. */
export interface Linked<T extends Linked<T>> {
  /** Stream entry id. */
  readonly id: string;
  /** Neighbours in the list; `undefined` at the ends. */
  prev: T | undefined;
  next: T | undefined;
  /** Whether the entry is in the list. */
  held: boolean;
}

/**
 * A set of held entries in insertion order.
 *
 * @example
 * ```ts
 * import { HeldEntries, type Linked } from "./held_entries.ts";
 * class Entry implements Linked<Entry> {
 *   prev: Entry | undefined = undefined;
 *   next: Entry | undefined = undefined;
 *   held = false;
 *   constructor(readonly id: string) {}
 * }
 * const held = new HeldEntries<Entry>();
 * const a = new Entry("1-0");
 * held.add(a);
 * held.add(new Entry("2-0"));
 * held.remove(a);
 * console.assert(held.size === 1 && held.has("2-0") && !held.has("1-0"));
 * ```
 */
export class HeldEntries<T extends Linked<T>> {
  #head: T | undefined;
  #tail: T | undefined;
  #size = 0;

  /** Entries held. */
  get size(): number {
    return this.#size;
  }

  /** Adds an entry at the end (an entry already held stays where it is). */
  add(entry: T): void {
    if (entry.held) return;
    entry.held = true;
    entry.prev = this.#tail;
    entry.next = undefined;
    if (this.#tail === undefined) this.#head = entry;
    else this.#tail.next = entry;
    this.#tail = entry;
    this.#size++;
  }

  /** Removes an entry; returns false when it was not held. */
  remove(entry: T): boolean {
    if (!entry.held) return false;
    entry.held = false;
    const { prev, next } = entry;
    if (prev === undefined) this.#head = next;
    else prev.next = next;
    if (next === undefined) this.#tail = prev;
    else next.prev = prev;
    entry.prev = entry.next = undefined;
    this.#size--;
    return true;
  }

  /** Whether an entry with this id is held (walks the list). */
  has(id: string): boolean {
    for (let entry = this.#head; entry !== undefined; entry = entry.next) {
      if (entry.id === id) return true;
    }
    return false;
  }

  /** The held entries, oldest first; removing the current one while iterating is safe. */
  *[Symbol.iterator](): IterableIterator<T> {
    let entry = this.#head;
    while (entry !== undefined) {
      const next = entry.next;
      yield entry;
      entry = next;
    }
  }

  /** Removes every entry and returns them, oldest first. */
  clear(): T[] {
    const all = [...this];
    for (const entry of all) {
      entry.held = false;
      entry.prev = entry.next = undefined;
    }
    this.#head = this.#tail = undefined;
    this.#size = 0;
    return all;
  }
}

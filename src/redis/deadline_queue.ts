/**
 * Timeouts for many operations that all wait the same time, with a single
 * timer and no allocation per operation beyond array slots: publishes are
 * frequent, and a timer or closure per publish would cost more than the
 * publish itself.
 *
 * @module
 */

/**
 * Tracks operations that expire `timeout` ms after they were added. Each
 * gets a ticket; {@linkcode DeadlineQueue.settle} marks it done. Operations
 * end in the order they were added far more often than not, so a FIFO with a
 * moving head is enough.
 */
export class DeadlineQueue<T> {
  readonly #timeout: number;
  readonly #onExpire: (value: T, label: string) => void;
  #deadlines: number[] = [];
  #labels: string[] = [];
  #values: (T | undefined)[] = [];
  /** Ticket of the slot at index 0. */
  #base = 0;
  #head = 0;
  #live = 0;
  #emptyWaiters: (() => void)[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** `onExpire` receives the value and label of each operation still unsettled at its deadline. */
  constructor(timeout: number, onExpire: (value: T, label: string) => void) {
    this.#timeout = timeout;
    this.#onExpire = onExpire;
  }

  /** Tracks an operation; returns its ticket for {@linkcode DeadlineQueue.settle}. */
  add(value: T, label: string): number {
    this.#deadlines.push(Date.now() + this.#timeout);
    this.#labels.push(label);
    this.#values.push(value);
    this.#live++;
    if (this.#timer === undefined) this.#arm(this.#timeout);
    return this.#base + this.#values.length - 1;
  }

  /** Marks an operation done; false when it had already expired (or the queue was cleared). */
  settle(ticket: number): boolean {
    const index = ticket - this.#base;
    if (index < this.#head || index >= this.#values.length) return false;
    if (this.#values[index] === undefined) return false;
    this.#values[index] = undefined;
    this.#live--;
    if (this.#live === 0) this.#notifyEmpty();
    if (index === this.#head) this.#advance();
    return true;
  }

  /** Resolves once no operation is tracked (at once when none is). */
  whenEmpty(): Promise<void> {
    if (this.#live === 0) return Promise.resolve();
    return new Promise((resolve) => this.#emptyWaiters.push(resolve));
  }

  #notifyEmpty(): void {
    const waiters = this.#emptyWaiters;
    this.#emptyWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /** Operations tracked and not yet settled or expired. */
  get size(): number {
    return this.#live;
  }

  /** Expires every operation now (e.g. at shutdown) and stops the timer. */
  expireAll(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const values = this.#values;
    const labels = this.#labels;
    this.#base += values.length;
    this.#deadlines = [];
    this.#labels = [];
    this.#values = [];
    this.#head = 0;
    this.#live = 0;
    this.#notifyEmpty();
    for (let i = 0; i < values.length; i++) {
      const value = values[i];
      if (value !== undefined) this.#onExpire(value, labels[i]);
    }
  }

  #advance(): void {
    const values = this.#values;
    let head = this.#head;
    while (head < values.length && values[head] === undefined) head++;
    if (head === values.length) {
      // Nothing left to expire: no timer keeps the process alive.
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#base += values.length;
      this.#deadlines = [];
      this.#labels = [];
      this.#values = [];
      this.#head = 0;
    } else if (head > 1024 && head * 2 > values.length) {
      this.#base += head;
      this.#deadlines = this.#deadlines.slice(head);
      this.#labels = this.#labels.slice(head);
      this.#values = values.slice(head);
      this.#head = 0;
    } else {
      this.#head = head;
    }
  }

  #arm(delay: number): void {
    this.#timer = setTimeout(() => this.#sweep(), Math.max(1, delay));
  }

  #sweep(): void {
    this.#timer = undefined;
    const now = Date.now();
    while (this.#head < this.#values.length) {
      const head = this.#head;
      const value = this.#values[head];
      if (value !== undefined && this.#deadlines[head] > now) break;
      this.#head = head + 1;
      if (value === undefined) continue;
      this.#values[head] = undefined;
      this.#live--;
      if (this.#live === 0) this.#notifyEmpty();
      this.#onExpire(value, this.#labels[head]);
    }
    this.#advance();
    if (this.#values.length > 0) this.#arm(this.#deadlines[this.#head] - now);
  }
}

/**
 * Timeouts for many operations that all wait the same time, with a single
 * timer: publishes are frequent, and one timer per publish would cost more
 * than the publish itself.
 *
 * @module
 */

interface Waiter {
  readonly deadline: number;
  expire: (() => void) | undefined;
}

/**
 * Runs `onExpire` of each tracked operation that is still running `timeout`
 * ms after it was added. Operations end in the order they were added far more
 * often than not, so a FIFO with a moving head is enough.
 */
export class DeadlineQueue {
  readonly #timeout: number;
  #waiters: Waiter[] = [];
  #head = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** Creates a queue whose operations expire after `timeout` ms. */
  constructor(timeout: number) {
    this.#timeout = timeout;
  }

  /** Tracks an operation; call the returned function when it has settled. */
  add(onExpire: () => void): () => void {
    const waiter: Waiter = { deadline: Date.now() + this.#timeout, expire: onExpire };
    this.#waiters.push(waiter);
    if (this.#timer === undefined) this.#arm(this.#timeout);
    return () => {
      waiter.expire = undefined;
      this.#advance();
    };
  }

  #advance(): void {
    const waiters = this.#waiters;
    let head = this.#head;
    while (head < waiters.length && waiters[head].expire === undefined) head++;
    if (head === waiters.length) {
      this.#waiters = [];
      this.#head = 0;
    } else if (head > 1024 && head * 2 > waiters.length) {
      this.#waiters = waiters.slice(head);
      this.#head = 0;
    } else {
      this.#head = head;
    }
  }

  /** Operations tracked and not yet settled or expired (approximate: settled ones leave lazily). */
  get size(): number {
    return this.#waiters.length - this.#head;
  }

  /** Stops the timer; pending operations never expire. */
  clear(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#waiters = [];
    this.#head = 0;
  }

  #arm(delay: number): void {
    this.#timer = setTimeout(() => this.#sweep(), Math.max(1, delay));
  }

  #sweep(): void {
    this.#timer = undefined;
    const now = Date.now();
    const waiters = this.#waiters;
    let head = this.#head;
    while (head < waiters.length) {
      const waiter = waiters[head];
      if (waiter.expire !== undefined && waiter.deadline > now) break;
      head++;
      const expire = waiter.expire;
      waiter.expire = undefined;
      expire?.();
    }
    this.#head = head;
    this.#advance();
    if (this.#waiters.length > 0) this.#arm(this.#waiters[this.#head].deadline - now);
  }
}

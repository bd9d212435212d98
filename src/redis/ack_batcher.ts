/**
 * Acknowledging many entries with one XACK: handlers finishing in the same
 * turn of the event loop share one command.
 *
 * @module
 */

import type { Redis } from "ioredis";

/**
 * Collects entry ids to acknowledge and sends them in one XACK per turn of
 * the event loop (or as soon as `maxBatch` ids are waiting).
 */
export class AckBatcher {
  readonly #client: () => Redis;
  readonly #stream: string;
  readonly #group: string;
  readonly #maxBatch: number;
  readonly #onAcked: (ids: readonly string[]) => void;
  readonly #onFailed: (ids: readonly string[], error: unknown) => void;
  #ids: string[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #inFlight = new Set<Promise<void>>();

  /**
   * `onAcked` runs once Redis confirmed the ids; `onFailed` when the XACK
   * failed (the entries stay pending and will be delivered again).
   */
  constructor(
    client: () => Redis,
    stream: string,
    group: string,
    maxBatch: number,
    onAcked: (ids: readonly string[]) => void,
    onFailed: (ids: readonly string[], error: unknown) => void,
  ) {
    this.#client = client;
    this.#stream = stream;
    this.#group = group;
    this.#maxBatch = maxBatch;
    this.#onAcked = onAcked;
    this.#onFailed = onFailed;
  }

  /** Queues one id. */
  add(id: string): void {
    this.#ids.push(id);
    if (this.#ids.length >= this.#maxBatch) this.#send();
    else if (this.#timer === undefined) this.#timer = setTimeout(() => this.#send(), 0);
  }

  /** Sends what is queued and waits for every XACK sent so far. */
  async flush(): Promise<void> {
    this.#send();
    while (this.#inFlight.size > 0) await Promise.all([...this.#inFlight]);
  }

  #send(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#ids.length === 0) return;
    const ids = this.#ids;
    this.#ids = [];
    const sent: Promise<void> = this.#client().xack(this.#stream, this.#group, ...ids).then(
      () => this.#onAcked(ids),
      (error) => this.#onFailed(ids, error),
    ).finally(() => this.#inFlight.delete(sent));
    this.#inFlight.add(sent);
  }
}

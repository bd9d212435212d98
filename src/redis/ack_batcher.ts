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
  readonly #onFailed: (ids: readonly string[], error: unknown) => void;
  readonly #sendNow = (): void => this.#send();
  #ids: string[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #inFlight = new Set<Promise<void>>();

  /** `onFailed` runs when an XACK failed (the entries stay pending and will be delivered again). */
  constructor(
    client: () => Redis,
    stream: string,
    group: string,
    maxBatch: number,
    onFailed: (ids: readonly string[], error: unknown) => void,
  ) {
    this.#client = client;
    this.#stream = stream;
    this.#group = group;
    this.#maxBatch = maxBatch;
    this.#onFailed = onFailed;
  }

  /** Queues one id. */
  add(id: string): void {
    const ids = this.#ids;
    ids.push(id);
    if (ids.length >= this.#maxBatch) this.#send();
    else if (this.#timer === undefined) this.#timer = setTimeout(this.#sendNow, 0);
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
    const ids = this.#ids;
    if (ids.length === 0) return;
    this.#ids = [];
    const sent: Promise<void> = this.#client().xack(this.#stream, this.#group, ...ids).then(
      () => {
        this.#inFlight.delete(sent);
      },
      (error) => {
        this.#inFlight.delete(sent);
        this.#onFailed(ids, error);
      },
    );
    this.#inFlight.add(sent);
  }
}

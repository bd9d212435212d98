/**
 * Acknowledging many entries with one XACK: handlers finishing in the same
 * turn of the event loop share one command. The batcher also writes what
 * goes with the acknowledgements: the handler starts of first deliveries
 * (one HSET for every start of a turn; a start whose entry is acknowledged
 * before the HSET leaves is never written), the removal of those counts, and
 * the handled marks of an `idempotent` subscription, in the same transaction
 * as the XACK.
 *
 * @module
 */

import type { ChainableCommander, Redis } from "ioredis";
import { failuresField, sendNow } from "./attempts.ts";

/**
 * Whether an entry's handler start is written to Redis: not recorded (never
 * started, or its record was removed), waiting for the next write, written.
 */
export type StartMark = "none" | "pending" | "written";

/** An entry as the batcher sees it. */
export interface AckEntry {
  readonly id: string;
  /** Where its handler start is. */
  mark: StartMark;
}

/** Where the batcher writes. */
export interface AckTarget {
  readonly stream: string;
  readonly group: string;
  /** Hash of handler starts per entry. */
  readonly attemptsKey: string;
  /** Time to live of handled marks (`idempotent`), ms. */
  readonly doneTtl: number;
}

/**
 * Collects entry ids to acknowledge and sends them in one XACK per turn of
 * the event loop (or as soon as `maxBatch` ids are waiting).
 */
export class AckBatcher {
  readonly #client: () => Redis;
  readonly #target: AckTarget;
  readonly #maxBatch: number;
  readonly #onFailed: (ids: readonly string[], error: unknown) => void;
  readonly #sendNow = (): void => this.#send();
  readonly #writeStartsNow = (): void => this.#writeStarts();
  #ids: string[] = [];
  /** Start counts to remove with the acknowledgement. */
  #cleared: string[] = [];
  /** Handled marks to set with the acknowledgement. */
  #done: string[] = [];
  #starts: AckEntry[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #inFlight = new Set<Promise<void>>();

  /** `onFailed` runs when an XACK failed (the entries stay pending and will be delivered again). */
  constructor(
    client: () => Redis,
    target: AckTarget,
    maxBatch: number,
    onFailed: (ids: readonly string[], error: unknown) => void,
  ) {
    this.#client = client;
    this.#target = target;
    this.#maxBatch = maxBatch;
    this.#onFailed = onFailed;
  }

  /**
   * A handler starts a first delivery (its count is 1): written once the
   * current run of handlers yields, unless acknowledged first.
   */
  started(entry: AckEntry): void {
    entry.mark = "pending";
    if (this.#starts.push(entry) === 1) queueMicrotask(this.#writeStartsNow);
  }

  /** Writes the waiting start records now (before a command that must come after them). */
  writeStarts(): void {
    this.#writeStarts();
  }

  /**
   * Forgets an entry's start record: a waiting one is not written, a written
   * one is returned (the caller removes it in its own command).
   */
  settle(entry: AckEntry): boolean {
    const written = entry.mark === "written";
    entry.mark = "none";
    return written;
  }

  /** Queues one acknowledgement; `done` is the handled mark to set with it. */
  add(entry: AckEntry, done?: string): void {
    const ids = this.#ids;
    ids.push(entry.id);
    if (this.settle(entry)) this.#cleared.push(entry.id, failuresField(entry.id));
    if (done !== undefined) this.#done.push(done);
    if (ids.length >= this.#maxBatch) this.#send();
    else if (this.#timer === undefined) this.#timer = setTimeout(this.#sendNow, 0);
  }

  /** Sends what is queued and waits for every XACK sent so far. */
  async flush(): Promise<void> {
    this.#send();
    while (this.#inFlight.size > 0) await Promise.all([...this.#inFlight]);
  }

  #writeStarts(): void {
    const starts = this.#starts;
    if (starts.length === 0) return;
    this.#starts = [];
    const fields: (string | number)[] = [];
    for (const entry of starts) {
      if (entry.mark !== "pending") continue;
      entry.mark = "written";
      fields.push(entry.id, 1);
    }
    if (fields.length === 0) return;
    // Counted again from the failures of the entry, if any: a lost write only hides a crash.
    sendNow(this.#client(), "hset", this.#target.attemptsKey, ...fields).catch(() => {});
  }

  #send(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    const ids = this.#ids;
    if (ids.length === 0) return;
    this.#ids = [];
    const cleared = this.#cleared;
    const done = this.#done;
    const target = this.#target;
    let reply: Promise<unknown>;
    if (cleared.length === 0 && done.length === 0) {
      reply = this.#client().xack(target.stream, target.group, ...ids);
    } else {
      this.#cleared = [];
      this.#done = [];
      const transaction: ChainableCommander = this.#client().multi();
      transaction.xack(target.stream, target.group, ...ids);
      if (cleared.length > 0) transaction.hdel(target.attemptsKey, ...cleared);
      for (const key of done) transaction.set(key, "1", "PX", target.doneTtl);
      reply = transaction.exec().then(failedStep);
    }
    const sent: Promise<void> = reply.then(
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

/** Rejects with the first error of a transaction's replies. */
function failedStep(results: [Error | null, unknown][] | null): void {
  if (results === null) throw new Error("the acknowledgement transaction was aborted");
  for (const [error] of results) if (error) throw error;
}

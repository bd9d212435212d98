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
import { delay } from "../timers.ts";
import { failuresField, sendNow } from "./attempts.ts";
import { movingRefusal, movingRetryDelay } from "./slot_moving.ts";

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

/** Name under which the acknowledging script is defined on a connection. */
const ACK_AND_MARK = "eventbusAckAndMark";

/**
 * Acknowledges entries, removes their start counts and marks events handled,
 * atomically. KEYS[1] the stream, KEYS[2] the attempts hash, then the handled
 * marks to set; ARGV[1] the group, ARGV[2] the marks' time to live (ms),
 * ARGV[3] how many ids follow, the ids, then the hash fields to remove.
 * Arguments go to Redis in slices: Lua unpacks only so many at once.
 */
const ACK_AND_MARK_LUA = `
local function sliced(command, key, extra, from, to)
  for i = from, to, 1000 do
    local j = math.min(i + 999, to)
    if extra then
      redis.call(command, key, extra, unpack(ARGV, i, j))
    else
      redis.call(command, key, unpack(ARGV, i, j))
    end
  end
end
local ids = tonumber(ARGV[3])
sliced('XACK', KEYS[1], ARGV[1], 4, 3 + ids)
sliced('HDEL', KEYS[2], false, 4 + ids, #ARGV)
for i = 3, #KEYS do redis.call('SET', KEYS[i], '1', 'PX', ARGV[2]) end
return ids
`;

/**
 * Times the acknowledging script is sent again while its slot moves: the
 * waits between sends alone add up to over 5 s, and each send follows
 * ioredis's own redirections too (up to 1.6 s more), so a move of that long
 * is covered, well within the default `claimIdleMs` (30 s), before the
 * entries are left pending to be claimed.
 */
const MAX_MOVING_RESENDS = 10;

/** Connections the acknowledging script is defined on. */
const scripted = new WeakSet<Redis>();

type ScriptedPipeline = ChainableCommander & {
  [ACK_AND_MARK](...args: (string | number)[]): ChainableCommander;
};

/**
 * Collects entry ids to acknowledge and sends them in one XACK per turn of
 * the event loop (or as soon as `maxBatch` ids are waiting).
 */
export class AckBatcher {
  readonly #client: () => Redis;
  readonly #target: AckTarget;
  readonly #maxBatch: number;
  readonly #onAnswered: (ids: readonly string[], error?: unknown) => void;
  readonly #sendNow = (): void => this.#send();
  readonly #writeStartsNow = (): void => this.#writeStarts();
  #ids: string[] = [];
  /** Start counts to remove with the acknowledgement. */
  #cleared: string[] = [];
  /** Handled marks to set with the acknowledgement. */
  #done: string[] = [];
  #starts: AckEntry[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** The ids of each acknowledgement sent and not answered yet. */
  #inFlight = new Map<Promise<void>, readonly string[]>();

  /**
   * `onAnswered` runs when Redis answered an XACK, with the error when it
   * failed (the entries then stay pending and will be delivered again).
   */
  constructor(
    client: () => Redis,
    target: AckTarget,
    maxBatch: number,
    onAnswered: (ids: readonly string[], error?: unknown) => void,
  ) {
    this.#client = client;
    this.#target = target;
    this.#maxBatch = maxBatch;
    this.#onAnswered = onAnswered;
  }

  /** Whether an acknowledgement of `id` is queued or sent and not answered yet. */
  acknowledging(id: string): boolean {
    if (this.#ids.includes(id)) return true;
    for (const ids of this.#inFlight.values()) if (ids.includes(id)) return true;
    return false;
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
    while (this.#inFlight.size > 0) await Promise.all(this.#inFlight.keys());
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
      reply = this.#ackAndMark([
        2 + done.length,
        target.stream,
        target.attemptsKey,
        ...done,
        target.group,
        target.doneTtl,
        ids.length,
        ...ids,
        ...cleared,
      ], 0);
    }
    const sent: Promise<void> = reply.then(
      () => {
        this.#inFlight.delete(sent);
        this.#onAnswered(ids);
      },
      (error) => {
        this.#inFlight.delete(sent);
        this.#onAnswered(ids, error ?? new Error("XACK failed"));
      },
    );
    this.#inFlight.set(sent, ids);
  }

  /**
   * Runs the acknowledging script with `args`. While its slot moves to
   * another node Redis refuses it (it did not run): it is sent again after a
   * backoff, up to {@linkcode MAX_MOVING_RESENDS} times.
   */
  #ackAndMark(args: (string | number)[], resends: number): Promise<void> {
    const client = this.#client();
    if (!scripted.has(client)) {
      client.defineCommand(ACK_AND_MARK, { lua: ACK_AND_MARK_LUA });
      scripted.add(client);
    }
    // A pipeline of its own: written at once, like the transactions on this connection
    // (an auto-pipelined script call would wait for the next tick).
    return (client.pipeline() as ScriptedPipeline)[ACK_AND_MARK](...args).exec().then(
      async (results) => {
        const error = firstError(results);
        if (error === undefined) return;
        if (resends >= MAX_MOVING_RESENDS || !movingRefusal(error)) throw error;
        await delay(movingRetryDelay(resends));
        return this.#ackAndMark(args, resends + 1);
      },
    );
  }
}

/** The error of a one-command pipeline, if any. */
function firstError(results: [Error | null, unknown][] | null): Error | undefined {
  if (results === null || results.length === 0) {
    return new Error("the acknowledgement got no reply");
  }
  return results[0][0] ?? undefined;
}

/**
 * The blocking reader of one stream-mode subscription: XREADGROUP on a
 * connection of its own, first the entries this consumer took before a
 * restart (its history), then new ones; it reads only as much as its
 * consumer has room for, and survives reconnects, a vanished consumer group
 * and a blocking read that never returns.
 *
 * @module
 */

import type { Redis } from "ioredis";
import type { Reporter } from "../reporter.ts";
import { deadline, delay } from "../timers.ts";
import { connectWithin, createConnection, waitReady } from "./connection.ts";
import type { ResolvedRedisOptions } from "./options.ts";
import { safeError } from "./secrets.ts";

/** One entry as XREADGROUP returns it; `null` fields when it was deleted meanwhile. */
export type RawEntry = [id: string, fields: string[] | null];

type StreamReply = [key: string, entries: RawEntry[]][] | null;

/** What the reader hands its entries to. */
export interface ReaderHost {
  /** Entries the consumer can take now. */
  room(): number;
  /** Resolves once the consumer has room again (or the reader is stopping). */
  whenRoom(): Promise<void>;
  /** Entries read for the first time (">"). */
  takeNew(entries: RawEntry[]): void;
  /** Entries this consumer was given before (its history): their earlier runs are read from Redis. */
  takeRedelivered(entries: RawEntry[]): Promise<void>;
  /** The whole history was read and taken; new entries come next. */
  historyRead(): void;
  /** The consumer group vanished (a Redis restarted without persistence): create it again. */
  recreateGroup(): Promise<void>;
}

const READ_TIMED_OUT = Symbol("read timed out");

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Reads one consumer group for one consumer until stopped. */
export class StreamReader {
  readonly #options: ResolvedRedisOptions;
  readonly #reporter: Reporter;
  readonly #host: ReaderHost;
  readonly #stream: string;
  readonly #group: string;
  #blocking: Redis | undefined;
  #loop: Promise<void> | undefined;
  #stop = new AbortController();
  #failures = 0;

  /** Creates a reader; nothing happens before {@linkcode StreamReader.start}. */
  constructor(
    options: ResolvedRedisOptions,
    reporter: Reporter,
    host: ReaderHost,
    stream: string,
    group: string,
  ) {
    this.#options = options;
    this.#reporter = reporter;
    this.#host = host;
    this.#stream = stream;
    this.#group = group;
  }

  /**
   * Connects the blocking connection and starts reading. Returns false (and
   * leaves nothing open) when `cancelled()` says, once connected, that the
   * subscription closed meanwhile.
   */
  async start(cancelled: () => boolean): Promise<boolean> {
    const blocking = this.#newConnection();
    await connectWithin(blocking, this.#options, "blocking");
    if (cancelled()) {
      blocking.disconnect();
      return false;
    }
    this.#blocking = blocking;
    this.#stop = new AbortController();
    this.#failures = 0;
    this.#loop = this.#run(this.#stop.signal);
    return true;
  }

  /** Stops reading at once; resolves when the loop has ended. */
  async stop(): Promise<void> {
    this.#stop.abort();
    this.#blocking?.disconnect();
    await this.#loop;
    this.#loop = undefined;
    this.#blocking = undefined;
  }

  #newConnection(): Redis {
    // A read cut by a reconnect must fail at once rather than be silently
    // re-sent or left unsettled (a known ioredis hang of blocking commands):
    // with no retries per request, ioredis rejects it when the connection
    // drops, and the loop reads again once reconnected.
    return createConnection(this.#options, this.#reporter, "blocking", {
      autoResendUnfulfilledCommands: false,
      enableAutoPipelining: false,
      maxRetriesPerRequest: 0,
    });
  }

  async #run(signal: AbortSignal): Promise<void> {
    const host = this.#host;
    const batchSize = this.#options.batchSize;
    // Entries this consumer took before a restart come first ("0"), then new ones (">").
    let history: string | undefined = "0";
    while (!signal.aborted) {
      const room = host.room();
      if (room <= 0) {
        await host.whenRoom();
        continue;
      }
      const blocking = this.#blocking;
      if (blocking === undefined) return;
      if (blocking.status !== "ready") {
        await this.#waitReady(blocking, signal);
        continue;
      }
      const count = room < batchSize ? room : batchSize;
      let reply: StreamReply | typeof READ_TIMED_OUT;
      try {
        reply = await this.#read(blocking, count, history ?? ">");
      } catch (error) {
        if (signal.aborted) return;
        await this.#onReadError(error, signal);
        continue;
      }
      if (reply === READ_TIMED_OUT) {
        if (signal.aborted) return;
        this.#reporter.log(
          "warn",
          `blocking read on ${this.#stream} did not return in time; reconnecting it`,
        );
        this.#replace(blocking);
        continue;
      }
      this.#failures = 0;
      const entries = reply === null || reply.length === 0 ? undefined : reply[0][1];
      if (history === undefined) {
        // Taken even when a stop raced with the read: the consumer holds them for release.
        if (entries !== undefined) host.takeNew(entries);
        continue;
      }
      if (signal.aborted) return;
      history = entries === undefined || entries.length < count
        ? undefined
        : entries[entries.length - 1][0];
      if (entries !== undefined && entries.length > 0) await host.takeRedelivered(entries);
      if (history === undefined) host.historyRead();
    }
  }

  /** Waits for the connection, replacing one ioredis gave up on; bounded by one block time. */
  async #waitReady(blocking: Redis, signal: AbortSignal): Promise<void> {
    const waiting = new AbortController();
    await deadline(waitReady(blocking, waiting.signal), this.#options.blockMs, () => undefined);
    // Drops waitReady's listeners when the deadline won.
    waiting.abort();
    if (signal.aborted) return;
    if ((blocking.status as string) === "end") this.#replace(blocking);
  }

  #read(
    blocking: Redis,
    count: number,
    from: string,
  ): Promise<StreamReply | typeof READ_TIMED_OUT> {
    const block = from === ">" ? this.#options.blockMs : undefined;
    const read = (block === undefined
      ? blocking.xreadgroup(
        "GROUP",
        this.#group,
        this.#options.consumer,
        "COUNT",
        count,
        "STREAMS",
        this.#stream,
        from,
      )
      : blocking.xreadgroup(
        "GROUP",
        this.#group,
        this.#options.consumer,
        "COUNT",
        count,
        "BLOCK",
        block,
        "STREAMS",
        this.#stream,
        from,
      )) as Promise<StreamReply>;
    // ioredis can leave a blocking command unsettled after a reconnect: a client-side
    // deadline turns that into a reconnect instead of a consumer that silently stops.
    const limit = (block ?? 0) + Math.max(2_000, this.#options.blockMs);
    return deadline(read, limit, () => READ_TIMED_OUT);
  }

  #replace(old: Redis): void {
    old.disconnect();
    if (this.#stop.signal.aborted) return;
    const next = this.#newConnection();
    this.#blocking = next;
    next.connect().catch(() => {
      // failures are logged by the connection's error listener; the loop waits for ready
    });
  }

  async #onReadError(error: unknown, signal: AbortSignal): Promise<void> {
    const message = errorMessage(error);
    if (message.includes("NOGROUP")) {
      this.#reporter.log(
        "warn",
        `consumer group ${this.#group} on ${this.#stream} is gone; creating it again`,
      );
      await this.#host.recreateGroup().catch(() => {});
      return;
    }
    this.#failures++;
    if (this.#failures === 1) {
      this.#reporter.log(
        "warn",
        `read on ${this.#stream} failed, retrying: ${
          safeError(error, this.#options.secrets).message
        }`,
      );
    }
    await delay(Math.min(50 * 2 ** Math.min(this.#failures, 6), this.#options.blockMs), signal);
  }
}

/**
 * The claim loop of one stream-mode subscription: takes over entries that a
 * consumer which stopped answering left pending (XAUTOCLAIM, once they are
 * idle for `claimIdleMs`), and keeps the entries this consumer still works
 * on fresh (XCLAIM heartbeats) so no other instance claims them meanwhile.
 *
 * @module
 */

import type { Redis } from "ioredis";
import type { Reporter } from "../reporter.ts";
import type { ResolvedRedisOptions } from "./options.ts";
import type { RawEntry } from "./stream_reader.ts";
import type { RedisCounters } from "./stats.ts";

/** An entry this consumer holds, as the heartbeat sees it. */
export interface HeldEntry {
  readonly id: string;
  /** When it was last claimed or read, in epoch ms. */
  touched: number;
}

/** What the claim loop works for. */
export interface ClaimHost {
  /** Entries the consumer can take now. */
  room(): number;
  /** Pending entries trimmed away before anyone handled them: count, report, forget their runs. */
  trimmed(ids: readonly string[]): void;
  /**
   * Whether the consumer holds the entry, or settled it where the claim in
   * flight may not have seen it (an XACK Redis had not run when the claim
   * left): either way it is not to be delivered again.
   */
  holds(id: string): boolean;
  /** A claim was sent (`true`) or its reply was taken (`false`). */
  claiming(inFlight: boolean): void;
  /** Every entry the consumer holds. */
  held(): Iterable<HeldEntry>;
  /** Claimed entries: their earlier runs are read from the attempts hash. */
  takeRedelivered(entries: RawEntry[]): Promise<void>;
  /** The consumer group vanished: create it again. */
  recreateGroup(): Promise<void>;
  /** The connection for claims, apart from the publishing flood. */
  command(): Redis;
}

type AutoClaimReply = [cursor: string, entries: RawEntry[], deleted?: string[]];

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Claims idle entries of dead consumers and keeps this consumer's entries fresh. */
export class Claimer {
  readonly #options: ResolvedRedisOptions;
  readonly #reporter: Reporter;
  readonly #counters: RedisCounters;
  readonly #host: ClaimHost;
  readonly #stream: string;
  readonly #group: string;
  #active = false;
  #claiming = false;
  #cursor = "0-0";
  #claimTimer: ReturnType<typeof setTimeout> | undefined;
  #heartbeatTimer: ReturnType<typeof setInterval> | undefined;

  /** Creates the loop; nothing happens before {@linkcode Claimer.start}. */
  constructor(
    options: ResolvedRedisOptions,
    reporter: Reporter,
    counters: RedisCounters,
    host: ClaimHost,
    stream: string,
    group: string,
  ) {
    this.#options = options;
    this.#reporter = reporter;
    this.#counters = counters;
    this.#host = host;
    this.#stream = stream;
    this.#group = group;
  }

  /** Claims at once, then every claim period; heartbeats every third of `claimIdleMs`. Idempotent. */
  start(): void {
    if (this.#active) return;
    this.#active = true;
    this.#schedule(0);
    const beat = Math.max(5, Math.floor(this.#options.claimIdleMs / 3));
    this.#heartbeatTimer = setInterval(() => this.#heartbeat(beat), beat);
  }

  /** Stops claiming and heartbeats at once. */
  stop(): void {
    this.#active = false;
    clearTimeout(this.#claimTimer);
    clearInterval(this.#heartbeatTimer);
    this.#claimTimer = undefined;
    this.#heartbeatTimer = undefined;
  }

  #schedule(ms: number): void {
    if (!this.#active) return;
    clearTimeout(this.#claimTimer);
    this.#claimTimer = setTimeout(() => this.#claim(), ms);
  }

  #interval(): number {
    return Math.max(5, Math.floor(Math.min(this.#options.claimIdleMs, 5_000) / 2));
  }

  async #claim(): Promise<void> {
    this.#claimTimer = undefined;
    if (!this.#active || this.#claiming) return;
    const room = Math.min(this.#host.room(), this.#options.batchSize);
    if (room <= 0) return this.#schedule(this.#interval());
    this.#claiming = true;
    this.#host.claiming(true);
    let again = false;
    try {
      const [cursor, claimed, deleted] = await this.#host.command().xautoclaim(
        this.#stream,
        this.#group,
        this.#options.consumer,
        this.#options.claimIdleMs,
        this.#cursor,
        "COUNT",
        room,
      ) as AutoClaimReply;
      this.#cursor = cursor;
      if (deleted !== undefined && deleted.length > 0) {
        // Trimmed away while pending: XAUTOCLAIM has removed them; nothing is left to deliver.
        this.#host.trimmed(deleted);
      }
      const entries = claimed.filter(([id]) => !this.#host.holds(id));
      if (!this.#active) return;
      if (entries.length > 0) {
        this.#counters.claimed += entries.length;
        this.#reporter.log(
          "info",
          `claimed ${entries.length} idle entries of ${this.#stream} for ${this.#group}`,
        );
        await this.#host.takeRedelivered(entries);
      }
      again = cursor !== "0-0";
    } catch (error) {
      const message = errorMessage(error);
      if (message.includes("NOGROUP")) {
        await this.#host.recreateGroup().catch(() => {});
      } else if (this.#active) {
        this.#reporter.log("debug", `XAUTOCLAIM on ${this.#stream}: ${message}`);
      }
    } finally {
      this.#claiming = false;
      this.#host.claiming(false);
    }
    this.#schedule(again ? 0 : this.#interval());
  }

  /** Touches the held entries not touched for `every` ms, so nobody claims them. */
  #heartbeat(every: number): void {
    const now = Date.now();
    const stale: string[] = [];
    for (const entry of this.#host.held()) {
      if (now - entry.touched >= every) {
        entry.touched = now;
        stale.push(entry.id);
      }
    }
    if (stale.length === 0) return;
    this.#host.command().xclaim(
      this.#stream,
      this.#group,
      this.#options.consumer,
      0,
      ...stale,
      "JUSTID",
    ).catch((error: unknown) => {
      this.#reporter.log("debug", `XCLAIM heartbeat on ${this.#stream}: ${errorMessage(error)}`);
    });
  }
}

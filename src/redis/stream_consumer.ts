/**
 * The consumer of one stream-mode subscription: reads its consumer group
 * with blocking XREADGROUP on its own connection, runs the handler with the
 * subscription's concurrency, acknowledges in batches after success, retries
 * with backoff, claims entries of dead consumers (XAUTOCLAIM), keeps its own
 * running entries from being claimed (XCLAIM heartbeats) and dead-letters
 * what cannot succeed.
 *
 * @module
 */

import type { Redis } from "ioredis";
import type { Handler, MessageContext } from "../broker.ts";
import { ValidationError } from "../errors.ts";
import { describeMessage, reportFailure } from "../handler_support.ts";
import { AckBatcher } from "./ack_batcher.ts";
import { connectWithin, createConnection, waitReady } from "./connection.ts";
import { deadLetterFields } from "./dead_letters.ts";
import { type DecodedEntry, decodeEntry, type EntryFields } from "./entry_codec.ts";
import type { ResolvedRedisOptions } from "./options.ts";
import { safeError } from "./options.ts";
import type { RedisCounters } from "./stats.ts";

/** What a consumer needs from its broker. */
export interface ConsumerHost {
  readonly options: ResolvedRedisOptions;
  readonly counters: RedisCounters;
  /** The broker's publishing connection: group creation goes there, ordered with publishes. */
  command(): Redis;
  /** The connection for acks, claims and dead letters, apart from the publishing flood. */
  consumerCommand(): Redis;
  /** Sends the handler's result to the requester when the entry is a request. */
  reply(decoded: DecodedEntry, result: unknown): Promise<void> | void;
  /** Tells the requester its request was dead-lettered. */
  replyFailure(decoded: DecodedEntry, error: string): void;
}

/** One subscription in stream mode. */
export interface StreamSubscriptionSpec {
  readonly channel: string;
  readonly name: string;
  readonly handler: Handler;
  readonly concurrency: number;
  readonly stream: string;
  readonly group: string;
  readonly deadLetterStream: string;
  /** Broadcast groups are created per instance and destroyed on a graceful stop. */
  readonly broadcast: boolean;
}

interface Delivery {
  readonly id: string;
  readonly fields: EntryFields;
  attempt: number;
  decoded: DecodedEntry | undefined;
  touched: number;
  running: boolean;
}

type StreamReply = [key: string, entries: [id: string, fields: string[] | null][]][] | null;

const READ_TIMED_OUT = Symbol("read timed out");
/** Extra time a stop gives Redis to confirm the last acks. */
const STOP_GRACE_MS = 1_000;

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * Reads and handles the entries of one subscription's consumer group.
 */
export class StreamConsumer {
  readonly spec: StreamSubscriptionSpec;
  readonly #host: ConsumerHost;
  readonly #options: ResolvedRedisOptions;
  readonly #capacity: number;
  /** Every entry this consumer holds: buffered, running, waiting for a retry or an ack. */
  readonly #held = new Map<string, Delivery>();
  #buffer: Delivery[] = [];
  #running = 0;
  /** Bumped when a stop abandons running calls; their late results are ignored. */
  #generation = 0;
  #pumping = false;
  #active = false;
  #blocking: Redis | undefined;
  #loop: Promise<void> | undefined;
  #stopSignal = new AbortController();
  #handlerSignal = new AbortController();
  #retryTimers = new Map<ReturnType<typeof setTimeout>, Delivery>();
  #claimTimer: ReturnType<typeof setTimeout> | undefined;
  #heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  #claimCursor = "0-0";
  #claiming = false;
  #room: (() => void) | undefined;
  #idle: (() => void) | undefined;
  #acks: AckBatcher;
  #groupReady: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  #closed = false;
  #readFailures = 0;

  /** Creates the consumer; nothing happens before {@linkcode StreamConsumer.start}. */
  constructor(spec: StreamSubscriptionSpec, host: ConsumerHost) {
    this.spec = spec;
    this.#host = host;
    this.#options = host.options;
    // Room for one batch being handled while the next is read.
    this.#capacity = 2 * this.#options.batchSize + spec.concurrency;
    this.#acks = this.#newAckBatcher();
  }

  /** Entries read and waiting for a free handler slot. */
  get queued(): number {
    return this.#buffer.length;
  }

  #newAckBatcher(): AckBatcher {
    return new AckBatcher(
      () => this.#host.consumerCommand(),
      this.spec.stream,
      this.spec.group,
      this.#options.batchSize,
      () => {},
      (ids, error) => {
        this.#options.logger.warn(
          `XACK of ${ids.length} entries on ${this.spec.stream} failed; they stay pending and will be delivered again: ${
            safeError(error, this.#options.secrets).message
          }`,
        );
      },
    );
  }

  /**
   * Creates the consumer group (with MKSTREAM) unless it exists. A new
   * subscription starts from `$`, so it gets what is published from now on;
   * the command is written at once, so a publish made on the same broker after
   * this call is ordered after it and seen by the group. A group that vanished
   * while reading (a Redis restarted without persistence) is created again
   * from `0`: the entries written since then are delivered rather than lost.
   */
  ensureGroup(from: "$" | "0" = "$"): Promise<void> {
    const created = this.#host.command()
      .xgroup("CREATE", this.spec.stream, this.spec.group, from, "MKSTREAM")
      .then(() => undefined, (error: unknown) => {
        if (errorMessage(error).includes("BUSYGROUP")) return;
        throw error;
      });
    this.#groupReady = created;
    return created;
  }

  /** Marks the consumer closed for good (unsubscribed): a start in progress does not begin reading. */
  close(): void {
    this.#closed = true;
  }

  /** Waits for the group, connects the blocking connection and starts reading and claiming. */
  async start(): Promise<void> {
    if (this.#active || this.#closed) return;
    this.#stopSignal = new AbortController();
    this.#handlerSignal = new AbortController();
    await (this.#groupReady ?? this.ensureGroup());
    const blocking = this.#newBlockingConnection();
    await connectWithin(blocking, this.#options, "blocking");
    if (this.#closed) {
      blocking.disconnect();
      return;
    }
    this.#blocking = blocking;
    this.#active = true;
    this.#acks = this.#newAckBatcher();
    this.#loop = this.#readLoop();
    this.#scheduleClaim(0);
    const beat = Math.max(5, Math.floor(this.#options.claimIdleMs / 3));
    this.#heartbeatTimer = setInterval(() => this.#heartbeat(beat), beat);
  }

  #newBlockingConnection(): Redis {
    // A read cut by a reconnect must fail at once rather than be silently
    // re-sent or left unsettled (a known ioredis hang of blocking commands):
    // with no retries per request, ioredis rejects it when the connection
    // drops, and the read loop reads again once reconnected.
    return createConnection(this.#options, "blocking", {
      autoResendUnfulfilledCommands: false,
      enableAutoPipelining: false,
      maxRetriesPerRequest: 0,
    });
  }

  /**
   * Stops reading and claiming at once (synchronously), lets the running
   * entries, and with `drain` the buffered ones, finish until `deadline`
   * (then aborts their signal), acknowledges what succeeded, and makes what is
   * left claimable by other instances at once. Without `drain` (an
   * unsubscribe) buffered entries are not handled here and the signal fires
   * once the running calls are done.
   */
  stop(deadline: number, drain = true): Promise<void> {
    if (this.#stopping !== undefined) return this.#stopping;
    if (!this.#active) return Promise.resolve();
    this.#stopping = this.#stop(deadline, drain).finally(() => {
      this.#stopping = undefined;
    });
    return this.#stopping;
  }

  async #stop(deadline: number, drain: boolean): Promise<void> {
    this.#active = false;
    if (!drain) this.#buffer = [];
    this.#stopSignal.abort();
    clearTimeout(this.#claimTimer);
    clearInterval(this.#heartbeatTimer);
    this.#claimTimer = undefined;
    this.#heartbeatTimer = undefined;
    this.#room?.();
    for (const [timer] of this.#retryTimers) clearTimeout(timer);
    this.#retryTimers.clear();
    this.#blocking?.disconnect();
    await this.#loop;
    this.#blocking = undefined;
    const drained = await this.#waitIdle(deadline);
    if (!drained || !drain) this.#handlerSignal.abort();
    if (!drained) this.#abandonRunning();
    this.#buffer = [];
    // Redis may be unreachable: acks and cleanup get what is left of the timeout, plus a grace.
    const cleanup = (async () => {
      await this.#acks.flush().catch(() => {});
      await this.#releaseLeftovers();
      await this.#cleanupGroup();
    })();
    const budget = Math.max(0, deadline - Date.now()) + STOP_GRACE_MS;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const gaveUp = await Promise.race([
      cleanup.then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), budget))),
    ]);
    clearTimeout(timer);
    if (gaveUp) {
      this.#options.logger.warn(
        `Redis did not confirm the last acks of ${this.spec.stream} in time; those entries will be delivered again`,
      );
    }
  }

  async #waitIdle(deadline: number): Promise<boolean> {
    if (this.#running === 0 && this.#buffer.length === 0) return true;
    const remaining = deadline - Date.now();
    if (remaining <= 0) return false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const idle = new Promise<boolean>((resolve) => {
      this.#idle = () => resolve(true);
      timer = setTimeout(() => resolve(false), remaining);
    });
    try {
      return await idle;
    } finally {
      clearTimeout(timer);
      this.#idle = undefined;
    }
  }

  /** Entries not handled by stop time: idle them past claimIdleMs so a live instance takes them now. */
  /**
   * Gives up on handler calls still running when a stop ran out of time: their
   * signal has fired, their entries are released with the rest (so another
   * instance, or this one after a restart, runs them again), and whatever they
   * do later is ignored, so they hold no capacity after a restart.
   */
  #abandonRunning(): void {
    this.#generation++;
    for (const delivery of this.#held.values()) delivery.running = false;
    this.#running = 0;
  }

  async #releaseLeftovers(): Promise<void> {
    const left = [...this.#held.values()].filter((d) => !d.running).map((d) => d.id);
    for (const id of left) this.#held.delete(id);
    if (left.length === 0) return;
    try {
      await this.#host.consumerCommand().xclaim(
        this.spec.stream,
        this.spec.group,
        this.#options.consumer,
        0,
        ...left,
        "IDLE",
        this.#options.claimIdleMs,
        "JUSTID",
      );
    } catch (error) {
      this.#options.logger.debug(
        `could not release ${left.length} entries of ${this.spec.stream}: ${errorMessage(error)}`,
      );
    }
  }

  async #cleanupGroup(): Promise<void> {
    const command = this.#host.consumerCommand();
    try {
      if (this.spec.broadcast) {
        await command.xgroup("DESTROY", this.spec.stream, this.spec.group);
        return;
      }
      // DELCONSUMER drops the consumer's pending entries: only a consumer with none goes.
      const pending = await command.xpending(
        this.spec.stream,
        this.spec.group,
        "-",
        "+",
        1,
        this.#options.consumer,
      ) as unknown[];
      if (pending.length === 0 && this.#held.size === 0) {
        await command.xgroup(
          "DELCONSUMER",
          this.spec.stream,
          this.spec.group,
          this.#options.consumer,
        );
      }
    } catch (error) {
      this.#options.logger.debug(`consumer cleanup on ${this.spec.stream}: ${errorMessage(error)}`);
    }
  }

  #roomLeft(): number {
    return this.#capacity - this.#held.size;
  }

  async #readLoop(): Promise<void> {
    const signal = this.#stopSignal.signal;
    // Entries this consumer took before a restart come first ("0"), then new ones (">").
    let history: string | undefined = "0";
    while (this.#active) {
      const room = this.#roomLeft();
      if (room <= 0) {
        await new Promise<void>((resolve) => (this.#room = resolve));
        this.#room = undefined;
        continue;
      }
      const blocking = this.#blocking;
      if (blocking === undefined) return;
      if (blocking.status !== "ready") {
        const waiting = new AbortController();
        await Promise.race([
          waitReady(blocking, waiting.signal),
          delay(this.#options.blockMs, signal),
        ]);
        waiting.abort(); // drops waitReady's listeners when the delay won
        if (!this.#active) return;
        // ioredis reconnects on its own; only a connection it gave up on is replaced.
        if ((blocking.status as string) === "end") this.#replaceBlocking(blocking);
        if ((blocking.status as string) !== "ready") continue;
      }
      const count = Math.min(room, this.#options.batchSize);
      let reply: StreamReply | typeof READ_TIMED_OUT;
      try {
        reply = await this.#read(blocking, count, history ?? ">");
      } catch (error) {
        if (!this.#active) return;
        await this.#onReadError(error, signal);
        continue;
      }
      if (!this.#active) {
        // Read raced with stop: what it returned stays pending and is released below.
        this.#takeAll(reply === READ_TIMED_OUT ? null : reply, 1, false);
        return;
      }
      if (reply === READ_TIMED_OUT) {
        this.#options.logger.warn(
          `blocking read on ${this.spec.stream} did not return in time; reconnecting it`,
        );
        this.#replaceBlocking(blocking);
        continue;
      }
      this.#readFailures = 0;
      if (history !== undefined) {
        const entries = reply?.[0]?.[1] ?? [];
        history = entries.length < count ? undefined : entries[entries.length - 1][0];
        await this.#takeRedelivered(entries);
      } else {
        this.#takeAll(reply, 1, true);
      }
    }
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
        this.spec.group,
        this.#options.consumer,
        "COUNT",
        count,
        "STREAMS",
        this.spec.stream,
        from,
      )
      : blocking.xreadgroup(
        "GROUP",
        this.spec.group,
        this.#options.consumer,
        "COUNT",
        count,
        "BLOCK",
        block,
        "STREAMS",
        this.spec.stream,
        from,
      )) as Promise<StreamReply>;
    // ioredis can leave a blocking command unsettled after a reconnect: a client-side
    // deadline turns that into a reconnect instead of a consumer that silently stops.
    const limit = (block ?? 0) + Math.max(2_000, this.#options.blockMs);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<typeof READ_TIMED_OUT>((resolve) => {
      timer = setTimeout(() => resolve(READ_TIMED_OUT), limit);
    });
    return Promise.race([read, timedOut]).finally(() => clearTimeout(timer));
  }

  #replaceBlocking(old: Redis): void {
    old.disconnect();
    if (!this.#active) return;
    const next = this.#newBlockingConnection();
    this.#blocking = next;
    next.connect().catch(() => {
      // failures are logged by the connection's error listener; the loop waits for ready
    });
  }

  async #onReadError(error: unknown, signal: AbortSignal): Promise<void> {
    const message = errorMessage(error);
    if (message.includes("NOGROUP")) {
      this.#options.logger.warn(
        `consumer group ${this.spec.group} on ${this.spec.stream} is gone; creating it again`,
      );
      await this.ensureGroup("0").catch(() => {});
      return;
    }
    this.#readFailures++;
    if (this.#readFailures === 1) {
      this.#options.logger.warn(
        `read on ${this.spec.stream} failed, retrying: ${
          safeError(error, this.#options.secrets).message
        }`,
      );
    }
    await delay(Math.min(50 * 2 ** Math.min(this.#readFailures, 6), this.#options.blockMs), signal);
  }

  /** Takes the entries of a ">" read (or a read that raced with stop). */
  #takeAll(reply: StreamReply, attempt: number, dispatch: boolean): void {
    if (reply === null || reply.length === 0) return;
    const now = Date.now();
    for (const [id, fields] of reply[0][1]) {
      if (fields === null || this.#held.has(id)) continue;
      const delivery: Delivery = {
        id,
        fields,
        attempt,
        decoded: undefined,
        touched: now,
        running: false,
      };
      this.#held.set(id, delivery);
      if (dispatch) this.#buffer.push(delivery);
    }
    if (dispatch) this.#pump();
  }

  /** Takes entries delivered before (own history or claimed): their attempt is Redis's delivery count. */
  async #takeRedelivered(entries: [string, string[] | null][]): Promise<void> {
    const live: [string, string[]][] = [];
    const gone: string[] = [];
    for (const [id, fields] of entries) {
      if (this.#held.has(id)) continue;
      if (fields === null) gone.push(id);
      else live.push([id, fields]);
    }
    if (gone.length > 0) {
      // Trimmed away before anyone handled them: nothing is left to deliver.
      this.#host.counters.dropped += gone.length;
      this.#options.logger.warn(
        `${gone.length} pending entries of ${this.spec.stream} were trimmed before being handled (raise maxLen)`,
      );
      await this.#host.consumerCommand().xack(this.spec.stream, this.spec.group, ...gone).catch(
        () => {},
      );
    }
    if (live.length === 0) return;
    const counts = await this.#deliveryCounts(live[0][0], live[live.length - 1][0], live.length);
    // Stopped or unsubscribed meanwhile: the entries stay pending and another instance claims them.
    if (!this.#active) return;
    const now = Date.now();
    for (const [id, fields] of live) {
      if (this.#held.has(id)) continue;
      const delivery: Delivery = {
        id,
        fields,
        attempt: counts.get(id) ?? 2,
        decoded: undefined,
        touched: now,
        running: false,
      };
      this.#held.set(id, delivery);
      if (delivery.attempt > this.#options.maxDeliveries) {
        this.#deadLetter(
          delivery,
          `delivered ${delivery.attempt - 1} times without an acknowledgement`,
          delivery.attempt - 1,
        );
        continue;
      }
      this.#buffer.push(delivery);
    }
    this.#pump();
  }

  async #deliveryCounts(first: string, last: string, count: number): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    try {
      const rows = await this.#host.consumerCommand().xpending(
        this.spec.stream,
        this.spec.group,
        first,
        last,
        count,
        this.#options.consumer,
      ) as [string, string, number, number][];
      for (const [id, , , delivered] of rows) counts.set(id, Number(delivered));
    } catch (error) {
      this.#options.logger.debug(`XPENDING on ${this.spec.stream}: ${errorMessage(error)}`);
    }
    return counts;
  }

  #scheduleClaim(delayMs: number): void {
    if (!this.#active) return;
    clearTimeout(this.#claimTimer);
    this.#claimTimer = setTimeout(() => this.#claim(), delayMs);
  }

  #claimInterval(): number {
    return Math.max(5, Math.floor(Math.min(this.#options.claimIdleMs, 5_000) / 2));
  }

  async #claim(): Promise<void> {
    this.#claimTimer = undefined;
    if (!this.#active || this.#claiming) return;
    const room = Math.min(this.#roomLeft(), this.#options.batchSize);
    if (room <= 0) return this.#scheduleClaim(this.#claimInterval());
    this.#claiming = true;
    let again = false;
    try {
      const reply = await this.#host.consumerCommand().xautoclaim(
        this.spec.stream,
        this.spec.group,
        this.#options.consumer,
        this.#options.claimIdleMs,
        this.#claimCursor,
        "COUNT",
        room,
      ) as [string, [string, string[] | null][], string[]?];
      this.#claimCursor = reply[0];
      const deleted = reply[2] ?? [];
      if (deleted.length > 0) {
        // Trimmed away while pending: XAUTOCLAIM has removed them; nothing is left to deliver.
        this.#host.counters.dropped += deleted.length;
        this.#options.logger.warn(
          `${deleted.length} pending entries of ${this.spec.stream} were trimmed before being handled (raise maxLen)`,
        );
      }
      const entries = reply[1].filter(([id]) => !this.#held.has(id));
      if (!this.#active) return;
      if (entries.length > 0) {
        this.#host.counters.claimed += entries.length;
        this.#options.logger.info(
          `claimed ${entries.length} idle entries of ${this.spec.stream} for ${this.spec.group}`,
        );
        await this.#takeRedelivered(entries);
      }
      again = this.#claimCursor !== "0-0";
    } catch (error) {
      const message = errorMessage(error);
      if (message.includes("NOGROUP")) {
        await this.ensureGroup("0").catch(() => {});
      } else if (this.#active) {
        this.#options.logger.debug(`XAUTOCLAIM on ${this.spec.stream}: ${message}`);
      }
    } finally {
      this.#claiming = false;
    }
    this.#scheduleClaim(again ? 0 : this.#claimInterval());
  }

  /** Keeps held entries fresh so no other instance claims what this one still works on. */
  #heartbeat(every: number): void {
    const now = Date.now();
    const stale: string[] = [];
    for (const delivery of this.#held.values()) {
      if (now - delivery.touched >= every) {
        delivery.touched = now;
        stale.push(delivery.id);
      }
    }
    if (stale.length === 0) return;
    this.#host.consumerCommand().xclaim(
      this.spec.stream,
      this.spec.group,
      this.#options.consumer,
      0,
      ...stale,
      "JUSTID",
    ).catch((error: unknown) => {
      this.#options.logger.debug(`XCLAIM heartbeat on ${this.spec.stream}: ${errorMessage(error)}`);
    });
  }

  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (this.#running < this.spec.concurrency && this.#buffer.length > 0) {
        const delivery = this.#buffer.shift()!;
        this.#run(delivery);
      }
    } finally {
      this.#pumping = false;
    }
    if (this.#running === 0 && this.#buffer.length === 0) this.#idle?.();
  }

  #run(delivery: Delivery): void {
    let decoded = delivery.decoded;
    if (decoded === undefined) {
      try {
        decoded = delivery.decoded = decodeEntry(delivery.fields);
      } catch (error) {
        this.#host.counters.errors++;
        this.#options.logger.error(
          `entry ${delivery.id} on ${this.spec.stream} cannot be decoded; dead-lettering it: ${
            errorMessage(error)
          }`,
        );
        this.#deadLetter(delivery, errorMessage(error), delivery.attempt);
        return;
      }
    }
    const message = decoded.message;
    const context: MessageContext = {
      channel: this.spec.channel,
      subscription: this.spec.name,
      messageId: describeMessage(message).id ?? delivery.id,
      headers: decoded.headers,
      correlationId: decoded.correlationId,
      replyTo: decoded.replyTo,
      attempt: delivery.attempt,
      signal: this.#handlerSignal.signal,
    };
    delivery.running = true;
    this.#running++;
    const generation = this.#generation;
    let result: unknown;
    try {
      result = this.spec.handler(message, context);
    } catch (error) {
      this.#failed(delivery, decoded, error);
      return;
    }
    if (result !== null && typeof (result as Promise<unknown>)?.then === "function") {
      (result as Promise<unknown>).then(
        (value) => {
          if (generation === this.#generation) this.#succeeded(delivery, decoded, value);
        },
        (error) => {
          if (generation === this.#generation) this.#failed(delivery, decoded, error);
          else this.#options.logger.debug(`abandoned handler "${this.spec.name}" failed`, error);
        },
      );
    } else {
      this.#succeeded(delivery, decoded, result);
    }
  }

  #finishRun(delivery: Delivery): void {
    delivery.running = false;
    this.#running--;
    this.#pump();
  }

  #succeeded(delivery: Delivery, decoded: DecodedEntry, result: unknown): void {
    this.#host.counters.consumed++;
    if (decoded.replyTo !== undefined) {
      let replied: Promise<void> | void = undefined;
      try {
        replied = this.#host.reply(decoded, result);
      } catch (error) {
        this.#options.logger.error(`reply to ${decoded.replyTo} failed: ${errorMessage(error)}`);
      }
      if (replied) {
        replied.then(undefined, (error) => {
          this.#options.logger.error(`reply to ${decoded.replyTo} failed: ${errorMessage(error)}`);
        }).finally(() => {
          this.#acks.add(delivery.id);
          this.#release(delivery.id);
          this.#finishRun(delivery);
        });
        return;
      }
    }
    this.#acks.add(delivery.id);
    this.#release(delivery.id);
    this.#finishRun(delivery);
  }

  #failed(delivery: Delivery, decoded: DecodedEntry, error: unknown): void {
    this.#host.counters.errors++;
    const described = describeMessage(decoded.message);
    reportFailure(this.#options.logger, this.#options.onError, {
      error,
      channel: this.spec.channel,
      subscription: this.spec.name,
      messageId: described.id ?? delivery.id,
      eventType: described.type,
      attempt: delivery.attempt,
    });
    delivery.running = false;
    this.#running--;
    if (error instanceof ValidationError || delivery.attempt >= this.#options.maxDeliveries) {
      this.#deadLetter(delivery, errorMessage(error), delivery.attempt);
    } else if (this.#active) {
      this.#host.counters.retried++;
      const { initial, max, factor } = this.#options.retryBackoff;
      const wait = Math.min(max, initial * factor ** (delivery.attempt - 1));
      delivery.attempt++;
      const timer = setTimeout(() => {
        this.#retryTimers.delete(timer);
        if (!this.#active) return;
        this.#buffer.unshift(delivery);
        this.#pump();
      }, wait);
      this.#retryTimers.set(timer, delivery);
    }
    // Stopping: the entry stays pending and is released to other instances.
    this.#pump();
  }

  #deadLetter(delivery: Delivery, error: string, attempts: number): void {
    const command = this.#host.consumerCommand();
    const trim = this.#options.maxLen > 0 ? ["MAXLEN", "~", this.#options.maxLen] : [];
    const fields = deadLetterFields({
      channel: this.spec.channel,
      group: this.spec.group,
      subscription: this.spec.name,
      entryId: delivery.id,
      attempts,
      error,
    }, delivery.fields);
    const transaction = command.multi();
    // deno-lint-ignore no-explicit-any
    (transaction as any).xadd(this.spec.deadLetterStream, ...trim, "*", ...fields);
    transaction.xack(this.spec.stream, this.spec.group, delivery.id);
    transaction.exec().then((results) => {
      const failure = results === null
        ? new Error("transaction aborted")
        : results.find(([e]) => e)?.[0];
      if (failure) throw failure;
      this.#host.counters.deadLettered++;
      this.#options.logger.warn(
        `entry ${delivery.id} of ${this.spec.stream} moved to ${this.spec.deadLetterStream} after ${attempts} attempt(s): ${error}`,
      );
      if (delivery.decoded) this.#host.replyFailure(delivery.decoded, error);
    }).catch((failure: unknown) => {
      this.#options.logger.error(
        `dead-lettering entry ${delivery.id} of ${this.spec.stream} failed; it stays pending: ${
          safeError(failure, this.#options.secrets).message
        }`,
      );
    }).finally(() => this.#release(delivery.id));
  }

  #release(id: string): void {
    this.#held.delete(id);
    if (this.#room !== undefined && this.#roomLeft() > 0) this.#room();
    if (this.#running === 0 && this.#buffer.length === 0) this.#idle?.();
  }
}

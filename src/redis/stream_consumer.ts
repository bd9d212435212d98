/**
 * One stream-mode subscription: the transport rules around the shared
 * {@linkcode HandlerRunner}. Entries come from its blocking reader and its
 * claim loop; success acknowledges them (in batches), a failure or a
 * `NackMessage` delivers them again after a backoff until `maxDeliveries`,
 * then dead-letters them, `RejectMessage` dead-letters them at once, and an
 * entry given back unhandled (a consumer stream cancelled) is released for
 * redelivery. A stop leaves what it did not handle pending and claimable.
 *
 * Attempts are handler starts, kept in Redis per group (see `attempts.ts`):
 * an entry that was running when its consumer died comes back as a suspect
 * and runs alone, so an event that kills its process cannot take the calls
 * beside it down too. With `idempotent`, an event handled already (a mark
 * set with its XACK) is acknowledged without running.
 *
 * @module
 */

import type { Redis } from "ioredis";
import type { Handler, MessageContext } from "../broker.ts";
import { CloudEvent } from "../event.ts";
import { HandlerRunner, type RunnerHost, type Unsettled } from "../handler_runner.ts";
import { RememberedKeys } from "../idempotency.ts";
import type { Reporter } from "../reporter.ts";
import { backoffDelay } from "../retry.ts";
import { deadline } from "../timers.ts";
import { AckBatcher } from "./ack_batcher.ts";
import {
  crashes,
  exhaustedReason,
  failuresField,
  parseRuns,
  runFields,
  sendNow,
} from "./attempts.ts";
import { Claimer } from "./claimer.ts";
import { deadLetter } from "./dead_letters.ts";
import { eventDigest } from "./dedupe.ts";
import { HeldEntries } from "./held_entries.ts";
import { decodeEntryInto } from "./entry_codec.ts";
import type { ResolvedRedisOptions } from "./options.ts";
import type { Replier } from "./request_reply.ts";
import { safeError } from "./secrets.ts";
import type { RedisCounters } from "./stats.ts";
import { StreamDelivery } from "./stream_delivery.ts";
import { type RawEntry, StreamReader } from "./stream_reader.ts";

/** What a consumer needs from its broker. */
export interface ConsumerHost {
  readonly options: ResolvedRedisOptions;
  readonly counters: RedisCounters;
  readonly reporter: Reporter;
  readonly replier: Replier;
  /** The broker's publishing connection: group creation goes there, ordered with publishes. */
  command(): Redis;
  /** The connection for acks, claims and dead letters, apart from the publishing flood. */
  consumerCommand(): Redis;
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
  /** Hash of handler starts per entry of the group. */
  readonly attemptsKey: string;
  /** What the handled marks of the group start with (`idempotent`). */
  readonly doneKeyPrefix: string;
  /** `idempotent`: how long an event stays marked handled (ms); `undefined` when off. */
  readonly idempotentTtl: number | undefined;
  /** Broadcast groups are created per instance and destroyed on a graceful stop. */
  readonly broadcast: boolean;
}

/** Extra time a stop gives Redis to confirm the last acks. */
const STOP_GRACE_MS = 1_000;

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Reads and handles the entries of one subscription's consumer group. */
export class StreamConsumer implements RunnerHost<StreamDelivery> {
  readonly spec: StreamSubscriptionSpec;
  readonly #host: ConsumerHost;
  readonly #options: ResolvedRedisOptions;
  readonly #counters: RedisCounters;
  readonly #reporter: Reporter;
  readonly #runner: HandlerRunner<StreamDelivery>;
  readonly #reader: StreamReader;
  readonly #claimer: Claimer;
  readonly #acks: AckBatcher;
  /** Room for one batch being handled while the next is read. */
  readonly #capacity: number;
  readonly #trim: readonly (string | number)[];
  /** Every entry this consumer holds: queued, running, waiting for a retry or a dead letter. */
  readonly #held = new HeldEntries<StreamDelivery>();
  readonly #retries = new Map<ReturnType<typeof setTimeout>, StreamDelivery>();
  /**
   * While a claim is in flight: entries settled here since it left. Redis
   * may have run the claim before their XACK, so its reply can still name them.
   */
  #settledWhileClaiming: Set<string> | undefined;
  /** Dead letters and releases in flight outside the runner. */
  readonly #settling = new Set<Promise<void>>();
  #room: (() => void) | undefined;
  readonly #handler: Handler;
  /** Handler calls not settled yet (the runner also counts workers waiting to start one). */
  #calls = 0;
  /** Bumped when a stop gives up on the calls in flight: they no longer count. */
  #callGeneration = 0;
  #drained: (() => void)[] = [];
  /** Set while a suspect entry waits for or holds the subscription alone. */
  #solo: Promise<void> | undefined;
  #releaseSolo: (() => void) | undefined;
  /** `idempotent`: events handled here lately, and the calls running per event. */
  readonly #handled: RememberedKeys | undefined;
  /** Events with a call running, and the copies waiting for its outcome. */
  readonly #runningKeys = new Map<string, (() => void)[] | undefined>();
  #groupReady: Promise<void> | undefined;
  #active = false;
  /**
   * A draining stop waits for the read in flight: what it returns was read by
   * this instance and is handled in the drain, as entries read before.
   */
  #draining = false;
  #closed = false;
  #stopping: Promise<void> | undefined;

  /** Creates the consumer; nothing happens before {@linkcode StreamConsumer.start}. */
  constructor(spec: StreamSubscriptionSpec, host: ConsumerHost) {
    this.spec = spec;
    this.#host = host;
    this.#options = host.options;
    this.#counters = host.counters;
    this.#reporter = host.reporter;
    this.#capacity = 2 * this.#options.batchSize + spec.concurrency;
    this.#trim = this.#options.maxLen > 0 ? ["MAXLEN", "~", this.#options.maxLen] : [];
    this.#handler = spec.handler;
    this.#handled = spec.idempotentTtl === undefined
      ? undefined
      : new RememberedKeys(spec.idempotentTtl);
    this.#runner = new HandlerRunner<StreamDelivery>({
      channel: spec.channel,
      subscription: spec.name,
      handler: this.#run,
      concurrency: spec.concurrency,
      reporter: host.reporter,
      host: this,
    });
    const entries = {
      room: () => this.#capacity - this.#held.size,
      takeRedelivered: (raw: RawEntry[]) => this.#takeRedelivered(raw),
      recreateGroup: () => this.ensureGroup("0"),
    };
    this.#reader = new StreamReader(
      this.#options,
      this.#reporter,
      {
        ...entries,
        whenRoom: () => this.#whenRoom(),
        takeNew: (raw) => this.#takeNew(raw),
        // Reading the history made those entries fresh again: the first claim no longer races
        // with it for them, which could run an entry twice once the first copy was handled.
        historyRead: () => {
          if (this.#active) this.#claimer.start();
        },
      },
      spec.stream,
      spec.group,
    );
    this.#claimer = new Claimer(
      this.#options,
      this.#reporter,
      this.#counters,
      {
        ...entries,
        holds: (id) =>
          this.#held.has(id) || this.#acks.acknowledging(id) ||
          this.#settledWhileClaiming?.has(id) === true,
        claiming: (inFlight) => {
          this.#settledWhileClaiming = inFlight ? new Set() : undefined;
        },
        trimmed: (ids) => {
          this.#dropTrimmed(ids.length);
          // XAUTOCLAIM removed them from the pending list; their recorded runs go too.
          this.#host.consumerCommand().hdel(this.spec.attemptsKey, ...runFields(ids)).catch(
            () => {},
          );
        },
        held: () => this.#held,
        command: () => host.consumerCommand(),
      },
      spec.stream,
      spec.group,
    );
    this.#acks = new AckBatcher(
      () => host.consumerCommand(),
      {
        stream: spec.stream,
        group: spec.group,
        attemptsKey: spec.attemptsKey,
        doneTtl: spec.idempotentTtl ?? 0,
      },
      this.#options.batchSize,
      (ids, error) => {
        const settled = this.#settledWhileClaiming;
        if (settled !== undefined) { for (const id of ids) settled.add(id); }
        if (error === undefined) return;
        this.#reporter.log(
          "warn",
          `XACK of ${ids.length} entries on ${spec.stream} failed; they stay pending and will be delivered again: ${
            safeError(error, this.#options.secrets).message
          }`,
        );
      },
    );
  }

  /** Entries read and waiting for a handler slot. */
  get queued(): number {
    return this.#runner.queued;
  }

  /** Handler calls in flight. */
  get running(): number {
    return this.#runner.running;
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

  /**
   * Waits for the group, connects the blocking connection and starts reading;
   * claiming starts once the consumer's own history has been read.
   */
  async start(): Promise<void> {
    if (this.#active || this.#closed) return;
    await this.#stopping;
    this.#runner.renew();
    await (this.#groupReady ?? this.ensureGroup());
    this.#active = true;
    let reading = false;
    try {
      // A stop or an unsubscribe while connecting wins: nothing is left reading.
      reading = await this.#reader.start(() => this.#closed || !this.#active);
    } finally {
      if (!reading) this.#active = false;
    }
  }

  /**
   * Stops reading and claiming at once (synchronously), lets the running
   * entries, and with `drain` the queued ones, finish until the time `until`
   * (then aborts their signal), acknowledges what succeeded, and makes what is
   * left claimable by other instances at once. Without `drain` (an
   * unsubscribe) queued entries are not handled here and the signal fires
   * once the running calls are done.
   */
  stop(until: number, drain = true): Promise<void> {
    if (this.#stopping !== undefined) return this.#stopping;
    if (!this.#active) return Promise.resolve();
    this.#stopping = this.#stop(until, drain).finally(() => {
      this.#stopping = undefined;
    });
    return this.#stopping;
  }

  async #stop(until: number, drain: boolean): Promise<void> {
    this.#active = false;
    this.#draining = drain;
    this.#claimer.stop();
    for (const timer of this.#retries.keys()) clearTimeout(timer);
    // Entries waiting for a retry stay held: they are released below.
    this.#retries.clear();
    if (!drain) this.#runner.clear();
    const reading = this.#reader.stop();
    this.#room?.();
    await reading.finally(() => (this.#draining = false));
    const runner = this.#runner;
    const drained = await deadline(
      runner.whenIdle().then(() => true),
      until - Date.now(),
      () => false,
    );
    if (!drained) {
      runner.clear();
      const abandoned = runner.abandon("the broker stop timed out");
      // Abandoned calls no longer hold back an entry that must run alone, nor copies of their event.
      this.#callGeneration++;
      this.#calls = 0;
      this.#notifyDrained();
      const releaseSolo = this.#releaseSolo;
      this.#solo = this.#releaseSolo = undefined;
      releaseSolo?.();
      const waiting = [...this.#runningKeys.values()];
      this.#runningKeys.clear();
      for (const resolvers of waiting) for (const resolve of resolvers ?? []) resolve();
      if (abandoned > 0) {
        this.#reporter.log(
          "warn",
          `${abandoned} running handler call(s) of "${this.spec.name}" abandoned: the stop timed out; their entries will be delivered again`,
        );
      }
    } else if (!drain) {
      runner.abortWhenIdle("subscription closed");
    }
    // Redis may be unreachable: acks and cleanup get what is left of the timeout, plus a grace.
    const cleanup = (async () => {
      await this.#acks.flush();
      await Promise.all(this.#settling);
      await this.#releaseLeftovers();
      await this.#cleanupGroup();
    })();
    const gaveUp = await deadline(
      cleanup.then(() => false),
      Math.max(0, until - Date.now()) + STOP_GRACE_MS,
      () => true,
    );
    if (gaveUp) {
      this.#reporter.log(
        "warn",
        `Redis did not confirm the last acks of ${this.spec.stream} in time; those entries will be delivered again`,
      );
    }
  }

  /** Entries not handled by stop time: idle them past claimIdleMs so a live instance takes them now. */
  async #releaseLeftovers(): Promise<void> {
    const left = this.#held.clear().map((delivery) => delivery.id);
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
      this.#reporter.log(
        "debug",
        `could not release ${left.length} entries of ${this.spec.stream}: ${errorMessage(error)}`,
      );
    }
  }

  async #cleanupGroup(): Promise<void> {
    const command = this.#host.consumerCommand();
    try {
      if (this.spec.broadcast) {
        await command.xgroup("DESTROY", this.spec.stream, this.spec.group);
        // The group's start counts go with it.
        await command.del(this.spec.attemptsKey);
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
      this.#reporter.log(
        "debug",
        `consumer cleanup on ${this.spec.stream}: ${errorMessage(error)}`,
      );
    }
  }

  #whenRoom(): Promise<void> {
    if (!this.#active || this.#held.size < this.#capacity) return Promise.resolve();
    return new Promise<void>((resolve) => (this.#room = resolve));
  }

  #forget(delivery: StreamDelivery): void {
    this.#held.remove(delivery);
    this.#settledWhileClaiming?.add(delivery.id);
    const room = this.#room;
    if (room !== undefined) {
      this.#room = undefined;
      room();
    }
  }

  /** Holds a read entry and decodes it; an undecodable one is dead-lettered and not returned. */
  #hold(id: string, fields: string[], attempt: number, now: number): StreamDelivery | undefined {
    const delivery = new StreamDelivery(
      this.spec,
      id,
      fields,
      attempt,
      now,
      this.#runner.signal,
    );
    this.#held.add(delivery);
    try {
      decodeEntryInto(fields, delivery);
    } catch (error) {
      this.#reporter.log(
        "error",
        `entry ${id} on ${this.spec.stream} cannot be decoded; dead-lettering it: ${
          errorMessage(error)
        }`,
      );
      this.#track(this.#deadLetter(delivery, errorMessage(error), attempt, undefined));
      return undefined;
    }
    return delivery;
  }

  /**
   * Entries of a ">" read: first deliveries, never held before. While
   * stopping they are only held, for release.
   */
  #takeNew(entries: RawEntry[]): void {
    const now = Date.now();
    const runner = this.#runner;
    const active = this.#active || this.#draining;
    const checked: StreamDelivery[] | undefined = this.#handled === undefined ? undefined : [];
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i];
      const id = entry[0];
      const fields = entry[1];
      if (fields === null) continue;
      if (!active) {
        this.#held.add(new StreamDelivery(this.spec, id, fields, 1, now, runner.signal));
        continue;
      }
      const delivery = this.#hold(id, fields, 1, now);
      if (delivery === undefined) continue;
      if (checked === undefined) runner.push(delivery);
      else checked.push(delivery);
    }
    if (checked !== undefined && checked.length > 0) {
      this.#track(
        this.#checkHandled(checked).then(() => {
          if (!this.#active && !this.#draining) return;
          for (const delivery of checked) runner.push(delivery);
        }),
      );
    }
  }

  /**
   * `idempotent`: asks Redis which of these events were handled already (by
   * any instance); those are acknowledged without running.
   */
  async #checkHandled(deliveries: StreamDelivery[]): Promise<void> {
    const keys: string[] = [];
    const marked: StreamDelivery[] = [];
    for (const delivery of deliveries) {
      const message = delivery.message;
      if (!(message instanceof CloudEvent)) continue;
      delivery.doneKey = `${this.spec.doneKeyPrefix}${eventDigest(message)}`;
      keys.push(delivery.doneKey);
      marked.push(delivery);
    }
    if (keys.length === 0) return;
    try {
      const done = await this.#host.consumerCommand().mget(...keys);
      for (let i = 0; i < marked.length; i++) marked[i].handledBefore = done[i] !== null;
    } catch (error) {
      // Unknown: run them; the marks of this instance still catch its own duplicates.
      this.#reporter.log(
        "debug",
        `MGET of handled marks on ${this.spec.stream}: ${errorMessage(error)}`,
      );
    }
  }

  /** Counts and reports pending entries that the stream's trimming removed before any handler ran. */
  #dropTrimmed(count: number): void {
    this.#counters.dropped += count;
    this.#reporter.drop(
      this.spec.channel,
      this.spec.name,
      count,
      `pending entries of ${this.spec.stream} were trimmed before being handled (raise maxLen)`,
    );
  }

  /**
   * Entries delivered before (own history or claimed). Their earlier runs
   * come from the attempts hash: an entry whose handler starts ran out is
   * dead-lettered, one that was running when its consumer died runs alone,
   * and all of them run before newly read entries.
   */
  async #takeRedelivered(entries: RawEntry[]): Promise<void> {
    const live: [string, string[]][] = [];
    const gone: string[] = [];
    for (const [id, fields] of entries) {
      if (this.#held.has(id)) continue;
      if (fields === null) gone.push(id);
      else live.push([id, fields]);
    }
    if (gone.length > 0) {
      // Trimmed away before anyone handled them: nothing is left to deliver.
      this.#dropTrimmed(gone.length);
      const transaction = this.#host.consumerCommand().multi();
      transaction.xack(this.spec.stream, this.spec.group, ...gone);
      transaction.hdel(this.spec.attemptsKey, ...runFields(gone));
      await transaction.exec().catch(() => {});
    }
    if (live.length === 0) return;
    const runs = await this.#earlierRuns(live.map(([id]) => id));
    // Stopped or unsubscribed meanwhile: the entries stay pending and another instance claims them.
    if (!this.#active) return;
    const now = Date.now();
    const ready: StreamDelivery[] = [];
    for (let i = 0; i < live.length; i++) {
      const [id, fields] = live[i];
      if (this.#held.has(id)) continue;
      const earlier = parseRuns(runs, i);
      const delivery = this.#hold(id, fields, earlier.starts + 1, now);
      if (delivery === undefined) continue;
      delivery.runs = earlier;
      delivery.redelivered = true;
      if (earlier.starts >= this.#options.maxDeliveries) {
        this.#track(
          this.#deadLetter(delivery, exhaustedReason(earlier), earlier.starts, undefined),
        );
        continue;
      }
      delivery.suspect = crashes(earlier) > 0;
      ready.push(delivery);
    }
    if (this.#handled !== undefined) await this.#checkHandled(ready);
    if (!this.#active) return;
    // Oldest first, ahead of every newly read entry.
    for (let i = ready.length - 1; i >= 0; i--) this.#runner.pushFront(ready[i]);
  }

  /** HMGET of the starts and failures of `ids`; unknown (none) when Redis does not answer. */
  async #earlierRuns(ids: string[]): Promise<(string | null)[]> {
    try {
      return await this.#host.consumerCommand().hmget(this.spec.attemptsKey, ...runFields(ids));
    } catch (error) {
      this.#reporter.log(
        "debug",
        `HMGET of attempts on ${this.spec.stream}: ${errorMessage(error)}`,
      );
      return [];
    }
  }

  /**
   * The handler the runner calls. A first delivery runs at once, its start
   * written with the next batch of starts; any other start is written (and
   * counted) before the handler runs; a suspect entry waits until no other
   * call of the subscription runs and holds the others back while it runs.
   * An `idempotent` subscription skips an event handled already and runs
   * copies of one event one after the other.
   */
  readonly #run = (message: unknown, context: MessageContext): unknown => {
    const delivery = context as StreamDelivery;
    if (this.#solo !== undefined || delivery.attempt !== 1 || delivery.redelivered) {
      return this.#runChecked(delivery, message);
    }
    const key = delivery.doneKey;
    if (key !== undefined) {
      if (this.#isHandled(delivery, key)) return undefined;
      if (this.#runningKeys.has(key)) return this.#runChecked(delivery, message);
      this.#runningKeys.set(key, undefined);
    }
    this.#acks.started(delivery);
    return this.#call(delivery, message);
  };

  async #runChecked(delivery: StreamDelivery, message: unknown): Promise<unknown> {
    if (delivery.suspect) return await this.#runAlone(delivery, message);
    while (this.#solo !== undefined) await this.#solo;
    return await this.#runOnce(delivery, message);
  }

  async #runAlone(delivery: StreamDelivery, message: unknown): Promise<unknown> {
    while (this.#solo !== undefined) await this.#solo;
    let release!: () => void;
    const solo = this.#solo = new Promise<void>((resolve) => (release = resolve));
    this.#releaseSolo = release;
    try {
      while (this.#calls > 0) await new Promise<void>((resolve) => this.#drained.push(resolve));
      // The calls before it are settled: their acknowledgements reach Redis before a handler
      // that may end the process runs, so they are not taken for its accomplices.
      await this.#acks.flush();
      return await this.#runOnce(delivery, message);
    } finally {
      // A stop that gave up on this call has released the others already.
      if (this.#solo === solo) {
        this.#solo = undefined;
        this.#releaseSolo = undefined;
      }
      release();
    }
  }

  /** Skips an event handled already (`idempotent`), else records the start and runs. */
  async #runOnce(delivery: StreamDelivery, message: unknown): Promise<unknown> {
    const key = delivery.doneKey;
    if (key !== undefined) {
      for (;;) {
        if (this.#isHandled(delivery, key)) return undefined;
        if (!this.#runningKeys.has(key)) break;
        // A copy of the same event runs: its outcome decides.
        await new Promise<void>((resolve) => {
          const waiting = this.#runningKeys.get(key);
          if (waiting === undefined) this.#runningKeys.set(key, [resolve]);
          else waiting.push(resolve);
        });
      }
      this.#runningKeys.set(key, undefined);
    }
    // Counted as a call from here: an entry that must run alone waits for it, not only
    // for calls already in the handler.
    this.#callBegins(delivery);
    await this.#recordStart(delivery);
    return await this.#call(delivery, message);
  }

  /** `idempotent`: whether the event was handled; such a delivery is acknowledged without a mark. */
  #isHandled(delivery: StreamDelivery, key: string): boolean {
    if (!delivery.handledBefore && !this.#handled!.has(key, Date.now())) return false;
    delivery.doneKey = undefined;
    return true;
  }

  /** `idempotent`: the call on this event ended; copies waiting for it look again. */
  #keyReleased(delivery: StreamDelivery): void {
    const key = delivery.doneKey;
    if (key === undefined || !this.#runningKeys.has(key)) return;
    const waiting = this.#runningKeys.get(key);
    this.#runningKeys.delete(key);
    if (waiting !== undefined) { for (const resolve of waiting) resolve(); }
  }

  /** Counts a start that is not a first delivery, before the handler runs. */
  async #recordStart(delivery: StreamDelivery): Promise<void> {
    if (delivery.attempt === 1 && delivery.runs.starts === 0 && !delivery.redelivered) {
      this.#acks.started(delivery);
      return;
    }
    try {
      delivery.attempt = Number(
        await sendNow(
          this.#host.consumerCommand(),
          "hincrby",
          this.spec.attemptsKey,
          delivery.id,
          1,
        ),
      );
    } catch (error) {
      this.#reporter.log(
        "debug",
        `HINCRBY of attempts on ${this.spec.stream}: ${errorMessage(error)}`,
      );
    }
    delivery.mark = "written";
  }

  /**
   * Calls the handler, counting the calls in flight until they are settled
   * (acknowledged or handed to a retry), not merely returned: an entry that
   * runs alone starts after its predecessors' acknowledgements were queued.
   */
  #call(delivery: StreamDelivery, message: unknown): unknown {
    if (delivery.callGeneration === undefined) this.#callBegins(delivery);
    return this.#handler(message, delivery);
  }

  #callBegins(delivery: StreamDelivery): void {
    delivery.callGeneration = this.#callGeneration;
    this.#calls++;
  }

  /** The call of `delivery`, if any, is settled. */
  #callSettled(delivery: StreamDelivery): void {
    const generation = delivery.callGeneration;
    if (generation === undefined) return;
    delivery.callGeneration = undefined;
    if (generation !== this.#callGeneration) return;
    if (--this.#calls > 0) return;
    this.#notifyDrained();
  }

  #notifyDrained(): void {
    if (this.#drained.length === 0) return;
    const waiters = this.#drained;
    this.#drained = [];
    for (const resolve of waiters) resolve();
  }

  /** A failed or refused run: written so a later delivery does not take it for a crash. */
  #recordFailure(delivery: StreamDelivery): void {
    // It ended on its own: no longer a suspect of taking its consumer down.
    delivery.suspect = false;
    if (delivery.mark === "none") return;
    if (delivery.mark === "pending") this.#acks.writeStarts();
    sendNow(
      this.#host.consumerCommand(),
      "hincrby",
      this.spec.attemptsKey,
      failuresField(delivery.id),
      1,
    )
      .catch((error: unknown) => {
        this.#reporter.log(
          "debug",
          `HINCRBY of failures on ${this.spec.stream}: ${errorMessage(error)}`,
        );
      });
  }

  #track(settling: Promise<void>): void {
    this.#settling.add(settling);
    settling.finally(() => this.#settling.delete(settling));
  }

  /** The handler succeeded: acknowledge, after the reply when the entry is a request. */
  succeeded(delivery: StreamDelivery, result: unknown): void | Promise<void> {
    this.#counters.consumed++;
    if (delivery.replyTo !== undefined) {
      const replied = this.#host.replier.reply(delivery, this.spec.name, result);
      if (replied !== undefined) {
        return replied.then(() => {
          this.#ack(delivery);
          this.#callSettled(delivery);
        });
      }
    }
    this.#ack(delivery);
    this.#callSettled(delivery);
  }

  #ack(delivery: StreamDelivery): void {
    const key = delivery.doneKey;
    if (key !== undefined) {
      this.#handled!.add(key, Date.now());
      this.#keyReleased(delivery);
    }
    // Skipped or not, an entry delivered before may have runs recorded: remove them with the XACK.
    if (delivery.redelivered && delivery.mark === "none") delivery.mark = "written";
    this.#acks.add(delivery, key);
    this.#forget(delivery);
  }

  /** The call ended otherwise: retry, dead-letter, or release. */
  unsettled(delivery: StreamDelivery, outcome: Unsettled): void | Promise<void> {
    this.#callSettled(delivery);
    this.#keyReleased(delivery);
    switch (outcome.kind) {
      case "error":
        this.#counters.errors++;
        this.#recordFailure(delivery);
        if (delivery.attempt < this.#options.maxDeliveries) {
          return this.#retry(delivery, backoffDelay(this.#options.retryBackoff, delivery.attempt));
        }
        return this.#deadLetter(
          delivery,
          errorMessage(outcome.error),
          delivery.attempt,
          outcome.error,
        );
      case "nack":
        this.#recordFailure(delivery);
        if (delivery.attempt < this.#options.maxDeliveries) {
          return this.#retry(
            delivery,
            outcome.delay ?? backoffDelay(this.#options.retryBackoff, delivery.attempt),
          );
        }
        return this.#deadLetter(
          delivery,
          `refused (NackMessage) on each of its ${delivery.attempt} deliveries`,
          delivery.attempt,
          outcome.error,
        );
      case "reject":
        return this.#deadLetter(
          delivery,
          `rejected: ${outcome.reason}`,
          delivery.attempt,
          outcome.error,
        );
      case "release":
        return this.#release(delivery);
    }
  }

  /** Delivers again after `wait` ms; while stopping the entry stays pending, released by the stop. */
  #retry(delivery: StreamDelivery, wait: number): void {
    if (!this.#active) return;
    this.#counters.retried++;
    delivery.attempt++;
    const timer = setTimeout(() => {
      this.#retries.delete(timer);
      if (this.#active) this.#runner.pushFront(delivery);
    }, wait);
    this.#retries.set(timer, delivery);
  }

  /**
   * Moves an entry to the dead-letter stream (acknowledging it) and tells a
   * requester its request failed. `error` is what the requester learns; none
   * for entries that never reached the handler.
   */
  async #deadLetter(
    delivery: StreamDelivery,
    reason: string,
    attempts: number,
    error: unknown,
  ): Promise<void> {
    const spec = this.spec;
    // A start still waiting to be written is dropped: the record goes with the entry.
    this.#acks.settle(delivery);
    try {
      await deadLetter(
        this.#host.consumerCommand(),
        {
          stream: spec.stream,
          deadLetterStream: spec.deadLetterStream,
          channel: spec.channel,
          group: spec.group,
          subscription: spec.name,
          entryId: delivery.id,
          attempts,
          error: reason,
          attemptsKey: spec.attemptsKey,
        },
        delivery.fields,
        this.#trim,
      );
    } catch (failure) {
      this.#reporter.log(
        "error",
        `dead-lettering entry ${delivery.id} of ${spec.stream} failed; it stays pending: ${
          safeError(failure, this.#options.secrets).message
        }`,
      );
      this.#forget(delivery);
      return;
    }
    this.#counters.deadLettered++;
    this.#reporter.log(
      "warn",
      `entry ${delivery.id} of ${spec.stream} moved to ${spec.deadLetterStream} after ${attempts} attempt(s): ${reason}`,
    );
    this.#forget(delivery);
    if (delivery.replyTo !== undefined) {
      this.#host.replier.fail(delivery, spec.name, error ?? new Error(reason));
    }
  }

  /**
   * Gives an entry back unhandled: it stays pending, idle past `claimIdleMs`
   * so it is delivered again at once, and its start is taken back so the
   * next delivery carries the same attempt number.
   */
  async #release(delivery: StreamDelivery): Promise<void> {
    this.#forget(delivery);
    const command = this.#host.consumerCommand();
    if (this.#acks.settle(delivery)) {
      sendNow(command, "hincrby", this.spec.attemptsKey, delivery.id, -1).catch(() => {});
    }
    try {
      await command.xclaim(
        this.spec.stream,
        this.spec.group,
        this.#options.consumer,
        0,
        delivery.id,
        "IDLE",
        this.#options.claimIdleMs,
        "RETRYCOUNT",
        delivery.attempt - 1,
        "JUSTID",
      );
    } catch (error) {
      this.#reporter.log(
        "debug",
        `could not release entry ${delivery.id} of ${this.spec.stream}: ${errorMessage(error)}`,
      );
    }
  }
}

/**
 * The publish path of the Redis broker: checks the channel and options,
 * encodes the message, refuses oversize ones, writes it (XADD, or PUBLISH in
 * pub/sub mode and for replies sent by hand) and bounds the wait for Redis
 * with `publishTimeout`.
 *
 * Publishes made in one turn of the event loop go out as one ioredis
 * pipeline, settled from its result list: one write, one deadline and no
 * promise of ioredis's own per publish, which is most of what a publish
 * costs the client. A batch (`publishAll`) is checked and encoded whole
 * before any of it is written, then goes into that pipeline as one
 * `MULTI`/`EXEC` transaction per node-bound pipeline (one per channel on a
 * cluster).
 *
 * On a cluster with `dedupeWindow`, each batch keeps its publishes as
 * prepared: a script call Redis refuses while the channel's slot moves to
 * another node (`TRYAGAIN` until the slot's last key moved) did not run, and
 * is sent again after a backoff until `publishTimeout`.
 *
 * @module
 */

import type { ChainableCommander, Cluster, Redis } from "ioredis";
import { setImmediate } from "node:timers";
import { checkBatch, entryError } from "../batch_entries.ts";
import type { BatchEntry, PublishOptions } from "../broker.ts";
import { BrokerError, InvalidArgumentError } from "../errors.ts";
import { CloudEvent } from "../event.ts";
import { checkChannel, checkPublishOptions } from "../handler_support.ts";
import { DeadlineQueue } from "./deadline_queue.ts";
import { encodeEntry, entryBytes, payloadText, toPubSubText } from "./entry_codec.ts";
import { DEDUPE_XADD, DEDUPE_XADD_LUA, eventDigest } from "./dedupe.ts";
import { pubsubKey, replyKeyPrefix, seenKey, streamKey } from "./keys.ts";
import type { ResolvedRedisOptions } from "./options.ts";
import { safeError } from "./secrets.ts";
import { movingRefusal, movingRetryDelay } from "./slot_moving.ts";
import type { RedisCounters } from "./stats.ts";

/** Channels whose key is remembered; beyond it keys are built per call. */
const MAX_CACHED_CHANNELS = 10_000;

type PipelineResult = [error: Error | null, reply: unknown][] | null;

/** Times a batch is sent again after its slot moved. */
const MAX_MOVED_RETRIES = 3;

/** Whether every command but the last (WAIT) was redirected: the slot moved. */
function moved(results: PipelineResult): boolean {
  if (results === null || results.length < 2) return false;
  for (let i = 0; i < results.length - 1; i++) {
    const error = results[i][0];
    if (error === null || !/^(MOVED|ASK) /.test(error.message)) return false;
  }
  return true;
}

/**
 * Queues `MULTI` in a pipeline. ioredis's pipelines have `multi()` (their
 * types omit it); it marks the commands that follow as part of the
 * transaction, so a connection lost halfway aborts them instead of sending
 * them again outside it.
 */
function queueMulti(pipeline: ChainableCommander): void {
  (pipeline as unknown as { multi(): unknown }).multi();
}

/**
 * Queues `EXEC` in a pipeline where `multi()` was called: ioredis's `exec()`
 * then adds the command instead of sending the pipeline.
 */
function queueExec(pipeline: ChainableCommander): void {
  void pipeline.exec();
}

/**
 * The results of a pipeline with `MULTI`/`EXEC` blocks as if each command
 * inside had run on its own: `EXEC`'s answer for each, or, when `EXEC` was
 * refused (nothing ran), the command's own refusal when queued, else
 * `EXEC`'s error.
 */
function unwrapTransactions(
  results: PipelineResult,
  transactions: readonly Transaction[],
): PipelineResult {
  if (results === null) return null;
  const out: [Error | null, unknown][] = [];
  let at = 0;
  for (const { start, commands } of transactions) {
    const exec = start + commands + 1;
    if (exec >= results.length) return null;
    for (; at < start; at++) out.push(results[at]);
    const [execError, replies] = results[exec];
    for (let i = 0; i < commands; i++) {
      const [queueError] = results[start + 1 + i];
      if (execError || !Array.isArray(replies)) {
        out.push([queueError ?? execError ?? new Error("EXEC gave no replies"), null]);
        continue;
      }
      const reply: unknown = replies[i];
      out.push(reply instanceof Error ? [reply, null] : [null, reply]);
    }
    at = exec + 1;
  }
  for (; at < results.length; at++) out.push(results[at]);
  return out;
}

/** What became of one publish: its failure (`undefined` when written) and its command's reply. */
type Outcome = [failure: unknown, reply: unknown];

/**
 * The outcome of each publish of a batch, read from its results as
 * {@linkcode Publisher} settles them (`spans`: publishes per command, a
 * script call negative); `undefined` when the results do not match.
 */
function publishOutcomes(
  results: readonly [Error | null, unknown][],
  spans: readonly number[] | undefined,
  size: number,
): Outcome[] | undefined {
  if (spans === undefined) {
    if (results.length !== size) return undefined;
    return results.map(([error, reply]) => [error ?? undefined, reply]);
  }
  if (results.length !== spans.length) return undefined;
  const outcomes: Outcome[] = [];
  for (let i = 0; i < results.length; i++) {
    const [error, reply] = results[i];
    const script = spans[i] < 0;
    const span = script ? -spans[i] : spans[i];
    for (let j = 0; j < span; j++) {
      // A script call answers per publish: an entry id, 0 (written before) or "ERR ...".
      const answer = script && Array.isArray(reply) ? reply[j] : reply;
      const failure = error ??
        (typeof answer === "string" && answer.startsWith("ERR ") ? answer.slice(4) : undefined);
      outcomes.push([failure, reply]);
    }
  }
  return outcomes.length === size ? outcomes : undefined;
}

/** Whether `failure` is a transaction's EXEC refused for another command's refusal. */
function aborted(failure: unknown): boolean {
  return failure instanceof Error && failure.message.startsWith("EXECABORT");
}

/**
 * Which publishes to send again because Redis refused them while their slot
 * moved (they did not run); `undefined` when none. A transaction's
 * publishes go again together, only when one was refused so and every other
 * was refused so too or only aborted with it.
 */
function refusedWhileMoving(
  outcomes: readonly Outcome[],
  transactions: readonly Transaction[] | undefined,
): boolean[] | undefined {
  const again = outcomes.map(([failure]) => movingRefusal(failure));
  for (const { from, to } of transactions ?? []) {
    let moving = false;
    let otherwise = false;
    for (let i = from; i < to; i++) {
      const failure = outcomes[i][0];
      if (movingRefusal(failure)) moving = true;
      else if (!aborted(failure)) otherwise = true;
    }
    for (let i = from; i < to; i++) again[i] = moving && !otherwise;
  }
  return again.includes(true) ? again : undefined;
}

/** A pipeline on a connection where the de-duplicating publish script is defined. */
type DedupePipeline = ChainableCommander & {
  [DEDUPE_XADD](...args: (string | number)[]): ChainableCommander;
};

/** Connections the de-duplicating publish script is defined on. */
const scripted = new WeakSet<Redis>();

/** Most de-duplicated publishes one script call writes: it blocks Redis while it runs. */
const MAX_DEDUPE_GROUP = 256;

/** De-duplicated publishes to one stream, written by one script call. */
interface DedupeGroup {
  readonly stream: string;
  /** The stream, then one `seen` key per publish. */
  readonly keys: string[];
  /** Window, MAXLEN, then per publish its field count and fields. */
  readonly args: (string | number)[];
  size: number;
}

/** One message checked and encoded, ready to be written. */
type Write =
  | {
    readonly kind: "xadd";
    readonly channel: string;
    readonly key: string;
    readonly fields: string[];
  }
  | {
    readonly kind: "dedupe";
    readonly channel: string;
    readonly key: string;
    readonly fields: string[];
    /** Its `seen` key. */
    readonly seen: string;
  }
  | {
    readonly kind: "publish";
    readonly channel: string;
    readonly key: string;
    readonly text: string;
  };

/**
 * A `MULTI`/`EXEC` block of a pipeline: where its `MULTI` is, the commands
 * inside, and the publishes it holds (`from` up to, not including, `to`).
 */
interface Transaction {
  readonly start: number;
  commands: number;
  readonly from: number;
  to: number;
}

/** The publishes of one turn of the event loop, written as one pipeline. */
class Batch {
  readonly client: Redis;
  pipeline: ChainableCommander;
  /**
   * The commands written, kept on a cluster with `replicas` only: a WAIT in
   * the pipeline stops ioredis from re-sending it after MOVED (the slot
   * moved, e.g. in a failover), so the publisher does.
   */
  replay: ((pipeline: ChainableCommander) => void)[] | undefined;
  /** Whether it holds a stream write (what replicas must acknowledge). */
  writes = false;
  resolves: ((value: number | undefined) => void)[] = [];
  rejects: ((error: Error) => void)[] = [];
  channels: string[] = [];
  /** Whether each publish wants the number of receivers. */
  counts: boolean[] = [];
  /**
   * Each publish as prepared, kept on a cluster with `dedupeWindow` only:
   * what Redis refuses while its slot moves is written again from these.
   */
  sources: Write[] | undefined;
  /** Times publishes of this batch were sent again while their slot moved. */
  resends = 0;
  /** Redis's last refusal of a publish sent again, named if the deadline passes. */
  lastRefusal: string | undefined = undefined;
  /** Timer of the next resend. */
  resendTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  /**
   * Publishes per pipeline command once a script call covers several (a
   * negative count marks a script call); else one each.
   */
  spans: number[] | undefined = undefined;
  /** De-duplicated publishes not in the pipeline yet. */
  group: DedupeGroup | undefined = undefined;
  /** The transactions in the pipeline, in order. */
  transactions: Transaction[] | undefined = undefined;
  /** The transaction commands are added to now, until its `EXEC`. */
  open: Transaction | undefined = undefined;
  /** Set once the batch is settled (by Redis, or by its deadline). */
  settled = false;
  ticket = -1;

  constructor(client: Redis, replayable: boolean, resendable: boolean) {
    this.client = client;
    this.pipeline = client.pipeline();
    this.replay = replayable ? [] : undefined;
    this.sources = resendable ? [] : undefined;
  }

  get size(): number {
    return this.resolves.length;
  }
}

/** Writes messages to Redis for one broker. */
export class Publisher {
  readonly #options: ResolvedRedisOptions;
  readonly #counters: RedisCounters;
  readonly #deadlines: DeadlineQueue<Batch>;
  readonly #replyPrefix: string;
  /** Validated channels and the key each publishes to. */
  readonly #keys = new Map<string, string>();
  readonly #stream: boolean;
  readonly #maxLen: number;
  readonly #maxBytes: number;
  /** `dedupeWindow` in ms; 0 writes every publish. */
  readonly #dedupeWindow: number;
  readonly #sharded: boolean;
  readonly #replicas: number;
  /**
   * The open batches of this turn: one on a single node; one per key on a
   * cluster, since a pipeline must stay on the node owning its keys.
   */
  readonly #batches = new Map<string, Batch>();
  #inFlight = 0;
  #settledWaiters: (() => void)[] = [];

  /** Creates the publish path of a broker. */
  constructor(options: ResolvedRedisOptions, counters: RedisCounters) {
    this.#options = options;
    this.#counters = counters;
    this.#replyPrefix = replyKeyPrefix(options.keyPrefix);
    this.#stream = options.mode === "stream";
    this.#maxLen = options.maxLen;
    this.#maxBytes = options.maxMessageBytes;
    this.#dedupeWindow = options.dedupeWindow;
    this.#sharded = options.cluster !== undefined;
    this.#replicas = options.replicas;
    const { publishTimeout, maskedUrl } = options;
    this.#deadlines = new DeadlineQueue(
      publishTimeout,
      (batch) =>
        this.#fail(batch, (channel) =>
          new BrokerError(
            `publish to "${channel}" was not accepted by Redis at ${maskedUrl} within ${publishTimeout} ms${
              batch.lastRefusal === undefined
                ? ""
                : ` (its slot was moving; last answer: ${batch.lastRefusal})`
            }`,
          )),
    );
  }

  /** Publishes sent and not yet confirmed by Redis. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Resolves once no publish waits for Redis. */
  whenSettled(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#settledWaiters.push(resolve));
  }

  /** Rejects every publish still waiting (the connection is closing). */
  expireAll(): void {
    this.#deadlines.expireAll();
  }

  /**
   * Writes `message` to `channel` on `client`. Resolves with the number of
   * receivers (1 for a stream) when `count`, else with `undefined`; rejects
   * with `InvalidArgumentError` before sending anything when the channel,
   * options or message are wrong, and with `BrokerError` when Redis refuses
   * it or does not accept it within `publishTimeout`.
   */
  publish(
    client: Redis,
    message: unknown,
    channel: string,
    options: PublishOptions | undefined,
    count: boolean,
  ): Promise<number | undefined> {
    try {
      const key = this.#keys.get(channel) ?? this.#keyOf(channel);
      // A plain JSON message without options is one field: no field list to build.
      if (
        options === undefined && this.#stream && key !== channel &&
        !(message instanceof CloudEvent) && !(message instanceof Uint8Array)
      ) {
        const json = payloadText(message);
        const fields = ["payload", json];
        if (json.length * 3 > this.#maxBytes) this.#checkSize(fields);
        const batch = this.#batchOn(client, channel, key);
        if (batch.sources === undefined) this.#addXadd(batch, key, fields);
        else this.#add(batch, { kind: "xadd", channel, key, fields });
        return this.#track(batch, channel, count);
      }
      if (options !== undefined) checkPublishOptions(options);
      const write = this.#prepare(message, channel, key, options);
      return this.#track(this.#write(client, write), channel, count);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Writes a batch in order, all or nothing as far as Redis allows: every
   * message is checked and encoded first (a refusal rejects with nothing
   * sent, naming the entry: `entries[2].message`), then the writes go into
   * one `MULTI`/`EXEC` per pipeline of this turn (one per channel on a
   * cluster). Redis runs a transaction whole or not at all when a command
   * is refused before `EXEC` or the connection drops first; it does not
   * undo the other commands when one fails while `EXEC` runs.
   */
  publishAll(
    client: Redis,
    entries: readonly BatchEntry[],
    options: PublishOptions | undefined,
  ): Promise<void> {
    const writes: Write[] = [];
    try {
      checkBatch(entries, options);
      for (let index = 0; index < entries.length; index++) {
        const { message, channel } = entries[index];
        try {
          const key = this.#keys.get(channel) ?? this.#keyOf(channel);
          writes.push(this.#prepare(message, channel, key, options));
        } catch (error) {
          throw entryError(error, index);
        }
      }
    } catch (error) {
      return Promise.reject(error);
    }
    const opened: Batch[] = [];
    const accepted: Promise<number | undefined>[] = [];
    for (const write of writes) {
      const batch = this.#batchOn(client, write.channel, write.key);
      if (batch.open === undefined) {
        this.#begin(batch);
        opened.push(batch);
      }
      this.#add(batch, write);
      accepted.push(this.#track(batch, write.channel, false));
    }
    for (const batch of opened) this.#end(batch);
    return Promise.all(accepted).then(() => undefined);
  }

  /** Checks and encodes one message for `key` (options already checked). */
  #prepare(
    message: unknown,
    channel: string,
    key: string,
    options: PublishOptions | undefined,
  ): Write {
    const fields = encodeEntry(message, options);
    let chars = 0;
    for (let i = 0; i < fields.length; i++) chars += fields[i].length;
    if (chars * 3 > this.#maxBytes) this.#checkSize(fields);
    if (!this.#stream || key === channel) {
      // Pub/sub mode, or a reply sent by hand to a request's replyTo: straight to the listener.
      return { kind: "publish", channel, key, text: toPubSubText(fields) };
    }
    if (
      this.#dedupeWindow > 0 && message instanceof CloudEvent && options?.replyTo === undefined
    ) {
      // A request is never skipped: its caller waits for the reply of this very entry.
      const seen = seenKey(this.#options.keyPrefix, channel, eventDigest(message));
      return { kind: "dedupe", channel, key, fields, seen };
    }
    return { kind: "xadd", channel, key, fields };
  }

  /** Adds a prepared write to the batch of this turn. */
  #write(client: Redis, write: Write): Batch {
    const batch = this.#batchOn(client, write.channel, write.key);
    this.#add(batch, write);
    return batch;
  }

  /** Adds a prepared write to `batch`, before its publish is tracked. */
  #add(batch: Batch, write: Write): void {
    batch.sources?.push(write);
    switch (write.kind) {
      case "xadd":
        return this.#addXadd(batch, write.key, write.fields);
      case "dedupe":
        return this.#addDedupe(batch, write.key, write.seen, write.fields);
      case "publish":
        return this.#addPublish(batch, write.key, write.text);
    }
  }

  /** Opens a `MULTI` block in a batch: the commands up to {@linkcode Publisher.#end} run as one. */
  #begin(batch: Batch): void {
    if (batch.group !== undefined) this.#closeGroup(batch);
    const transaction: Transaction = {
      start: batch.pipeline.length,
      commands: 0,
      from: batch.size,
      to: batch.size,
    };
    queueMulti(batch.pipeline);
    batch.replay?.push(queueMulti);
    (batch.transactions ??= []).push(transaction);
    batch.open = transaction;
  }

  /** Closes the open `MULTI` block of a batch with its `EXEC`. */
  #end(batch: Batch): void {
    if (batch.group !== undefined) this.#closeGroup(batch);
    const transaction = batch.open!;
    transaction.commands = batch.pipeline.length - transaction.start - 1;
    transaction.to = batch.size;
    batch.open = undefined;
    queueExec(batch.pipeline);
    batch.replay?.push(queueExec);
  }

  /**
   * Publishes a ready text (a reply) on a pub/sub channel, in the current
   * batch. Resolves with the number of receivers.
   */
  publishText(client: Redis, key: string, text: string): Promise<number | undefined> {
    const batch = this.#write(client, { kind: "publish", channel: key, key, text });
    return this.#track(batch, key, true);
  }

  /** An XADD of `fields` to stream `key`, in `batch`. */
  #addXadd(batch: Batch, key: string, fields: readonly string[]): void {
    this.#command(batch);
    batch.writes = true;
    const args: (string | number)[] = this.#maxLen > 0
      ? [key, "MAXLEN", "~", this.#maxLen, "*", ...fields]
      : [key, "*", ...fields];
    batch.pipeline.call("XADD", ...args);
    batch.replay?.push((pipeline) => pipeline.call("XADD", ...args));
  }

  /** PUBLISH, or SPUBLISH on a cluster (sharded pub/sub stays on the channel's master), in `batch`. */
  #addPublish(batch: Batch, key: string, text: string): void {
    this.#command(batch);
    if (this.#sharded) batch.pipeline.spublish(key, text);
    else batch.pipeline.publish(key, text);
  }

  /**
   * The batch of this turn of the event loop for `key`, opened (and the
   * flush scheduled) on first use.
   */
  #batchOn(client: Redis, channel: string, key: string): Batch {
    const slot = this.#sharded ? key : "";
    let batch = this.#batches.get(slot);
    if (batch === undefined) {
      // A pipeline knows the scripts defined on its connection when it is created.
      if (this.#dedupeWindow > 0 && !scripted.has(client)) {
        client.defineCommand(DEDUPE_XADD, { lua: DEDUPE_XADD_LUA });
        scripted.add(client);
      }
      if (this.#batches.size === 0) setImmediate(this.#flushNow);
      batch = new Batch(
        client,
        this.#sharded && this.#replicas > 0,
        // Only a script spans several keys, so only it can be refused while its slot moves.
        this.#sharded && this.#dedupeWindow > 0,
      );
      batch.ticket = this.#deadlines.add(batch, channel);
      this.#batches.set(slot, batch);
    }
    return batch;
  }

  /** Makes room in `batch` for one command covering one publish. */
  #command(batch: Batch): void {
    if (batch.group !== undefined) this.#closeGroup(batch);
    batch.spans?.push(1);
  }

  /**
   * Adds a de-duplicated publish to the script call of its stream in
   * `batch`: the publishes of one turn to one stream share a call, in
   * publish order (another command in between starts a new call).
   */
  #addDedupe(batch: Batch, stream: string, seen: string, fields: readonly string[]): void {
    batch.writes = true;
    let group = batch.group;
    if (group !== undefined && (group.stream !== stream || group.size >= MAX_DEDUPE_GROUP)) {
      this.#closeGroup(batch);
      group = undefined;
    }
    if (group === undefined) {
      batch.spans ??= new Array<number>(batch.size).fill(1);
      group = batch.group = {
        stream,
        keys: [stream],
        args: [this.#dedupeWindow, this.#maxLen],
        size: 0,
      };
    }
    group.keys.push(seen);
    group.args.push(fields.length);
    for (let i = 0; i < fields.length; i++) group.args.push(fields[i]);
    group.size++;
  }

  #closeGroup(batch: Batch): void {
    const group = batch.group!;
    batch.group = undefined;
    // Inside MULTI a NOSCRIPT would come only with EXEC, too late for ioredis
    // to send the script: there the script travels whole.
    const call = batch.open !== undefined
      ? (pipeline: ChainableCommander) =>
        pipeline.call("EVAL", DEDUPE_XADD_LUA, group.keys.length, ...group.keys, ...group.args)
      : (pipeline: ChainableCommander) =>
        (pipeline as DedupePipeline)[DEDUPE_XADD](group.keys.length, ...group.keys, ...group.args);
    call(batch.pipeline);
    batch.replay?.push(call);
    // Negative: a script call, answering per publish.
    batch.spans!.push(-group.size);
  }

  /** The promise of the publish just written to `batch`. */
  #track(batch: Batch, channel: string, count: boolean): Promise<number | undefined> {
    this.#inFlight++;
    return new Promise<number | undefined>((resolve, reject) => {
      batch.resolves.push(resolve);
      batch.rejects.push(reject);
      batch.channels.push(channel);
      batch.counts.push(count);
    });
  }

  readonly #flushNow = (): void => {
    for (const batch of this.#batches.values()) {
      if (batch.group !== undefined) this.#closeGroup(batch);
      this.#flush(batch);
    }
    this.#batches.clear();
  };

  #flush(batch: Batch, attempt = 0): void {
    // WAIT in the same pipeline reaches the node that took the writes, right after them.
    const waits = this.#replicas > 0 && batch.writes;
    if (waits) batch.pipeline.call("WAIT", this.#replicas, this.#options.publishTimeout);
    batch.pipeline.exec().then(
      (raw) => {
        const results = batch.transactions === undefined
          ? raw
          : unwrapTransactions(raw, batch.transactions);
        if (batch.replay !== undefined && attempt < MAX_MOVED_RETRIES && moved(results)) {
          return this.#resend(batch, attempt);
        }
        const checked = waits ? this.#checkReplicas(results) : results;
        if (batch.sources !== undefined && this.#resendRefused(batch, checked)) return;
        this.#settle(batch, checked);
      },
      (error) => this.#fail(batch, (channel) => this.#refused(channel, error)),
    );
  }

  /** Sends a batch again once the cluster's slot map is fresh. */
  #resend(batch: Batch, attempt: number): void {
    (batch.client as unknown as Cluster).refreshSlotsCache(() => {
      if (batch.settled) return;
      batch.pipeline = batch.client.pipeline();
      for (const write of batch.replay!) write(batch.pipeline);
      this.#flush(batch, attempt + 1);
    });
  }

  /**
   * Settles the publishes of `batch` that ran and keeps in it, to send again
   * after a backoff, those Redis refused because their slot is moving (see
   * {@linkcode movingRefusal}): a de-duplicated publish gets `TRYAGAIN` until
   * every key of its slot moved. They did not run, so sending them again
   * cannot write twice; a transaction is sent again whole, and only if none
   * of it ran. The batch keeps its deadline: what is still refused at
   * `publishTimeout` rejects. False (nothing done) when nothing was refused so.
   */
  #resendRefused(batch: Batch, results: PipelineResult): boolean {
    if (batch.settled || results === null || !results.some(([error]) => movingRefusal(error))) {
      return false;
    }
    const outcomes = publishOutcomes(results, batch.spans, batch.size);
    if (outcomes === undefined) return false;
    const again = refusedWhileMoving(outcomes, batch.transactions);
    if (again === undefined) return false;
    const { resolves, rejects, channels, counts } = batch;
    let published = 0;
    for (let i = 0; i < outcomes.length; i++) {
      if (again[i]) continue;
      const [error, reply] = outcomes[i];
      if (error !== undefined) {
        rejects[i](this.#refused(channels[i], error));
        continue;
      }
      published++;
      resolves[i](counts[i] ? (typeof reply === "number" ? reply : 1) : undefined);
    }
    const refusal = outcomes.find(([failure]) => movingRefusal(failure))![0] as Error;
    batch.lastRefusal = refusal.message;
    this.#rebuild(batch, again);
    this.#counters.published += published;
    this.#done(outcomes.length - batch.size);
    batch.resendTimer = setTimeout(() => {
      batch.resendTimer = undefined;
      if (!batch.settled) this.#flush(batch);
    }, movingRetryDelay(batch.resends++));
    return true;
  }

  /**
   * Empties `batch` and writes into it again the publishes marked in
   * `again`, from their sources, a transaction as a transaction, each with
   * its promise.
   */
  #rebuild(batch: Batch, again: readonly boolean[]): void {
    const { resolves, rejects, channels, counts, transactions } = batch;
    const sources = batch.sources!;
    batch.pipeline = batch.client.pipeline();
    batch.replay = batch.replay && [];
    batch.sources = [];
    batch.writes = false;
    batch.spans = undefined;
    batch.group = undefined;
    batch.transactions = undefined;
    batch.open = undefined;
    batch.resolves = [];
    batch.rejects = [];
    batch.channels = [];
    batch.counts = [];
    let next = 0;
    for (let i = 0; i < again.length; i++) {
      while (
        transactions !== undefined && next < transactions.length && transactions[next].to <= i
      ) {
        next++;
      }
      if (!again[i]) continue;
      const transaction = transactions?.[next];
      const inside = transaction !== undefined && transaction.from <= i;
      if (inside && i === transaction.from) this.#begin(batch);
      this.#add(batch, sources[i]);
      batch.resolves.push(resolves[i]);
      batch.rejects.push(rejects[i]);
      batch.channels.push(channels[i]);
      batch.counts.push(counts[i]);
      if (inside && i === transaction.to - 1) this.#end(batch);
    }
    if (batch.group !== undefined) this.#closeGroup(batch);
  }

  /**
   * The results without the WAIT reply, or every entry turned into an error
   * when fewer than `replicas` replicas acknowledged the writes.
   */
  #checkReplicas(results: PipelineResult): PipelineResult {
    if (results === null || results.length === 0) return results;
    const [error, acknowledged] = results[results.length - 1];
    const writes = results.slice(0, -1);
    if (!error && typeof acknowledged === "number" && acknowledged >= this.#replicas) return writes;
    const shortfall = error ?? new Error(
      `only ${
        String(acknowledged)
      } of ${this.#replicas} replicas acknowledged the write within ${this.#options.publishTimeout} ms`,
    );
    return writes.map(([failed]) => [failed ?? shortfall, null]);
  }

  #settle(batch: Batch, results: PipelineResult): void {
    if (batch.settled) return;
    if (batch.spans !== undefined) return this.#settleSpans(batch, batch.spans, results);
    if (results === null || results.length !== batch.size) {
      return this.#fail(batch, (channel) => this.#refused(channel, "no reply"));
    }
    batch.settled = true;
    this.#deadlines.settle(batch.ticket);
    const { resolves, rejects, counts, channels } = batch;
    let published = 0;
    for (let i = 0; i < results.length; i++) {
      const [error, reply] = results[i];
      if (error) {
        rejects[i](this.#refused(channels[i], error));
        continue;
      }
      published++;
      resolves[i](counts[i] ? (typeof reply === "number" ? reply : 1) : undefined);
    }
    this.#counters.published += published;
    this.#done(results.length);
  }

  /** Settles a batch where a script call covers several publishes. */
  #settleSpans(batch: Batch, spans: number[], results: PipelineResult): void {
    if (results === null || results.length !== spans.length) {
      return this.#fail(batch, (channel) => this.#refused(channel, "no reply"));
    }
    batch.settled = true;
    this.#deadlines.settle(batch.ticket);
    const { resolves, rejects, counts, channels } = batch;
    let published = 0;
    let at = 0;
    for (let i = 0; i < results.length; i++) {
      const [error, reply] = results[i];
      const script = spans[i] < 0;
      const span = script ? -spans[i] : spans[i];
      for (let j = 0; j < span; j++, at++) {
        // A script call answers per publish: an entry id, 0 (written before) or "ERR ...".
        const answer = script && Array.isArray(reply) ? reply[j] : reply;
        const failure = error ??
          (typeof answer === "string" && answer.startsWith("ERR ") ? answer.slice(4) : undefined);
        if (failure !== undefined) {
          rejects[at](this.#refused(channels[at], failure));
          continue;
        }
        published++;
        resolves[at](counts[at] ? (typeof reply === "number" ? reply : 1) : undefined);
      }
    }
    this.#counters.published += published;
    this.#done(at);
  }

  #fail(batch: Batch, error: (channel: string) => Error): void {
    if (batch.settled) return;
    batch.settled = true;
    if (batch.resendTimer !== undefined) clearTimeout(batch.resendTimer);
    this.#deadlines.settle(batch.ticket);
    const { rejects, channels } = batch;
    for (let i = 0; i < rejects.length; i++) rejects[i](error(channels[i]));
    this.#done(rejects.length);
  }

  #refused(channel: string, error: unknown): BrokerError {
    const safe = safeError(error, this.#options.secrets);
    return new BrokerError(`publish to "${channel}" failed: ${safe.message}`, { cause: safe });
  }

  #done(count: number): void {
    this.#inFlight -= count;
    if (this.#inFlight > 0 || this.#settledWaiters.length === 0) return;
    const waiters = this.#settledWaiters;
    this.#settledWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /** Checks a channel seen for the first time and remembers its key. */
  #keyOf(channel: string): string {
    checkChannel(channel);
    const { keyPrefix } = this.#options;
    const key = channel.startsWith(this.#replyPrefix)
      ? channel
      : this.#stream
      ? streamKey(keyPrefix, channel)
      : pubsubKey(keyPrefix, channel);
    if (this.#keys.size < MAX_CACHED_CHANNELS) this.#keys.set(channel, key);
    return key;
  }

  /**
   * Refuses an encoding above `maxMessageBytes`. Called only when its length
   * in UTF-16 units, times 3 (the most UTF-8 bytes one unit takes), exceeds
   * the limit: most messages need no exact count.
   */
  #checkSize(fields: readonly string[]): void {
    const limit = this.#maxBytes;
    const bytes = entryBytes(fields, limit);
    if (bytes > limit) {
      throw new InvalidArgumentError(
        "message",
        `encoded size ${bytes} bytes exceeds maxMessageBytes (${limit})`,
      );
    }
  }
}

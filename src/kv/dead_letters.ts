/**
 * Dead letters: messages that failed `maxDeliveries` times, were refused
 * with `RejectMessage`, could not be decoded, or that KV gave up delivering
 * because their handler never finished (the process ended each time). They
 * live under `[...prefix, "dlq", channel, id]`:
 *
 * - a record the broker wrote, with the reason and the message;
 * - or a whole batch KV wrote there itself (`keysIfUndelivered`); listing
 *   shows each of its messages as a letter with id `<batch id>#<index>`.
 *
 * Values found on the queue that this broker did not write are kept under
 * the reserved channel {@linkcode FOREIGN_CHANNEL}.
 *
 * @module
 */

import type { DeadLetter } from "../dead_letter.ts";
import { InvalidArgumentError } from "../errors.ts";
import type { ResolvedBackoff } from "../retry.ts";
import { commit, isLockConflict } from "./commit.ts";
import { enqueueOptions } from "./delivery_budget.ts";
import {
  bodyText,
  decodeBody,
  encodeBody,
  type Envelope,
  ENVELOPE_MARK,
  MAX_BATCH_MESSAGES,
  MAX_VALUE_BYTES,
  readEnvelope,
} from "./envelope.ts";
import { sortableId } from "./ids.ts";
import type { KvKeys } from "./keys.ts";
import type { KvKey, KvStore, KvStoreAtomic, KvStoreEntry } from "./kv_store.ts";
import { decodeRecord } from "./record.ts";

/**
 * The channel under which values found on the queue that no `KvBroker`
 * wrote are dead-lettered: `broker.deadLetters(FOREIGN_CHANNEL)`.
 *
 * @example
 * ```ts
 * import { FOREIGN_CHANNEL, KvBroker } from "@opensecflow/eventbus/kv";
 * await using broker = new KvBroker({ path: ":memory:" });
 * await broker.start();
 * console.log((await broker.deadLetters(FOREIGN_CHANNEL)).length); // 0
 * ```
 */
export const FOREIGN_CHANNEL = "$foreign";

/** Marks a dead-letter record written by the broker. */
const RECORD_MARK = "eventbus.kv-dead-letter/1";

/** What the broker stores for one dead letter. */
interface StoredDeadLetter {
  readonly eventbus: typeof RECORD_MARK;
  readonly channel: string;
  readonly group: string;
  readonly subscription: string;
  readonly entryId: string;
  readonly attempts: number;
  readonly error: string;
  readonly failedAt: string;
  /** The message record (JSON text) when there is one. */
  readonly record?: string;
  /** A foreign value, as found. */
  readonly value?: unknown;
}

/** Why and where a message is dead-lettered. */
export interface DeadLetterReason {
  readonly channel: string;
  readonly group: string;
  readonly subscription: string;
  readonly entryId: string;
  readonly attempts: number;
  readonly error: string;
}

const MAX_ERROR_LENGTH = 2_000;

/** The key and value of the dead letter of one message record. */
export function deadLetterEntry(
  keys: KvKeys,
  reason: DeadLetterReason,
  record: string,
): { key: KvKey; value: StoredDeadLetter } {
  const value: StoredDeadLetter = {
    eventbus: RECORD_MARK,
    ...reason,
    error: reason.error.slice(0, MAX_ERROR_LENGTH),
    failedAt: new Date().toISOString(),
    record,
  };
  return { key: keys.deadLetter(reason.channel, sortableId()), value };
}

/** Writes the dead letter of a value found on the queue that no `KvBroker` wrote. */
export async function deadLetterForeign(
  kv: KvStore,
  keys: KvKeys,
  value: unknown,
  reason: string,
): Promise<void> {
  const stored: StoredDeadLetter = {
    eventbus: RECORD_MARK,
    channel: FOREIGN_CHANNEL,
    group: "",
    subscription: "",
    entryId: "",
    attempts: 1,
    error: reason,
    failedAt: new Date().toISOString(),
    value,
  };
  const key = keys.deadLetter(FOREIGN_CHANNEL, sortableId());
  try {
    await commit(() => kv.atomic().set(key, stored));
  } catch (error) {
    if (isLockConflict(error)) throw error;
    // Too large to keep beside its reason: keep the reason and a description.
    await commit(() => kv.atomic().set(key, { ...stored, value: describeValue(value) }));
  }
}

function describeValue(value: unknown): string {
  try {
    const text = JSON.stringify(value) ?? String(value);
    return text.length > 1_000 ? `${text.slice(0, 1_000)}…` : text;
  } catch {
    return Object.prototype.toString.call(value);
  }
}

function decodeMessage(record: string | unknown): unknown {
  try {
    return decodeRecord(typeof record === "string" ? JSON.parse(record) : record).message;
  } catch {
    return record;
  }
}

function entryIdOf(record: unknown): string {
  const value = record as { e?: { id?: unknown }; i?: unknown } | null;
  const id = value?.e?.id ?? value?.i;
  return typeof id === "string" ? id : "";
}

function lastPart(key: readonly unknown[]): string {
  return String(key[key.length - 1]);
}

/** The time encoded in a sortable id, as ISO 8601. */
function idTime(id: string): string {
  const millis = parseInt(id.slice(0, 9), 36);
  return Number.isFinite(millis) ? new Date(millis).toISOString() : "";
}

const GAVE_UP = "Deno KV gave up delivering it: its handler never finished (the process " +
  "ended or was killed) on each of its deliveries";

/** The letters of one stored entry (a batch KV wrote holds several). */
function lettersOf(entry: KvStoreEntry): DeadLetter[] {
  const id = lastPart(entry.key);
  const value = entry.value as Partial<StoredDeadLetter> | null;
  if (value?.eventbus === RECORD_MARK) {
    const stored = value as StoredDeadLetter;
    return [{
      id,
      channel: stored.channel,
      group: stored.group,
      subscription: stored.subscription,
      entryId: stored.entryId,
      attempts: stored.attempts,
      error: stored.error,
      failedAt: stored.failedAt,
      message: stored.record !== undefined ? decodeMessage(stored.record) : stored.value,
    }];
  }
  const read = readEnvelope(entry.value);
  if (read.kind === "foreign") {
    return [{
      id,
      channel: String(entry.key[entry.key.length - 2]),
      group: "",
      subscription: "",
      entryId: "",
      attempts: 0,
      error: read.reason,
      failedAt: "",
      message: entry.value,
    }];
  }
  const envelope = read.envelope;
  const base = {
    channel: envelope.channel,
    group: envelope.group,
    subscription: envelope.subscription,
    attempts: envelope.deliveries,
    error: GAVE_UP,
    failedAt: idTime(envelope.batch),
  };
  let records: unknown[];
  try {
    records = decodeBody(envelope.body);
  } catch {
    return [{ id, ...base, entryId: "", message: bodyText(envelope.body) }];
  }
  return records.map((record, index) => ({
    id: `${id}#${index}`,
    ...base,
    entryId: entryIdOf(record),
    message: decodeMessage(record),
  }));
}

/** Lists up to `count` dead letters of a channel, oldest first. */
export async function listDeadLetters(
  kv: KvStore,
  keys: KvKeys,
  channel: string,
  count: number,
): Promise<DeadLetter[]> {
  const letters: DeadLetter[] = [];
  for await (const entry of kv.list({ prefix: keys.deadLetters(channel) })) {
    for (const letter of lettersOf(entry)) {
      letters.push(letter);
      if (letters.length >= count) return letters;
    }
  }
  return letters;
}

/** The message records of one stored entry, by index, and where they go. */
interface Replayable {
  readonly entry: KvStoreEntry;
  readonly target: { channel: string; group: string; subscription: string };
  readonly records: readonly string[];
  /** A batch KV wrote (kept minus the replayed records) rather than one record. */
  readonly batch: Envelope | undefined;
}

function replayable(entry: KvStoreEntry): Replayable | undefined {
  const value = entry.value as Partial<StoredDeadLetter> | null;
  if (value?.eventbus === RECORD_MARK) {
    const stored = value as StoredDeadLetter;
    if (stored.record === undefined || stored.subscription === "") return undefined;
    return {
      entry,
      target: stored,
      records: [stored.record],
      batch: undefined,
    };
  }
  const read = readEnvelope(entry.value);
  if (read.kind === "foreign") return undefined;
  let records: unknown[];
  try {
    records = decodeBody(read.envelope.body);
  } catch {
    return undefined;
  }
  return {
    entry,
    target: read.envelope,
    records: records.map((record) => JSON.stringify(record)),
    batch: read.envelope,
  };
}

/** Which records of each entry to replay: all, or the ones named by `ids`. */
function selection(ids: readonly string[] | undefined): (entryId: string) => Set<number> | "all" {
  if (ids === undefined) return () => "all";
  const chosen = new Map<string, Set<number> | "all">();
  for (const id of ids) {
    const hash = id.lastIndexOf("#");
    const index = hash < 0 ? NaN : Number(id.slice(hash + 1));
    if (hash < 0 || !Number.isSafeInteger(index)) {
      chosen.set(id, "all");
      continue;
    }
    const base = id.slice(0, hash);
    const current = chosen.get(base);
    if (current === "all") continue;
    (current ?? chosen.set(base, new Set()).get(base) as Set<number>).add(index);
  }
  return (entryId) => chosen.get(entryId) ?? new Set();
}

/**
 * Puts dead letters back on the queue, each to the subscription that gave up
 * on it, as fresh messages (attempt 1); each move is one commit that checks
 * the letter is still there. Without `ids`, replays the channel's letters
 * there when called (one that fails again waits for the next replay).
 * Returns how many messages moved.
 */
export async function replayDeadLetters(
  kv: KvStore,
  keys: KvKeys,
  channel: string,
  ids: readonly string[] | undefined,
  maxDeliveries: number,
  backoff: ResolvedBackoff,
): Promise<number> {
  if (channel === FOREIGN_CHANNEL) {
    throw new InvalidArgumentError(
      "channel",
      `${FOREIGN_CHANNEL} holds values no KvBroker wrote: they have no subscription to go back to`,
    );
  }
  const chosen = selection(ids);
  const entries: KvStoreEntry[] = [];
  for await (const entry of kv.list({ prefix: keys.deadLetters(channel) })) entries.push(entry);
  let moved = 0;
  for (const entry of entries) {
    const picked = chosen(lastPart(entry.key));
    if (picked !== "all" && picked.size === 0) continue;
    const found = replayable(entry);
    if (found === undefined) continue;
    const indexes = found.records.map((_, i) => i).filter((i) => picked === "all" || picked.has(i));
    if (indexes.length === 0) continue;
    moved += await replayEntry(kv, keys, found, indexes, maxDeliveries, backoff);
  }
  return moved;
}

async function replayEntry(
  kv: KvStore,
  keys: KvKeys,
  found: Replayable,
  indexes: readonly number[],
  maxDeliveries: number,
  backoff: ResolvedBackoff,
): Promise<number> {
  const { entry, target } = found;
  const left = found.records.filter((_, i) => !indexes.includes(i));
  const result = await commit(() => {
    const key = [...entry.key] as KvKey;
    const atomic = kv.atomic().check({ key, versionstamp: entry.versionstamp });
    enqueueRecords(
      atomic,
      keys,
      target,
      indexes.map((i) => found.records[i]),
      maxDeliveries,
      backoff,
    );
    if (left.length === 0 || found.batch === undefined) atomic.delete(key);
    else atomic.set(key, { ...found.batch, body: encodeBody(left) });
    return atomic;
  });
  return result.ok ? indexes.length : 0;
}

/** Enqueues records for a subscription as fresh messages, one batch per chunk that fits a value. */
function enqueueRecords(
  atomic: KvStoreAtomic,
  keys: KvKeys,
  target: { channel: string; group: string; subscription: string },
  records: readonly string[],
  maxDeliveries: number,
  backoff: ResolvedBackoff,
): void {
  let chunk: string[] = [];
  let bytes = 0;
  const flush = () => {
    if (chunk.length === 0) return;
    const envelope: Envelope = {
      eventbus: ENVELOPE_MARK,
      prefix: keys.prefix,
      channel: target.channel,
      group: target.group,
      subscription: target.subscription,
      batch: sortableId(),
      attempt: 1,
      deliveries: maxDeliveries,
      body: encodeBody(chunk),
    };
    atomic.enqueue(envelope, enqueueOptions(keys, envelope, backoff, 0));
    chunk = [];
    bytes = 0;
  };
  for (const record of records) {
    if (bytes + record.length * 3 > MAX_VALUE_BYTES - 4_096 || chunk.length >= MAX_BATCH_MESSAGES) {
      flush();
    }
    chunk.push(record);
    bytes += record.length * 3;
  }
  flush();
}

/**
 * Dead letters: entries whose deliveries ran out (failures or `NackMessage`),
 * that a handler refused with `RejectMessage`, or that could not be decoded.
 * They live in a stream per channel, `${keyPrefix}{${channel}}:dlq`, each with
 * the reason and the original fields; this module writes them (one
 * transaction with the acknowledgement), lists them and replays them.
 *
 * @module
 */

import type { Redis } from "ioredis";
import type { DeadLetter } from "../dead_letter.ts";
import { runFields } from "./attempts.ts";
import { decodeEntry, type EntryFields, fieldsToObject } from "./entry_codec.ts";

/** Why and where an entry is dead-lettered. */
export interface DeadLetterReason {
  /** Stream the entry was read from. */
  readonly stream: string;
  /** Dead-letter stream of the channel. */
  readonly deadLetterStream: string;
  readonly channel: string;
  readonly group: string;
  readonly subscription: string;
  readonly entryId: string;
  readonly attempts: number;
  readonly error: string;
  /** Hash of handler starts of the group: the entry's counts go with it. */
  readonly attemptsKey?: string;
}

/** Number of metadata fields written before the original entry's fields. */
const META_FIELDS = 7;

/** The fields of a dead letter: metadata first, then the original entry's fields. */
export function deadLetterFields(reason: DeadLetterReason, original: EntryFields): EntryFields {
  return [
    "channel",
    reason.channel,
    "group",
    reason.group,
    "subscription",
    reason.subscription,
    "entry",
    reason.entryId,
    "attempts",
    String(reason.attempts),
    "error",
    reason.error,
    "failedAt",
    new Date().toISOString(),
    ...original,
  ];
}

/**
 * Moves one entry to the dead-letter stream and acknowledges it, in one
 * transaction: the entry is never both lost and kept pending. Rejects when
 * Redis refused either command (the entry then stays pending).
 */
export async function deadLetter(
  client: Redis,
  reason: DeadLetterReason,
  original: EntryFields,
  trim: readonly (string | number)[],
): Promise<void> {
  const transaction = client.multi();
  transaction.xadd(reason.deadLetterStream, ...trim, "*", ...deadLetterFields(reason, original));
  transaction.xack(reason.stream, reason.group, reason.entryId);
  if (reason.attemptsKey !== undefined) {
    transaction.hdel(reason.attemptsKey, ...runFields([reason.entryId]));
  }
  const results = await transaction.exec();
  if (results === null) throw new Error("the dead-letter transaction was aborted");
  for (const [error] of results) if (error) throw error;
}

/** The original entry's fields of a dead letter. */
export function originalFields(fields: readonly string[]): EntryFields {
  return fields.slice(META_FIELDS * 2);
}

/** Reads a dead letter; metadata by position, so an original field with the same name cannot mask it. */
export function parseDeadLetter(id: string, fields: readonly string[]): DeadLetter {
  const meta = (index: number) => fields[index * 2 + 1] ?? "";
  const original = originalFields(fields);
  let message: unknown;
  try {
    message = decodeEntry(original).message;
  } catch {
    message = fieldsToObject(original);
  }
  return {
    id,
    channel: meta(0),
    group: meta(1),
    subscription: meta(2),
    entryId: meta(3),
    attempts: Number(meta(4)),
    error: meta(5),
    failedAt: meta(6),
    message,
  };
}

type RawEntry = [id: string, fields: string[]];

/** Lists up to `count` dead letters of a stream, oldest first. */
export async function listDeadLetters(
  client: Redis,
  key: string,
  count: number,
): Promise<DeadLetter[]> {
  const entries = (await client.xrange(key, "-", "+", "COUNT", count)) as RawEntry[];
  return entries.map(([id, fields]) => parseDeadLetter(id, fields));
}

/**
 * Moves dead letters back onto their channel's stream as fresh entries, each
 * move one transaction (XADD + XDEL) so a letter is never both lost and kept.
 * Without `ids`, moves them all. Returns how many moved.
 */
export async function replayDeadLetters(
  client: Redis,
  deadLetterStream: string,
  channelStream: string,
  ids: readonly string[] | undefined,
  trim: readonly (string | number)[],
): Promise<number> {
  let moved = 0;
  const replay = async (entries: RawEntry[]) => {
    if (entries.length === 0) return;
    const transaction = client.multi();
    for (const [id, fields] of entries) {
      transaction.xadd(channelStream, ...trim, "*", ...originalFields(fields));
      transaction.xdel(deadLetterStream, id);
    }
    const results = await transaction.exec();
    if (results === null) throw new Error("replay transaction was aborted");
    for (const [error] of results) if (error) throw error;
    moved += entries.length;
  };
  if (ids !== undefined) {
    for (const id of ids) {
      const entries = (await client.xrange(deadLetterStream, id, id)) as RawEntry[];
      await replay(entries);
    }
    return moved;
  }
  // Only the letters there now: a replayed entry that fails again lands after
  // this mark and waits for the next replay instead of looping for ever.
  const last = (await client.xrevrange(deadLetterStream, "+", "-", "COUNT", 1)) as RawEntry[];
  if (last.length === 0) return moved;
  const end = last[0][0];
  for (;;) {
    const entries = (await client.xrange(deadLetterStream, "-", end, "COUNT", 100)) as RawEntry[];
    if (entries.length === 0) return moved;
    await replay(entries);
  }
}

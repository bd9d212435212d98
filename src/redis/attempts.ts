/**
 * Attempts of stream entries, counted where they happen: when a handler
 * starts running an entry, not when Redis hands it to a consumer (a consumer
 * that claims an entry and dies before running it has not tried it). Each
 * consumer group keeps a hash, `attempts:${group}` under the channel's tag:
 * field `${id}` counts the handler starts of an entry, field `${id}:f` the
 * starts that ended with an outcome other than success (a failure, a
 * `NackMessage`). A start with no outcome is a crash: the consumer died
 * while running the entry. Both fields go with the entry's XACK.
 *
 * These writes must reach Redis in the order they are made, before the XACK
 * or dead-letter transaction that removes them: the consumer's connection
 * auto-pipelines single commands (written on the next tick) but writes
 * transactions at once, so the writes here go out as pipelines of their own,
 * written at once too.
 *
 * @module
 */

import type { Redis } from "ioredis";

/** What Redis remembers of an entry's earlier runs. */
export interface EntryRuns {
  /** Handler starts recorded. */
  readonly starts: number;
  /** Starts that ended in a failure or a `NackMessage`. */
  readonly failures: number;
}

/** No run recorded. */
export const NO_RUNS: EntryRuns = Object.freeze({ starts: 0, failures: 0 });

/** Field counting the failed runs of an entry. */
export function failuresField(id: string): string {
  return `${id}:f`;
}

/** The HMGET fields of `ids`, two per entry: starts then failures. */
export function runFields(ids: readonly string[]): string[] {
  const fields: string[] = [];
  for (const id of ids) fields.push(id, failuresField(id));
  return fields;
}

/** Reads an HMGET reply of {@linkcode runFields}. */
export function parseRuns(reply: readonly (string | null)[], index: number): EntryRuns {
  const starts = Number(reply[2 * index] ?? 0);
  const failures = Number(reply[2 * index + 1] ?? 0);
  if (starts === 0 && failures === 0) return NO_RUNS;
  return { starts, failures };
}

/** Runs that ended because the consumer died: starts without an outcome. */
export function crashes(runs: EntryRuns): number {
  return Math.max(0, runs.starts - runs.failures);
}

/** Why an entry whose runs ran out is dead-lettered. */
export function exhaustedReason(runs: EntryRuns): string {
  const died = crashes(runs);
  if (died === 0) return `failed ${runs.failures} times`;
  const failed = runs.failures > 0 ? ` (and failed ${runs.failures} times)` : "";
  return `its consumer died ${died} times while running it${failed}`;
}

/** Sends `command(...args)` at once, ahead of anything auto-pipelined later; resolves with its reply. */
export async function sendNow(
  client: Redis,
  command: "hset" | "hincrby",
  ...args: (string | number)[]
): Promise<unknown> {
  const results = await client.pipeline().call(command, ...args).exec();
  const [error, reply] = results?.[0] ?? [new Error(`${command} got no reply`), undefined];
  if (error) throw error;
  return reply;
}

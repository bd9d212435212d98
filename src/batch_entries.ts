/**
 * What every broker's `publishBatch` checks the same way: the entries are an
 * array of `{ message, channel }` with valid channels, and an error found
 * while checking one entry names that entry, so the caller knows which
 * message of the batch was refused.
 *
 * @module
 */

import type { BatchEntry, PublishOptions } from "./broker.ts";
import { excerpt, InvalidArgumentError } from "./errors.ts";
import { checkChannel, checkPublishOptions } from "./handler_support.ts";

/**
 * Checks the arguments of `publishBatch`: an array of entries, each an object
 * with a valid `channel`, and the publish options. Throws
 * {@linkcode InvalidArgumentError} naming the first bad one
 * (`entries[2].channel`).
 */
export function checkBatch(entries: unknown, options: PublishOptions | undefined): BatchEntry[] {
  if (!Array.isArray(entries)) {
    throw new InvalidArgumentError(
      "entries",
      `must be an array of { message, channel }, got ${excerpt(entries)}`,
    );
  }
  for (let index = 0; index < entries.length; index++) {
    const entry: unknown = entries[index];
    if (entry === null || typeof entry !== "object") {
      throw new InvalidArgumentError(
        `entries[${index}]`,
        `must be an object { message, channel }, got ${excerpt(entry)}`,
      );
    }
    checkChannel((entry as BatchEntry).channel, `entries[${index}].channel`);
  }
  checkPublishOptions(options);
  return entries;
}

/**
 * The error a check threw for one entry of a batch, naming the entry: an
 * {@linkcode InvalidArgumentError} about `message` becomes one about
 * `entries[3].message`. Other errors are returned as they are.
 */
export function entryError(error: unknown, index: number, list = "entries"): unknown {
  if (!(error instanceof InvalidArgumentError)) return error;
  const detail = error.message.slice(error.argument.length + 2);
  return new InvalidArgumentError(`${list}[${index}].${error.argument}`, detail, { cause: error });
}

/**
 * Renames the entry an error of a broker's `publishBatch` names, from the
 * broker's list (`entries[1].message`) to the caller's (`events[4].message`),
 * with `indexes[i]` the caller's index of the broker's entry `i`.
 */
export function renameEntry(error: unknown, indexes: readonly number[], list: string): unknown {
  if (!(error instanceof InvalidArgumentError)) return error;
  const match = /^entries\[(\d+)\](.*)$/s.exec(error.argument);
  const index = match === null ? undefined : indexes[Number(match[1])];
  if (index === undefined) return error;
  const argument = `${list}[${index}]${match![2]}`;
  const detail = error.message.slice(error.argument.length + 2);
  return new InvalidArgumentError(argument, detail, { cause: error.cause ?? error });
}

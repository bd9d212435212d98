/**
 * Dead letters as every durable broker lists and replays them: what a
 * `deadLetters()` call returns and the options of `deadLetters()` and
 * `replayDeadLetters()`.
 *
 * @module
 */

/**
 * One message a durable broker gave up on.
 *
 * @example
 * ```ts
 * import type { DeadLetter } from "@opensecflow/eventbus";
 * function describe(letter: DeadLetter): string {
 *   return `${letter.subscription} gave up on ${letter.entryId} after ${letter.attempts}: ${letter.error}`;
 * }
 * ```
 */
export interface DeadLetter {
  /** Id of the dead letter, for `replayDeadLetters(channel, { ids })`. */
  id: string;
  /** Channel the message was published to. */
  channel: string;
  /** Group whose subscription gave up on it. */
  group: string;
  /** Subscription (handler) name that gave up on it. */
  subscription: string;
  /** The message's id where the broker keeps it (a stream entry id, or the message id). */
  entryId: string;
  /** Deliveries made. */
  attempts: number;
  /** Why it was given up. */
  error: string;
  /** When it was dead-lettered, ISO 8601. */
  failedAt: string;
  /** The message, decoded when possible, else what was stored. */
  message: unknown;
}

/**
 * Options of `deadLetters(channel, options)`.
 *
 * @example
 * ```ts
 * import type { DeadLettersOptions } from "@opensecflow/eventbus";
 * const options: DeadLettersOptions = { count: 50 };
 * ```
 */
export interface DeadLettersOptions {
  /** Most dead letters to return, oldest first; default 100. */
  count?: number;
}

/**
 * Options of `replayDeadLetters(channel, options)`.
 *
 * @example
 * ```ts
 * import type { ReplayOptions } from "@opensecflow/eventbus";
 * const options: ReplayOptions = { ids: ["1700000000000-0"] };
 * ```
 */
export interface ReplayOptions {
  /** Dead-letter ids to replay; default: all of the channel's. */
  ids?: string[];
}

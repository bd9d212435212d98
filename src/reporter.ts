/**
 * Where a broker reports what went wrong: handler failures and dropped
 * messages go to the logger, the `onError` hook and the broker's
 * `EventTarget` listeners. Reporting never throws: a logger or hook that
 * throws is caught, so it can neither crash nor stall consumption.
 *
 * @module
 */

import type { HandlerFailure } from "./broker.ts";
import { DropEvent, HandlerErrorEvent } from "./broker_events.ts";
import type { Logger } from "./logger.ts";

/**
 * Guarded reporting of failures and drops for one broker.
 *
 * @example
 * ```ts
 * import { Reporter } from "./reporter.ts";
 * const reporter = new Reporter(console, undefined, new EventTarget());
 * reporter.drop("jobs", "worker", 2, "the broker stopped");
 * ```
 */
export class Reporter {
  /** Creates a reporter writing to `logger`, `onError` and `target`'s listeners. */
  constructor(
    readonly logger: Logger,
    readonly onError: ((failure: HandlerFailure) => void) | undefined,
    readonly target: EventTarget,
  ) {}

  /** A handler call failed. */
  failure(failure: HandlerFailure): void {
    const type = failure.eventType ? ` (type ${failure.eventType})` : "";
    const error = failure.error;
    this.#log(
      "error",
      `handler "${failure.subscription}" failed on channel "${failure.channel}" for message ${failure.messageId}${type}, attempt ${failure.attempt}: ${
        error instanceof Error ? `${error.name}: ${error.message}` : String(error)
      }`,
      error,
    );
    if (this.onError !== undefined) {
      try {
        this.onError(failure);
      } catch (hookError) {
        this.#log("error", "onError hook threw", hookError);
      }
    }
    this.target.dispatchEvent(new HandlerErrorEvent(failure));
  }

  /** `count` accepted messages were given up on. */
  drop(channel: string, subscription: string | undefined, count: number, reason: string): void {
    const who = subscription === undefined ? "" : ` of "${subscription}"`;
    this.#log("warn", `${count} message(s)${who} on "${channel}" dropped: ${reason}`);
    this.target.dispatchEvent(new DropEvent(channel, subscription, count, reason));
  }

  /** Logs at `level`; a logger that throws is ignored. */
  log(level: "debug" | "info" | "warn" | "error", message: string, detail?: unknown): void {
    this.#log(level, message, detail);
  }

  #log(level: "debug" | "info" | "warn" | "error", message: string, detail?: unknown): void {
    try {
      if (detail === undefined) this.logger[level](message);
      else this.logger[level](message, detail);
    } catch {
      // A broken logger must not take consumption down with it.
    }
  }
}

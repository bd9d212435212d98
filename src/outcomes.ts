/**
 * Explicit outcomes of a handler call, after FastStream: a handler (or a
 * handle middleware) throws one of these to say what should happen to the
 * message instead of letting the broker infer it from success or failure.
 *
 * @module
 */

import { InvalidArgumentError } from "./errors.ts";

/**
 * Acknowledges the message at once: the handler stops here, nothing is
 * reported as a failure and the message is not delivered again. A request
 * gets `undefined` as its reply.
 *
 * @example
 * ```ts
 * import { AckMessage, MemoryBroker } from "@opensecflow/eventbus";
 * await using broker = new MemoryBroker();
 * broker.subscribe("jobs", function worker(job: { done: boolean }) {
 *   if (job.done) throw new AckMessage(); // nothing left to do
 * });
 * ```
 */
export class AckMessage extends Error {
  /** Creates the outcome. */
  constructor() {
    super("acknowledged by the handler");
    this.name = "AckMessage";
  }
}

/**
 * Options of {@linkcode NackMessage}.
 *
 * @example
 * ```ts
 * import type { NackOptions } from "@opensecflow/eventbus";
 * const options: NackOptions = { delay: 1_000 };
 * ```
 */
export interface NackOptions {
  /** Milliseconds before the next delivery; default the broker's retry backoff. */
  delay?: number;
}

/**
 * Asks for another delivery of the message, after `delay` ms (the broker's
 * backoff when omitted). It counts toward the broker's `maxDeliveries`; once
 * they are used up the message is dead-lettered (durable brokers) or dropped
 * and counted (`MemoryBroker`). No failure is reported.
 *
 * @example
 * ```ts
 * import { MemoryBroker, NackMessage } from "@opensecflow/eventbus";
 * await using broker = new MemoryBroker({ maxDeliveries: 3 });
 * broker.subscribe("jobs", function worker(_job: unknown, context) {
 *   if (context.attempt === 1) throw new NackMessage({ delay: 10 }); // not ready yet
 * });
 * ```
 */
export class NackMessage extends Error {
  /** Milliseconds before the next delivery, when given. */
  readonly delay: number | undefined;

  /** Creates the outcome. */
  constructor(options: NackOptions = {}) {
    const delay = options?.delay;
    if (
      delay !== undefined && (typeof delay !== "number" || !Number.isFinite(delay) || delay < 0)
    ) {
      throw new InvalidArgumentError(
        "delay",
        `must be a number of milliseconds >= 0, got ${String(delay)}`,
      );
    }
    super(`delivery refused by the handler${delay === undefined ? "" : `, retry in ${delay} ms`}`);
    this.name = "NackMessage";
    this.delay = delay;
  }
}

/**
 * Refuses the message for good: no retry. Durable brokers dead-letter it at
 * once with `reason`; `MemoryBroker` drops it and counts it in
 * `stats().dropped`. No failure is reported; a request rejects with
 * `RequestFailedError`.
 *
 * @example
 * ```ts
 * import { MemoryBroker, RejectMessage } from "@opensecflow/eventbus";
 * await using broker = new MemoryBroker();
 * broker.subscribe("jobs", function worker(job: { tenant?: string }) {
 *   if (!job.tenant) throw new RejectMessage("no tenant: this job can never succeed");
 * });
 * ```
 */
export class RejectMessage extends Error {
  /** Why the message was refused. */
  readonly reason: string;

  /** Creates the outcome; `options.cause` may carry the error behind it. */
  constructor(reason: string = "rejected by the handler", options?: ErrorOptions) {
    super(String(reason), options);
    this.name = "RejectMessage";
    this.reason = String(reason);
  }
}

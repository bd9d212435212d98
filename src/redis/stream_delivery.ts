/**
 * One stream entry held by a consumer: its id and raw fields, the decoded
 * message and transport fields, and the handler's context, all in one
 * object so an entry costs a single allocation beyond its message.
 *
 * @module
 */

import type { MessageContext } from "../broker.ts";
import { CloudEvent } from "../event.ts";
import type { RunnerDelivery } from "../handler_runner.ts";
import type { AckEntry, StartMark } from "./ack_batcher.ts";
import { type EntryRuns, NO_RUNS } from "./attempts.ts";
import type { HeldEntry } from "./claimer.ts";
import type { DecodedEntry, EntryFields } from "./entry_codec.ts";
import type { Linked } from "./held_entries.ts";

/** Where a delivery belongs: its channel and subscription. */
export interface DeliveryOwner {
  readonly channel: string;
  readonly name: string;
}

const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

/**
 * An entry on its way through one subscription; it is also the handler's
 * context. `decodeEntryInto` fills the decoded fields.
 */
export class StreamDelivery
  implements
    RunnerDelivery,
    MessageContext,
    DecodedEntry,
    HeldEntry,
    Linked<StreamDelivery>,
    AckEntry {
  message: unknown = undefined;
  headers: Record<string, string> = NO_HEADERS as Record<string, string>;
  correlationId: string | undefined = undefined;
  replyTo: string | undefined = undefined;
  /** Handler start this call is: 1 for a first delivery, else counted in Redis. */
  attempt: number;
  /** Where the record of its handler start is. */
  mark: StartMark = "none";
  /** Earlier runs recorded in Redis, for an entry delivered before. */
  runs: EntryRuns = NO_RUNS;
  /** It was running when its consumer died: it runs alone. */
  suspect = false;
  /**
   * Delivered before (claimed or from its consumer's own history): its start
   * is written before its handler runs, so that even a handler that ends the
   * process in its first turn is counted from this delivery on.
   */
  redelivered = false;
  /** The consumer's call generation while its handler call is unsettled. */
  callGeneration: number | undefined = undefined;
  /** `idempotent` subscriptions: the key marking the event handled. */
  doneKey: string | undefined = undefined;
  /** `idempotent` subscriptions: Redis says the event was handled already. */
  handledBefore = false;
  /** When the entry was last read or claimed, for heartbeats. */
  touched: number;
  /** The handlers' signal when the entry was read: a restart gives later entries a new one. */
  signal: AbortSignal;
  prev: StreamDelivery | undefined = undefined;
  next: StreamDelivery | undefined = undefined;
  held = false;

  constructor(
    readonly owner: DeliveryOwner,
    readonly id: string,
    readonly fields: EntryFields,
    attempt: number,
    touched: number,
    signal: AbortSignal,
  ) {
    this.attempt = attempt;
    this.touched = touched;
    this.signal = signal;
  }

  get context(): MessageContext {
    return this;
  }

  get channel(): string {
    return this.owner.channel;
  }

  get subscription(): string {
    return this.owner.name;
  }

  get messageId(): string {
    const message = this.message;
    return message instanceof CloudEvent ? message.id : this.id;
  }
}

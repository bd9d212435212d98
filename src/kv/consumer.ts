/**
 * The consuming side of `KvBroker`, as the runner host of its
 * subscriptions: a batch's messages go to the subscription's runner, and
 * each call's outcome is recorded in KV before the message counts as
 * settled (a success acknowledges and replies; a failure or `NackMessage`
 * enqueues the message again for its next attempt, or dead-letters it when
 * none is left; `RejectMessage` dead-letters it; a message given back
 * unhandled is parked). When recording fails, the batch fails and KV
 * delivers it again.
 *
 * @module
 */

import type { PublishOptions } from "../broker.ts";
import { describeError } from "../errors.ts";
import type { RunnerHost, Unsettled } from "../handler_runner.ts";
import type { Reporter } from "../reporter.ts";
import { backoffDelay, type ResolvedBackoff } from "../retry.ts";
import { commit } from "./commit.ts";
import { deadLetterEntry } from "./dead_letters.ts";
import { enqueueOptions } from "./delivery_budget.ts";
import {
  bodyText,
  decodeBody,
  encodeBody,
  type Envelope,
  MAX_BATCH_MESSAGES,
  MAX_VALUE_BYTES,
  utf8Length,
} from "./envelope.ts";
import { sortableId } from "./ids.ts";
import type { KvKeys } from "./keys.ts";
import { Batch, KvDelivery, type KvSubscriptionState } from "./kv_subscription.ts";
import type { KvStore } from "./kv_store.ts";
import { park } from "./parking.ts";
import { decodeRecord } from "./record.ts";
import { isReplyChannel, type KvRequests } from "./request_reply.ts";
import type { KvCounters } from "./stats.ts";

/** Longest `delay` KV accepts on an enqueue: 30 days. */
const MAX_DELAY_MS = 30 * 24 * 3_600_000;

/** What the consumer needs from its broker. */
export interface ConsumerHost {
  /** The database in use (throws when stopped). */
  readonly store: () => KvStore;
  readonly keys: KvKeys;
  readonly group: string;
  readonly maxDeliveries: number;
  readonly backoff: ResolvedBackoff;
  readonly counters: KvCounters;
  readonly reporter: Reporter;
  readonly requests: KvRequests;
  /** Publishes a handler's result to a plain reply channel. */
  readonly publish: (message: unknown, channel: string, options: PublishOptions) => Promise<void>;
  /** Whether the broker is started (then a live subscription parks what it gives back at once). */
  readonly started: () => boolean;
}

/**
 * Receives batches for the subscriptions of one broker and settles them.
 *
 * @example
 * ```ts
 * import { KvConsumer } from "./consumer.ts";
 * import { KvKeys } from "./keys.ts";
 * import { KvRequests } from "./request_reply.ts";
 * import { newKvCounters } from "./stats.ts";
 * import { Reporter } from "../reporter.ts";
 * import { DEFAULT_BACKOFF } from "../retry.ts";
 * const kv = await Deno.openKv(":memory:");
 * const keys = new KvKeys(["docs"]);
 * const consumer = new KvConsumer({
 *   store: () => kv, keys, group: "billing", maxDeliveries: 5, backoff: DEFAULT_BACKOFF,
 *   counters: newKvCounters(), reporter: new Reporter(console, undefined, new EventTarget()),
 *   requests: new KvRequests(() => kv, keys), publish: () => Promise.resolve(),
 *   started: () => true,
 * });
 * await consumer.whenSettled();
 * console.log(consumer.inFlight); // 0
 * kv.close();
 * ```
 */
export class KvConsumer implements RunnerHost<KvDelivery> {
  readonly #host: ConsumerHost;
  /** Batches being handled. */
  readonly #batches = new Set<Promise<void>>();
  /** Deliveries held by a handler call, per subscription. */
  readonly #running = new Map<KvSubscriptionState, Set<KvDelivery>>();
  #arrivals = 0;

  /** Creates the consumer of a broker. */
  constructor(host: ConsumerHost) {
    this.#host = host;
  }

  /** Batches being handled now. */
  get inFlight(): number {
    return this.#batches.size;
  }

  /** Resolves once every batch being handled is settled (or failed). */
  async whenSettled(): Promise<void> {
    await Promise.allSettled([...this.#batches]);
  }

  /** Starts tracking the running calls of a subscription. */
  track(state: KvSubscriptionState): void {
    this.#running.set(state, new Set());
  }

  /** Stops tracking a closed subscription. */
  untrack(state: KvSubscriptionState): void {
    this.#running.delete(state);
  }

  /** Takes the deliveries held by running calls of a subscription (a stop gave up on them). */
  takeRunning(state: KvSubscriptionState): KvDelivery[] {
    const running = this.#running.get(state);
    if (running === undefined) return [];
    const taken = [...running];
    running.clear();
    return taken;
  }

  /**
   * Hands the messages of a batch to a subscription; resolves once each is
   * settled. A batch or message that cannot be read is dead-lettered.
   */
  receive(state: KvSubscriptionState, envelope: Envelope): Promise<void> {
    let records: unknown[];
    try {
      records = decodeBody(envelope.body);
    } catch (error) {
      return this.#track(this.#deadLetterBody(envelope, error));
    }
    const batch = new Batch(envelope, records.length);
    const deliveries: KvDelivery[] = [];
    for (const raw of records) {
      try {
        deliveries.push(
          new KvDelivery(state, batch, raw, decodeRecord(raw), ++this.#arrivals),
        );
      } catch (error) {
        this.#deadLetterInvalid(envelope, batch, raw, error);
      }
    }
    state.push(deliveries);
    return this.#track(batch.settled);
  }

  #track(settled: Promise<void>): Promise<void> {
    this.#batches.add(settled);
    settled.then(
      () => this.#batches.delete(settled),
      () => this.#batches.delete(settled),
    );
    return settled;
  }

  #deadLetterBody(envelope: Envelope, error: unknown): Promise<void> {
    const { key, value } = deadLetterEntry(this.#host.keys, {
      channel: envelope.channel,
      group: envelope.group,
      subscription: envelope.subscription,
      entryId: "",
      attempts: envelope.attempt,
      error: `cannot be read: ${describeError(error).message}`,
    }, bodyText(envelope.body));
    const kv = this.#host.store();
    return commit(() => kv.atomic().set(key, value)).then(() => {
      this.#host.counters.deadLettered++;
    });
  }

  #deadLetterInvalid(envelope: Envelope, batch: Batch, raw: unknown, error: unknown): void {
    const id = raw as { e?: { id?: unknown }; i?: unknown } | null;
    const entryId = id?.e?.id ?? id?.i;
    const { key, value } = deadLetterEntry(this.#host.keys, {
      channel: envelope.channel,
      group: envelope.group,
      subscription: envelope.subscription,
      entryId: typeof entryId === "string" ? entryId : "",
      attempts: envelope.attempt,
      error: `cannot be decoded: ${describeError(error).message}`,
    }, JSON.stringify(raw));
    const kv = this.#host.store();
    this.#settleAfter(commit(() => kv.atomic().set(key, value)), batch, () => {
      this.#host.counters.deadLettered++;
    });
  }

  /** Settles one message of `batch` once `work` is done; a failure makes KV deliver the batch again. */
  #settleAfter(work: Promise<unknown>, batch: Batch, done?: () => void): Promise<void> {
    return work.then(() => done?.(), (error) => {
      batch.fail(error);
      this.#host.reporter.log("error", "recording the outcome of a message in KV failed", error);
    }).finally(() => batch.settleOne());
  }

  /** A handler call took the delivery. */
  taken(delivery: KvDelivery): void {
    delivery.running = true;
    this.#running.get(delivery.state)?.add(delivery);
  }

  #release(delivery: KvDelivery): void {
    delivery.running = false;
    this.#running.get(delivery.state)?.delete(delivery);
  }

  /** The handler returned: acknowledge and reply. */
  succeeded(delivery: KvDelivery, result: unknown): void | Promise<void> {
    this.#release(delivery);
    this.#host.counters.consumed++;
    const replyTo = delivery.replyTo;
    if (isReplyChannel(replyTo)) {
      return this.#host.requests.reply(replyTo, result).catch((error) => {
        this.#host.reporter.log(
          "error",
          `reply of "${delivery.subscription}" was not written`,
          error,
        );
      }).finally(() => delivery.batch.settleOne());
    }
    if (replyTo !== undefined && result !== undefined) {
      this.#host.publish(result, replyTo, { correlationId: delivery.correlationId }).catch((
        error,
      ) =>
        this.#host.reporter.log(
          "error",
          `reply of handler "${delivery.subscription}" to "${replyTo}" failed`,
          error,
        )
      );
    }
    delivery.batch.settleOne();
  }

  /** The call ended otherwise: retry, dead-letter or park. */
  unsettled(delivery: KvDelivery, outcome: Unsettled): void | Promise<void> {
    this.#release(delivery);
    const attempts = delivery.attempt;
    switch (outcome.kind) {
      case "error": {
        this.#host.counters.errors++;
        if (attempts < this.#host.maxDeliveries) {
          return this.#retry(delivery, backoffDelay(this.#host.backoff, attempts));
        }
        const { name, message } = describeError(outcome.error);
        return this.#giveUp(
          delivery,
          `failed on each of its ${attempts} deliveries, last with ${name}: ${message}`,
          outcome.error,
        );
      }
      case "nack":
        if (attempts < this.#host.maxDeliveries) {
          return this.#retry(
            delivery,
            outcome.delay ?? backoffDelay(this.#host.backoff, attempts),
          );
        }
        return this.#giveUp(
          delivery,
          `refused (NackMessage) on each of its ${attempts} deliveries`,
          outcome.error,
        );
      case "reject":
        return this.#giveUp(delivery, `rejected: ${outcome.reason}`, outcome.error);
      case "release": {
        const state = delivery.state;
        state.leftovers.push(delivery);
        // A live subscription parks it now; a closing one (or a stop) parks its leftovers itself.
        if (state.active && this.#host.started()) {
          return this.parkLeftovers(state);
        }
      }
    }
  }

  /** Enqueues the message again, alone, for its next attempt after `delay` ms. */
  #retry(delivery: KvDelivery, delay: number): Promise<void> {
    const envelope: Envelope = {
      ...delivery.batch.envelope,
      batch: sortableId(),
      attempt: delivery.attempt + 1,
      deliveries: this.#host.maxDeliveries,
      body: encodeBody([JSON.stringify(delivery.raw)]),
    };
    const wait = Math.min(MAX_DELAY_MS, Math.max(0, Math.round(delay)));
    const kv = this.#host.store();
    const options = enqueueOptions(this.#host.keys, envelope, this.#host.backoff, wait);
    const committed = commit(() => kv.atomic().enqueue(envelope, options));
    return this.#settleAfter(committed, delivery.batch, () => this.#host.counters.retried++);
  }

  /** Dead-letters the message and tells a waiting requester its handler gave up. */
  #giveUp(delivery: KvDelivery, reason: string, error: unknown): Promise<void> {
    const { key, value } = deadLetterEntry(this.#host.keys, {
      channel: delivery.channel,
      group: this.#host.group,
      subscription: delivery.subscription,
      entryId: delivery.messageId,
      attempts: delivery.attempt,
      error: reason,
    }, JSON.stringify(delivery.raw));
    const replyTo = delivery.replyTo;
    const kv = this.#host.store();
    const committed = commit(() => kv.atomic().set(key, value)).then(() => {
      this.#host.counters.deadLettered++;
      if (!isReplyChannel(replyTo)) return;
      return this.#host.requests.failed(replyTo, delivery.subscription, error).catch((failure) =>
        this.#host.reporter.log("error", "the failure of a request could not be recorded", failure)
      );
    });
    return this.#settleAfter(committed, delivery.batch);
  }

  /** Parks the messages a subscription gave back, in arrival order; settles them. */
  async parkLeftovers(state: KvSubscriptionState): Promise<void> {
    const leftovers = state.leftovers.splice(0).sort((a, b) => a.sequence - b.sequence);
    if (leftovers.length === 0) return;
    const envelopes = this.#envelopesOf(leftovers);
    try {
      await park(this.#host.store(), envelopes);
      this.#host.counters.parked += envelopes.length;
    } catch (error) {
      this.#host.reporter.log("error", `parking messages of "${state.name}" failed`, error);
      for (const delivery of leftovers) delivery.batch.fail(error);
    }
    for (const delivery of leftovers) delivery.batch.settleOne();
  }

  /** Batches of given-back messages: consecutive ones of one attempt, each fitting a KV value. */
  #envelopesOf(deliveries: readonly KvDelivery[]): Envelope[] {
    const envelopes: Envelope[] = [];
    let records: string[] = [];
    let bytes = 0;
    let first: KvDelivery | undefined;
    const flush = () => {
      if (first === undefined) return;
      envelopes.push({
        ...first.batch.envelope,
        subscription: first.subscription,
        group: this.#host.group,
        // Derived from the first message's batch: sorts with it, in publish order.
        batch: `${first.batch.envelope.batch}~${sortableId()}`,
        body: encodeBody(records),
      });
      records = [];
      bytes = 0;
      first = undefined;
    };
    for (const delivery of deliveries) {
      const record = JSON.stringify(delivery.raw);
      const size = utf8Length(record) + 1;
      if (
        first !== undefined &&
        (first.attempt !== delivery.attempt || records.length >= MAX_BATCH_MESSAGES ||
          bytes + size > MAX_VALUE_BYTES - 8_192)
      ) flush();
      first ??= delivery;
      records.push(record);
      bytes += size;
    }
    flush();
    return envelopes;
  }
}

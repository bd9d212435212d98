/**
 * Request/reply over KV without polling: a request carries a reply channel
 * naming a reply id; the first handler to succeed writes its result under
 * `[...prefix, "reply", id, "ok"]` (only if nothing is there yet), a handler
 * that gives up counts itself under `[..., "failed"]`; both expire on their
 * own. The requester watches the two keys (`kv.watch`) and settles on the
 * first reply, or once every subscription failed, or at its timeout.
 *
 * `kv.watch` sees writes made through any handle in the same process, and on
 * Deno Deploy writes made anywhere; a local database file shared by several
 * processes notifies nothing, so there a request answered in another
 * process times out.
 *
 * @module
 */

import {
  BrokerError,
  describeError,
  NoSubscribersError,
  RequestFailedError,
  RequestTimeoutError,
} from "../errors.ts";
import { commit } from "./commit.ts";
import type { KvKeys } from "./keys.ts";
import type { KvStore, KvStoreEntryMaybe } from "./kv_store.ts";
import { decodeRecord, encodeRecord } from "./record.ts";

/** Reply channels start with this; the rest is the reply id. */
export const REPLY_CHANNEL_PREFIX = "eventbus.kv.reply.";

/** How long reply keys live when nobody deletes them (a requester that went away). */
const REPLY_TTL_MS = 600_000;

/** Attempts at counting a failure when other handlers count theirs at the same time. */
const FAILURE_ATTEMPTS = 20;

interface Failures {
  readonly count: number;
  readonly subscription: string;
  readonly name: string;
  readonly message: string;
}

interface Pending {
  /** Handlers that may answer; unknown (infinite) until the publish committed. */
  outstanding: number;
  /** Failures seen so far. */
  failures: Failures | null;
  settle(outcome: { value: unknown } | { error: unknown }): void;
}

/** Whether a channel is a reply channel. */
export function isReplyChannel(channel: string | undefined): channel is string {
  return channel !== undefined && channel.startsWith(REPLY_CHANNEL_PREFIX);
}

/**
 * The requests of one broker and the replies its handlers send.
 *
 * @example
 * ```ts
 * import { KvKeys } from "./keys.ts";
 * import { KvRequests } from "./request_reply.ts";
 * const kv = await Deno.openKv(":memory:");
 * const requests = new KvRequests(() => kv, new KvKeys(["docs"]));
 * const answer = requests.request("prices", 1_000, undefined, async (replyTo) => {
 *   await requests.reply(replyTo, 12.5); // a handler answering at once
 *   return 1; // subscriptions that got the request
 * });
 * console.log(await answer); // 12.5
 * kv.close();
 * ```
 */
export class KvRequests {
  readonly #kv: () => KvStore;
  readonly #keys: KvKeys;
  readonly #pending = new Set<Pending>();

  /** Creates the request side; `kv` gives the database in use. */
  constructor(kv: () => KvStore, keys: KvKeys) {
    this.#kv = kv;
    this.#keys = keys;
  }

  /** Requests waiting for a reply. */
  get pending(): number {
    return this.#pending.size;
  }

  /**
   * Runs one request: watches its reply keys, calls `send` with the reply
   * channel (it resolves with how many subscriptions got the request), and
   * settles with the first reply; rejects with `NoSubscribersError` when
   * none got it, with `RequestFailedError` once all of them failed, with
   * `RequestTimeoutError` after `timeout` ms, with the signal's reason when
   * `signal` aborts, and with `send`'s error.
   */
  request(
    channel: string,
    timeout: number,
    signal: AbortSignal | undefined,
    send: (replyTo: string) => Promise<number>,
  ): Promise<unknown> {
    const id = crypto.randomUUID();
    const kv = this.#kv();
    const ok = this.#keys.reply(id, "ok");
    const failed = this.#keys.reply(id, "failed");
    const reader = kv.watch([ok, failed]).getReader();
    return new Promise<unknown>((resolve, reject) => {
      const onAbort = (): void => pending.settle({ error: signal!.reason });
      const pending: Pending = {
        outstanding: Number.POSITIVE_INFINITY,
        failures: null,
        settle: (outcome) => {
          if (!this.#pending.delete(pending)) return;
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
          reader.cancel().catch(() => {});
          kv.atomic().delete(ok).delete(failed).commit().catch(() => {});
          if ("value" in outcome) resolve(outcome.value);
          else reject(outcome.error);
        },
      };
      this.#pending.add(pending);
      const timer = setTimeout(
        () => pending.settle({ error: new RequestTimeoutError(channel, timeout) }),
        timeout,
      );
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#watch(reader, channel, pending);
      send(REPLY_CHANNEL_PREFIX + id).then((targets) => {
        if (targets === 0) return pending.settle({ error: new NoSubscribersError(channel) });
        pending.outstanding = targets;
        this.#checkFailures(channel, pending);
      }, (error) => pending.settle({ error }));
    });
  }

  /** Fails the request once every subscription that got it failed. */
  #checkFailures(channel: string, pending: Pending): void {
    const failures = pending.failures;
    if (failures === null || failures.count < pending.outstanding) return;
    pending.settle({
      error: new RequestFailedError(
        channel,
        failures.subscription,
        failures.name,
        failures.message,
      ),
    });
  }

  async #watch(
    reader: ReadableStreamDefaultReader<KvStoreEntryMaybe[]>,
    channel: string,
    pending: Pending,
  ): Promise<void> {
    try {
      for (;;) {
        const next = await reader.read();
        if (next.done) return;
        const [ok, failed] = next.value;
        if (ok.versionstamp !== null) {
          try {
            const record = (ok.value as { record: string }).record;
            pending.settle({ value: decodeRecord(JSON.parse(record)).message });
          } catch (error) {
            pending.settle({ error });
          }
          return;
        }
        pending.failures = failed.value as Failures | null;
        this.#checkFailures(channel, pending);
      }
    } catch (error) {
      pending.settle({ error: new BrokerError("watching a reply failed", { cause: error }) });
    }
  }

  /** Rejects every waiting request, e.g. on stop. */
  rejectAll(error: Error): void {
    for (const pending of [...this.#pending]) pending.settle({ error });
  }

  /** Writes a handler's result as the reply, unless a reply is there already. */
  async reply(replyTo: string, result: unknown): Promise<void> {
    const ok = this.#keys.reply(replyTo.slice(REPLY_CHANNEL_PREFIX.length), "ok");
    const record = encodeRecord(result, "reply");
    const kv = this.#kv();
    await commit(() =>
      kv.atomic()
        .check({ key: ok, versionstamp: null })
        .set(ok, { record }, { expireIn: REPLY_TTL_MS })
    );
  }

  /** Counts a handler that gave up on a request, with its error. */
  async failed(replyTo: string, subscription: string, error: unknown): Promise<void> {
    const key = this.#keys.reply(replyTo.slice(REPLY_CHANNEL_PREFIX.length), "failed");
    const { name, message } = describeError(error);
    const kv = this.#kv();
    for (let i = 0; i < FAILURE_ATTEMPTS; i++) {
      const current = await kv.get(key);
      const count = (current.value as Failures | null)?.count ?? 0;
      const value: Failures = { count: count + 1, subscription, name, message };
      const result = await commit(() =>
        kv.atomic()
          .check({ key, versionstamp: current.versionstamp })
          .set(key, value, { expireIn: REPLY_TTL_MS })
      );
      if (result.ok) return;
    }
    throw new BrokerError(`could not record the failure of "${subscription}" for a request`);
  }
}

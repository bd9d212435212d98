/**
 * The part of a Deno KV database the broker uses, as a structural type:
 * `Deno.Kv` fits it, and so does the `Kv` of the `@deno/kv` npm package on
 * Node. Keeping the broker on this shape keeps `Deno.*` out of its code and
 * out of its published types.
 *
 * @module
 */

/** One part of a KV key. */
export type KvKeyPart = Uint8Array | string | number | bigint | boolean;

/** A KV key: a tuple of parts (a plain array: `@deno/kv` on Node takes no readonly ones). */
export type KvKey = KvKeyPart[];

/** A stored entry. */
export interface KvStoreEntry {
  /** Its key. */
  key: readonly unknown[];
  /** Its value. */
  value: unknown;
  /** Its version. */
  versionstamp: string;
}

/** An entry that may be absent (`versionstamp` is `null` then). */
export interface KvStoreEntryMaybe {
  /** Its key. */
  key: readonly unknown[];
  /** Its value, `null` when absent. */
  value: unknown;
  /** Its version, `null` when absent. */
  versionstamp: string | null;
}

/** Options of an enqueue. */
export interface KvEnqueueOptions {
  /** Milliseconds before delivery. */
  delay?: number;
  /** Keys the value is written to when delivery is given up. */
  keysIfUndelivered?: KvKey[];
  /** Waits between redeliveries after a failed delivery. */
  backoffSchedule?: number[];
}

/** An atomic operation: checks, mutations and enqueues committed together. */
export interface KvStoreAtomic {
  /** Fails the commit unless each key has the given version (`null`: absent). */
  check(...checks: { key: KvKey; versionstamp: string | null }[]): KvStoreAtomic;
  /** Sets a value. */
  set(key: KvKey, value: unknown, options?: { expireIn?: number }): KvStoreAtomic;
  /** Deletes a key. */
  delete(key: KvKey): KvStoreAtomic;
  /** Adds to a 64-bit counter. */
  sum(key: KvKey, n: bigint): KvStoreAtomic;
  /** Enqueues a value. */
  enqueue(value: unknown, options?: KvEnqueueOptions): KvStoreAtomic;
  /** Commits; `ok: false` when a check failed. */
  commit(): Promise<{ ok: boolean; versionstamp?: string }>;
}

/**
 * The KV database a `KvBroker` works on. `Deno.Kv` fits.
 *
 * @example
 * ```ts
 * import { KvBroker, type KvStore } from "@opensecflow/eventbus/kv";
 * const kv: KvStore = await Deno.openKv(":memory:");
 * const broker = new KvBroker({ kv });
 * ```
 */
export interface KvStore {
  /** Starts an atomic operation. */
  atomic(): KvStoreAtomic;
  /** Reads one key. */
  get(key: KvKey): Promise<KvStoreEntryMaybe>;
  /** Lists the keys under a prefix, in key order. */
  list(
    selector: { prefix: KvKey },
    options?: { limit?: number; reverse?: boolean; batchSize?: number },
  ): AsyncIterable<KvStoreEntry>;
  /** Deletes a key. */
  delete(key: KvKey): Promise<void>;
  /** The current values of some keys, then their values after each change. */
  watch(keys: KvKey[]): ReadableStream<KvStoreEntryMaybe[]>;
  /** Calls `handler` for each message of the queue; resolves when the database closes. */
  // deno-lint-ignore no-explicit-any
  listenQueue(handler: (value: any) => Promise<void> | void): Promise<void>;
  /** Closes the database. */
  close(): void;
}

/** Opens a database: `path` names it; `undefined` means the platform's default database. */
export type KvOpener = (path: string | undefined) => Promise<KvStore>;

let opener: KvOpener | undefined;

/** Sets how a broker without a `kv` opens its database (the entry module sets `Deno.openKv`). */
export function setKvOpener(open: KvOpener): void {
  opener = open;
}

/** The opener set by the entry module, if any. */
export function kvOpener(): KvOpener | undefined {
  return opener;
}

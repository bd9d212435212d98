/**
 * The subscription registry: every (channel, group, name) ever subscribed,
 * kept in KV so a publisher on any instance fans out to subscriptions made
 * on any other. Registering bumps a version key in the same commit, and a
 * publish commits only if that version is still the one its fan-out was
 * computed from: a subscription registered meanwhile makes the commit fail,
 * the registry is read again and the fan-out recomputed. Watching the
 * version key only keeps the cache fresh; correctness comes from the check.
 *
 * @module
 */

import { commit } from "./commit.ts";
import type { KvKeys } from "./keys.ts";
import type { KvStore } from "./kv_store.ts";

/** One registered subscription. */
export interface Target {
  /** Channel subscribed to. */
  readonly channel: string;
  /** Group of the subscribing service. */
  readonly group: string;
  /** Durable name of the subscription. */
  readonly name: string;
}

/** What a registry entry holds. */
interface StoredTarget extends Target {
  readonly since: string;
}

/** A snapshot of the registry and the version it was read at. */
export interface RegistrySnapshot {
  /** Version of the registry key when read (`null`: nothing registered yet). */
  readonly versionstamp: string | null;
  /** Targets by channel. */
  readonly byChannel: ReadonlyMap<string, readonly Target[]>;
}

const NO_TARGETS: readonly Target[] = Object.freeze([]);

function isTarget(value: unknown): value is StoredTarget {
  const target = value as Partial<StoredTarget> | null;
  return typeof target?.channel === "string" && typeof target.group === "string" &&
    typeof target.name === "string";
}

/**
 * The registry of one key prefix, cached.
 *
 * @example
 * ```ts
 * import { KvKeys } from "./keys.ts";
 * import { Registry } from "./registry.ts";
 * const kv = await Deno.openKv(":memory:");
 * const registry = new Registry(kv, new KvKeys(["docs"]));
 * await registry.register({ channel: "orders", group: "billing", name: "charge" });
 * const snapshot = await registry.snapshot();
 * console.log(snapshot.byChannel.get("orders")?.length); // 1
 * kv.close();
 * ```
 */
export class Registry {
  readonly #kv: KvStore;
  readonly #keys: KvKeys;
  #snapshot: RegistrySnapshot | undefined;
  #loading: Promise<RegistrySnapshot> | undefined;

  /** Creates the registry of `keys.prefix` on `kv`. */
  constructor(kv: KvStore, keys: KvKeys) {
    this.#kv = kv;
    this.#keys = keys;
  }

  /** The cached snapshot, read first when there is none or it went stale. */
  snapshot(): Promise<RegistrySnapshot> {
    if (this.#snapshot !== undefined) return Promise.resolve(this.#snapshot);
    return this.reload();
  }

  /** The targets of a channel in the cached snapshot (empty when none is cached). */
  cachedTargets(channel: string): readonly Target[] {
    return this.#snapshot?.byChannel.get(channel) ?? NO_TARGETS;
  }

  /** Forgets the cache: the next snapshot is read again. */
  invalidate(): void {
    this.#snapshot = undefined;
  }

  /** Reads the registry again (one read at a time; callers share it). */
  reload(): Promise<RegistrySnapshot> {
    this.#loading ??= this.#read().finally(() => (this.#loading = undefined));
    return this.#loading;
  }

  async #read(): Promise<RegistrySnapshot> {
    // The version first: an entry registered after it makes a commit checked against it fail.
    const version = await this.#kv.get(this.#keys.registry);
    const byChannel = new Map<string, Target[]>();
    for await (const entry of this.#kv.list({ prefix: this.#keys.subscriptions })) {
      if (!isTarget(entry.value)) continue;
      const { channel, group, name } = entry.value;
      const targets = byChannel.get(channel);
      if (targets === undefined) byChannel.set(channel, [{ channel, group, name }]);
      else targets.push({ channel, group, name });
    }
    const snapshot: RegistrySnapshot = { versionstamp: version.versionstamp, byChannel };
    this.#snapshot = snapshot;
    return snapshot;
  }

  /**
   * Registers a subscription unless it already is; resolves once it is in
   * KV, so a publish on any instance committed afterwards fans out to it.
   */
  async register(target: Target): Promise<void> {
    const key = this.#keys.subscription(target.channel, target.group, target.name);
    const existing = await this.#kv.get(key);
    if (existing.versionstamp !== null) return;
    const stored: StoredTarget = { ...target, since: new Date().toISOString() };
    const result = await commit(() =>
      this.#kv.atomic()
        .check({ key, versionstamp: null })
        .set(key, stored)
        .sum(this.#keys.registry, 1n)
    );
    // A failed check: another instance registered it first, which is as good.
    if (result.ok) this.invalidate();
  }
}

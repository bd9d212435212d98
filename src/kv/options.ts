/**
 * Options of `KvBroker` and their validation.
 *
 * @module
 */

import type { BrokerOptions } from "../broker.ts";
import { InvalidArgumentError } from "../errors.ts";
import { checkLogger } from "../handler_support.ts";
import { defaultLogger, type Logger } from "../logger.ts";
import { resolveBackoff, type ResolvedBackoff, resolveMaxDeliveries } from "../retry.ts";
import type { KvStore } from "./kv_store.ts";

/** A part of `keyPrefix`: the key parts that compare the same in every process. */
export type KvPrefixPart = string | number | bigint | boolean;

/**
 * Options of `KvBroker`.
 *
 * @example
 * ```ts
 * import type { KvBrokerOptions } from "@opensecflow/eventbus/kv";
 * const options: KvBrokerOptions = { path: "./data.kv", group: "billing", maxDeliveries: 3 };
 * ```
 */
export interface KvBrokerOptions extends BrokerOptions {
  /** An opened database; the broker never closes it. */
  kv?: KvStore;
  /**
   * Where to open the database when no `kv` is given (closed again by
   * `stop()`); default the platform's default database (on Deno Deploy, the
   * project's).
   */
  path?: string;
  /** First parts of every key the broker writes; a string is one part; default `["eventbus"]`. */
  keyPrefix?: string | readonly KvPrefixPart[];
  /**
   * The service name: the instances sharing a group (and a subscription name)
   * share the work; default `"eventbus"`.
   */
  group?: string;
}

/** Options with every field checked and filled in. */
export interface ResolvedKvOptions {
  readonly kv: KvStore | undefined;
  readonly path: string | undefined;
  readonly keyPrefix: readonly KvPrefixPart[];
  readonly group: string;
  readonly maxDeliveries: number;
  readonly backoff: ResolvedBackoff;
  readonly logger: Logger;
}

const DEFAULT_PREFIX: readonly KvPrefixPart[] = Object.freeze(["eventbus"]);

/** Longest channel, subscription or group name: KV keys are at most 2 KiB. */
export const MAX_NAME_LENGTH = 256;

/** Checks a name that becomes a key part. */
export function checkKeyName(value: unknown, argument: string): string {
  if (typeof value !== "string" || value.trim() === "") {
    throw new InvalidArgumentError(argument, "must be a non-empty string");
  }
  if (value.length > MAX_NAME_LENGTH) {
    throw new InvalidArgumentError(
      argument,
      `must be at most ${MAX_NAME_LENGTH} characters (it is part of a KV key), got ${value.length}`,
    );
  }
  return value;
}

function checkPrefix(value: unknown): readonly KvPrefixPart[] {
  if (value === undefined) return DEFAULT_PREFIX;
  const parts = typeof value === "string" ? [value] : value;
  if (!Array.isArray(parts) || parts.length === 0) {
    throw new InvalidArgumentError(
      "keyPrefix",
      "must be a string or a non-empty array of key parts",
    );
  }
  for (const part of parts) {
    if (!["string", "number", "bigint", "boolean"].includes(typeof part)) {
      throw new InvalidArgumentError(
        "keyPrefix",
        `parts must be strings, numbers, bigints or booleans, got ${typeof part}`,
      );
    }
    if (typeof part === "number" && !Number.isFinite(part)) {
      throw new InvalidArgumentError("keyPrefix", `number parts must be finite, got ${part}`);
    }
  }
  return Object.freeze([...parts]);
}

function checkStore(kv: unknown): KvStore | undefined {
  if (kv === undefined) return undefined;
  for (const method of ["atomic", "get", "list", "delete", "watch", "listenQueue", "close"]) {
    if (typeof (kv as Record<string, unknown> | null)?.[method] !== "function") {
      throw new InvalidArgumentError("kv", `must be an opened Deno.Kv (no ${method}() method)`);
    }
  }
  return kv as KvStore;
}

/** Checks the options of `KvBroker`; throws `InvalidArgumentError` naming the bad one. */
export function resolveKvOptions(options: KvBrokerOptions | undefined): ResolvedKvOptions {
  if (options === undefined) options = {};
  if (options === null || typeof options !== "object") {
    throw new InvalidArgumentError("options", "must be an object");
  }
  const kv = checkStore(options.kv);
  if (options.path !== undefined) {
    if (kv !== undefined) {
      throw new InvalidArgumentError("path", "give either kv or path, not both");
    }
    if (typeof options.path !== "string" || options.path === "") {
      throw new InvalidArgumentError("path", "must be a non-empty string");
    }
  }
  if (options.logger !== undefined) checkLogger(options.logger);
  if (options.onError !== undefined && typeof options.onError !== "function") {
    throw new InvalidArgumentError("onError", `must be a function, got ${typeof options.onError}`);
  }
  return {
    kv,
    path: options.path,
    keyPrefix: checkPrefix(options.keyPrefix),
    group: options.group === undefined ? "eventbus" : checkKeyName(options.group, "group"),
    maxDeliveries: resolveMaxDeliveries(options.maxDeliveries, 5),
    backoff: resolveBackoff(options.retryBackoff),
    logger: options.logger ?? defaultLogger,
  };
}

/** A string naming a prefix, equal for equal prefixes in any process. */
export function prefixIdentity(prefix: readonly unknown[]): string {
  return JSON.stringify(
    prefix.map((part) => typeof part === "bigint" ? { bigint: String(part) } : part),
  );
}

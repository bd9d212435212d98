/**
 * Options of the Redis broker: what a program may pass, their defaults and
 * their validation.
 *
 * @module
 */

import type { BrokerOptions, HandlerFailure } from "../broker.ts";
import { InvalidArgumentError } from "../errors.ts";
import { checkLogger } from "../handler_support.ts";
import { defaultLogger, type Logger } from "../logger.ts";
import { resolveBackoff, type ResolvedBackoff, resolveMaxDeliveries } from "../retry.ts";
import { maskUrl, secretsOf } from "./secrets.ts";

/**
 * Transport of a {@linkcode RedisBrokerOptions.mode}: `"stream"` (Redis
 * Streams with consumer groups: durable, at-least-once) or `"pubsub"` (Redis
 * pub/sub: fire-and-forget, at-most-once).
 *
 * @example
 * ```ts
 * import { RedisBroker, type RedisBrokerMode } from "@opensecflow/eventbus/redis";
 * const mode: RedisBrokerMode = "pubsub";
 * const broker = new RedisBroker({ mode });
 * ```
 */
export type RedisBrokerMode = "stream" | "pubsub";

/**
 * Delivery of stream mode: `"group"` (each event once per consumer group; the
 * instances of a service compete) or `"broadcast"` (every instance gets every
 * event).
 *
 * @example
 * ```ts
 * import { RedisBroker, type RedisDelivery } from "@opensecflow/eventbus/redis";
 * const delivery: RedisDelivery = "broadcast"; // every instance gets every event
 * const broker = new RedisBroker({ delivery, group: "cache-invalidation" });
 * ```
 */
export type RedisDelivery = "group" | "broadcast";

/**
 * Connection options passed to ioredis as they are, over what the URL says.
 * The common ones are typed; any other ioredis option is accepted too.
 *
 * @example
 * ```ts
 * import type { RedisConnectionOptions } from "@opensecflow/eventbus/redis";
 * const redis: RedisConnectionOptions = { username: "app", password: "pw", db: 2, tls: {} };
 * ```
 */
export interface RedisConnectionOptions {
  /** ACL user name. */
  username?: string;
  /** Password (masked in every log, error and stat). */
  password?: string;
  /** Database number. */
  db?: number;
  /** TLS options as Node's `tls.connect` takes them; `{}` turns TLS on. */
  tls?: Record<string, unknown>;
  /** Host, over the URL's. */
  host?: string;
  /** Port, over the URL's. */
  port?: number;
  /** Any other ioredis option. */
  [option: string]: unknown;
}

/**
 * Options of `new RedisBroker(...)`.
 *
 * @example
 * ```ts
 * import { RedisBroker, type RedisBrokerOptions } from "@opensecflow/eventbus/redis";
 * const options: RedisBrokerOptions = {
 *   url: "redis://127.0.0.1:6379",
 *   group: "billing",
 *   maxDeliveries: 3,
 *   retryBackoff: { initial: 200 },
 * };
 * const broker = new RedisBroker(options);
 * ```
 */
export interface RedisBrokerOptions extends BrokerOptions {
  /** Server URL; default `"redis://127.0.0.1:6379"`. `rediss://`, `user:pass@` and `/db` work. */
  url?: string;
  /**
   * Redis Cluster: URLs of some of its nodes (ioredis `Cluster` discovers the
   * rest). Mutually exclusive with `url`; `redis` options apply to every node.
   */
  cluster?: string[];
  /**
   * Replicas that must acknowledge each published entry (Redis `WAIT`)
   * before `publish` resolves; default 0 (the master's acknowledgement is
   * enough). Stream mode only.
   */
  replicas?: number;
  /** Extra ioredis options, merged over what the URL says (e.g. `tls`, `password`, `db`). */
  redis?: RedisConnectionOptions;
  /** Prefix of every key the broker touches; default `"eventbus:"`. */
  keyPrefix?: string;
  /** Consumer-group base name, i.e. the service name; default `"eventbus"`. */
  group?: string;
  /** Consumer name of this instance; default: a random unique id. */
  consumer?: string;
  /** `"stream"` (default) or `"pubsub"`. */
  mode?: RedisBrokerMode;
  /** Stream mode: `"group"` (default) or `"broadcast"`. */
  delivery?: RedisDelivery;
  /** Pending entries idle this long (ms) are claimed from dead consumers; default 30000. */
  claimIdleMs?: number;
  /** How long one blocking read waits (XREADGROUP BLOCK, ms); default 2000. */
  blockMs?: number;
  /** Entries read at once (COUNT); default 100. */
  batchSize?: number;
  /** Approximate stream length cap (MAXLEN ~); default 1000000; 0 never trims. */
  maxLen?: number;
  /** Largest encoded message in bytes; default 1048576; larger publishes are rejected. */
  maxMessageBytes?: number;
  /** Milliseconds a publish may wait for Redis to accept it; default 5000. */
  publishTimeout?: number;
  /** Milliseconds `start()` may wait for a connection; default 5000. */
  connectTimeout?: number;
  /** Pub/sub mode: messages waiting per subscription before new ones are dropped; default 10000. */
  maxQueueSize?: number;
  /**
   * Stream mode: milliseconds during which a CloudEvent whose (`source`, `id`)
   * was already written is accepted again without being written (a retry, or a
   * command resent after a reconnect); default 0, off. Costs one small key
   * per event published, kept for the window.
   */
  dedupeWindow?: number;
}

/**
 * Every option resolved to its value, as {@linkcode resolveRedisOptions}
 * returns it.
 *
 * @example
 * ```ts
 * import { resolveRedisOptions, type ResolvedRedisOptions } from "./options.ts";
 * const resolved: ResolvedRedisOptions = resolveRedisOptions({ group: "billing" });
 * console.log(resolved.group, resolved.batchSize); // "billing" 100
 * ```
 */
export interface ResolvedRedisOptions {
  /** The URL as given (the first cluster node's on a cluster). */
  readonly url: string;
  /** Cluster node URLs; `undefined` on a single node. */
  readonly cluster: readonly string[] | undefined;
  /** Replicas that must acknowledge each published entry. */
  readonly replicas: number;
  /** The URL with its password replaced by `***`: safe to log. */
  readonly maskedUrl: string;
  /** Extra ioredis options. */
  readonly redis: RedisConnectionOptions;
  /** Strings to mask in any text that leaves the broker. */
  readonly secrets: readonly string[];
  /** Prefix of every key. */
  readonly keyPrefix: string;
  /** Consumer-group base name. */
  readonly group: string;
  /** Consumer name of this instance. */
  readonly consumer: string;
  /** Stream or pub/sub. */
  readonly mode: RedisBrokerMode;
  /** Group or broadcast delivery. */
  readonly delivery: RedisDelivery;
  /** Attempts before dead-lettering. */
  readonly maxDeliveries: number;
  /** Backoff between attempts. */
  readonly retryBackoff: ResolvedBackoff;
  /** Idle time after which pending entries are claimed. */
  readonly claimIdleMs: number;
  /** XREADGROUP BLOCK time. */
  readonly blockMs: number;
  /** XREADGROUP COUNT. */
  readonly batchSize: number;
  /** Approximate stream cap; 0 never trims. */
  readonly maxLen: number;
  /** Largest encoded message. */
  readonly maxMessageBytes: number;
  /** Longest wait for Redis to accept a publish. */
  readonly publishTimeout: number;
  /** Longest wait for a connection. */
  readonly connectTimeout: number;
  /** Pub/sub queue bound per subscription. */
  readonly maxQueueSize: number;
  /** Window (ms) in which a CloudEvent's (`source`, `id`) is written once; 0 is off. */
  readonly dedupeWindow: number;
  /** Where notes and errors go. */
  readonly logger: Logger;
  /** Hook for failed handler calls. */
  readonly onError: ((failure: HandlerFailure) => void) | undefined;
}

const DEFAULT_URL = "redis://127.0.0.1:6379";

function integer(value: unknown, name: string, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
    throw new InvalidArgumentError(name, `must be an integer >= ${min}, got ${String(value)}`);
  }
  return value;
}

function oneOf<T extends string>(value: unknown, name: string, allowed: readonly T[]): T {
  if (value === undefined) return allowed[0];
  if (!allowed.includes(value as T)) {
    throw new InvalidArgumentError(
      name,
      `must be one of ${allowed.map((a) => `"${a}"`).join(", ")}, got ${
        typeof value === "string" ? JSON.stringify(value.slice(0, 40)) : typeof value
      }`,
    );
  }
  return value as T;
}

// deno-lint-ignore no-control-regex
const UNSAFE_NAME = /[\s\u0000-\u001f]/;

function text(value: unknown, name: string, fallback: string, allowEmpty = false): string {
  if (value === undefined) return fallback;
  if (
    typeof value !== "string" || (!allowEmpty && value === "") || UNSAFE_NAME.test(value)
  ) {
    throw new InvalidArgumentError(
      name,
      `must be a ${allowEmpty ? "" : "non-empty "}string without whitespace`,
    );
  }
  return value;
}

/** The single URL, or the cluster's node URLs; never both. */
function resolveUrls(options: RedisBrokerOptions): string[] {
  if (options.cluster === undefined) {
    const url = options.url ?? DEFAULT_URL;
    if (typeof url !== "string") {
      throw new InvalidArgumentError("url", `must be a string, got ${typeof url}`);
    }
    return [url];
  }
  if (options.url !== undefined) {
    throw new InvalidArgumentError("cluster", "and url are mutually exclusive: give one");
  }
  const nodes: unknown = options.cluster;
  if (!Array.isArray(nodes) || nodes.length === 0) {
    throw new InvalidArgumentError("cluster", "must be a non-empty array of redis:// URLs");
  }
  return nodes.map((url, i) => {
    if (typeof url !== "string") {
      throw new InvalidArgumentError(`cluster[${i}]`, `must be a string, got ${typeof url}`);
    }
    return url;
  });
}

function checkUrl(rawUrl: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(rawUrl);
  } catch {
    throw new InvalidArgumentError("url", `is not a valid URL: ${maskUrl(rawUrl).slice(0, 80)}`);
  }
  if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:") {
    throw new InvalidArgumentError(
      "url",
      `must start with redis:// or rediss://, got ${maskUrl(rawUrl).slice(0, 80)}`,
    );
  }
  return parsed;
}

/**
 * Validates options and fills in defaults; throws
 * {@linkcode InvalidArgumentError} naming the first wrong option.
 *
 * @example
 * ```ts
 * import { resolveRedisOptions } from "./options.ts";
 * const resolved = resolveRedisOptions({ url: "redis://:pw@localhost:6379" });
 * console.log(resolved.maskedUrl, resolved.maxDeliveries); // "redis://:***@localhost:6379" 5
 * ```
 */
export function resolveRedisOptions(options: RedisBrokerOptions = {}): ResolvedRedisOptions {
  if (options === null || typeof options !== "object") {
    throw new InvalidArgumentError("options", "must be an object");
  }
  const urls = resolveUrls(options);
  const parsed = urls.map(checkUrl);
  const redis = options.redis ?? {};
  if (redis === null || typeof redis !== "object") {
    throw new InvalidArgumentError("redis", "must be an object of ioredis options");
  }
  const logger = options.logger ?? defaultLogger;
  checkLogger(logger);
  if (options.onError !== undefined && typeof options.onError !== "function") {
    throw new InvalidArgumentError("onError", `must be a function, got ${typeof options.onError}`);
  }
  const consumer = text(options.consumer, "consumer", crypto.randomUUID());
  const group = text(options.group, "group", "eventbus");
  const mode = oneOf(options.mode, "mode", ["stream", "pubsub"] as const);
  const dedupeWindow = integer(options.dedupeWindow, "dedupeWindow", 0, 0);
  if (dedupeWindow > 0 && mode === "pubsub") {
    throw new InvalidArgumentError(
      "dedupeWindow",
      "works in stream mode only: pub/sub mode keeps nothing to check a publish against",
    );
  }
  const replicas = integer(options.replicas, "replicas", 0, 0);
  if (replicas > 0 && mode === "pubsub") {
    throw new InvalidArgumentError("replicas", "works in stream mode only (pub/sub keeps nothing)");
  }
  return {
    url: urls[0],
    cluster: options.cluster === undefined ? undefined : urls,
    replicas,
    maskedUrl: urls.map(maskUrl).join(","),
    redis,
    secrets: [...new Set(parsed.flatMap((url) => secretsOf(url, redis)))],
    keyPrefix: text(options.keyPrefix, "keyPrefix", "eventbus:", true),
    group,
    consumer,
    mode,
    delivery: oneOf(options.delivery, "delivery", ["group", "broadcast"] as const),
    maxDeliveries: resolveMaxDeliveries(options.maxDeliveries, 5),
    retryBackoff: resolveBackoff(options.retryBackoff),
    claimIdleMs: integer(options.claimIdleMs, "claimIdleMs", 30_000, 10),
    blockMs: integer(options.blockMs, "blockMs", 2_000, 1),
    batchSize: integer(options.batchSize, "batchSize", 100, 1),
    maxLen: integer(options.maxLen, "maxLen", 1_000_000, 0),
    maxMessageBytes: integer(options.maxMessageBytes, "maxMessageBytes", 1_048_576, 1),
    publishTimeout: integer(options.publishTimeout, "publishTimeout", 5_000, 1),
    connectTimeout: integer(options.connectTimeout, "connectTimeout", 5_000, 1),
    maxQueueSize: integer(options.maxQueueSize, "maxQueueSize", 10_000, 1),
    dedupeWindow,
    logger,
    onError: options.onError,
  };
}

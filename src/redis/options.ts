/**
 * Options of the Redis broker: what a program may pass, their defaults, their
 * validation, and the masking that keeps credentials out of logs, errors and
 * stats.
 *
 * @module
 */

import type { BrokerOptions, HandlerFailure } from "../broker.ts";
import { InvalidArgumentError } from "../errors.ts";
import { defaultLogger, type Logger } from "../logger.ts";

/**
 * Transport of a {@linkcode RedisBrokerOptions.mode}: `"stream"` (Redis
 * Streams with consumer groups: durable, at-least-once) or `"pubsub"` (Redis
 * pub/sub: fire-and-forget, at-most-once).
 */
export type RedisBrokerMode = "stream" | "pubsub";

/**
 * Delivery of stream mode: `"group"` (each event once per consumer group; the
 * instances of a service compete) or `"broadcast"` (every instance gets every
 * event).
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
 * Exponential backoff between the attempts of a failing handler, in
 * milliseconds: `initial * factor ** (attempt - 1)`, at most `max`.
 *
 * @example
 * ```ts
 * import type { RetryBackoff } from "@opensecflow/eventbus/redis";
 * const backoff: RetryBackoff = { initial: 50, max: 5_000, factor: 3 };
 * ```
 */
export interface RetryBackoff {
  /** Delay before the second attempt; default 100. */
  initial?: number;
  /** Longest delay; default 30000. */
  max?: number;
  /** Growth per attempt; default 2. */
  factor?: number;
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
  /** Failed attempts after which an entry moves to the dead-letter stream; default 5. */
  maxDeliveries?: number;
  /** Backoff between attempts; default 100 ms doubling up to 30 s. */
  retryBackoff?: RetryBackoff;
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
}

/**
 * Every option resolved to its value, as {@linkcode resolveRedisOptions}
 * returns it.
 *
 * @example
 * ```ts
 * import { resolveRedisOptions, type ResolvedRedisOptions } from "@opensecflow/eventbus/redis";
 * const resolved: ResolvedRedisOptions = resolveRedisOptions({ group: "billing" });
 * console.log(resolved.group, resolved.batchSize); // "billing" 100
 * ```
 */
export interface ResolvedRedisOptions {
  /** The URL as given. */
  readonly url: string;
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
  readonly retryBackoff: Required<RetryBackoff>;
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

function positive(value: unknown, name: string, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < min) {
    throw new InvalidArgumentError(name, `must be a number >= ${min}, got ${String(value)}`);
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

/**
 * Replaces the password (and any other secret) of a Redis URL with `***`.
 *
 * @example
 * ```ts
 * import { maskUrl } from "@opensecflow/eventbus/redis";
 * console.log(maskUrl("redis://app:s3cret@cache:6379/2")); // "redis://app:***@cache:6379/2"
 * ```
 */
export function maskUrl(url: string): string {
  let out = url;
  const schemeEnd = out.indexOf("://");
  // The user-info ends at the last "@": a password may itself hold "@" or "/".
  const at = out.lastIndexOf("@");
  if (schemeEnd !== -1 && at > schemeEnd) {
    const userinfo = out.slice(schemeEnd + 3, at);
    const colon = userinfo.indexOf(":");
    const masked = colon === -1 ? "***" : `${userinfo.slice(0, colon)}:***`;
    out = out.slice(0, schemeEnd + 3) + masked + out.slice(at);
  }
  return out.replace(/([?&](?:password|pass|pwd)=)[^&#]*/gi, "$1***");
}

/**
 * Removes secrets from a text: URL user-info passwords and every given
 * secret string.
 *
 * @example
 * ```ts
 * import { redact } from "@opensecflow/eventbus/redis";
 * console.log(redact("auth hunter2 failed", ["hunter2"])); // "auth *** failed"
 * ```
 */
export function redact(message: string, secrets: readonly string[]): string {
  let out = message.replace(/([a-z][a-z0-9+.-]*:\/\/[^\s:@/]*:)[^\s@/]*@/gi, "$1***@");
  for (const secret of secrets) {
    if (secret.length > 0) out = out.split(secret).join("***");
  }
  return out;
}

/**
 * An error safe to log or rethrow: same name and message with secrets
 * removed, and none of the original's fields (ioredis errors carry the failed
 * command, arguments included, which for AUTH means the password).
 *
 * @example
 * ```ts
 * import { safeError } from "@opensecflow/eventbus/redis";
 * const e = safeError(new Error("WRONGPASS for pw123"), ["pw123"]);
 * console.log(e.message); // "WRONGPASS for ***"
 * ```
 */
export function safeError(error: unknown, secrets: readonly string[]): Error {
  const message = error instanceof Error ? error.message : String(error);
  const safe = new Error(redact(message, secrets));
  if (error instanceof Error) safe.name = error.name;
  return safe;
}

function secretsOf(url: URL, redis: RedisConnectionOptions): string[] {
  const secrets = new Set<string>();
  if (url.password) {
    secrets.add(url.password);
    try {
      secrets.add(decodeURIComponent(url.password));
    } catch {
      // a malformed escape leaves only the raw form to mask
    }
  }
  if (typeof redis.password === "string") secrets.add(redis.password);
  // ioredis also reads a password from the query string.
  const queryPassword = url.searchParams.get("password");
  if (queryPassword) secrets.add(queryPassword);
  // A password holding "@" (which ioredis accepts) makes URL see only its tail.
  const schemeEnd = url.href.indexOf("://");
  const at = url.href.lastIndexOf("@");
  if (schemeEnd !== -1 && at > schemeEnd) {
    const userinfo = url.href.slice(schemeEnd + 3, at);
    const colon = userinfo.indexOf(":");
    if (colon !== -1) secrets.add(userinfo.slice(colon + 1));
  }
  return [...secrets].filter((secret) => secret.length >= 1);
}

/**
 * Validates options and fills in defaults; throws
 * {@linkcode InvalidArgumentError} naming the first wrong option.
 *
 * @example
 * ```ts
 * import { resolveRedisOptions } from "@opensecflow/eventbus/redis";
 * const resolved = resolveRedisOptions({ url: "redis://:pw@localhost:6379" });
 * console.log(resolved.maskedUrl, resolved.maxDeliveries); // "redis://:***@localhost:6379" 5
 * ```
 */
export function resolveRedisOptions(options: RedisBrokerOptions = {}): ResolvedRedisOptions {
  if (options === null || typeof options !== "object") {
    throw new InvalidArgumentError("options", "must be an object");
  }
  const rawUrl = options.url ?? DEFAULT_URL;
  if (typeof rawUrl !== "string") {
    throw new InvalidArgumentError("url", `must be a string, got ${typeof rawUrl}`);
  }
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
  const redis = options.redis ?? {};
  if (redis === null || typeof redis !== "object") {
    throw new InvalidArgumentError("redis", "must be an object of ioredis options");
  }
  const backoff = options.retryBackoff ?? {};
  if (backoff === null || typeof backoff !== "object") {
    throw new InvalidArgumentError("retryBackoff", "must be an object");
  }
  const logger = options.logger ?? defaultLogger;
  if (
    logger === null || typeof logger !== "object" ||
    !["debug", "info", "warn", "error"].every((level) =>
      typeof (logger as unknown as Record<string, unknown>)[level] === "function"
    )
  ) {
    throw new InvalidArgumentError("logger", "must have debug, info, warn and error methods");
  }
  if (options.onError !== undefined && typeof options.onError !== "function") {
    throw new InvalidArgumentError("onError", "must be a function");
  }
  const consumer = text(options.consumer, "consumer", crypto.randomUUID());
  const group = text(options.group, "group", "eventbus");
  const initial = positive(backoff.initial, "retryBackoff.initial", 100);
  const max = positive(backoff.max, "retryBackoff.max", 30_000);
  const factor = positive(backoff.factor, "retryBackoff.factor", 2, 1);
  if (max < initial) {
    throw new InvalidArgumentError("retryBackoff.max", "must be >= retryBackoff.initial");
  }
  return {
    url: rawUrl,
    maskedUrl: maskUrl(rawUrl),
    redis,
    secrets: secretsOf(parsed, redis),
    keyPrefix: text(options.keyPrefix, "keyPrefix", "eventbus:", true),
    group,
    consumer,
    mode: oneOf(options.mode, "mode", ["stream", "pubsub"] as const),
    delivery: oneOf(options.delivery, "delivery", ["group", "broadcast"] as const),
    maxDeliveries: integer(options.maxDeliveries, "maxDeliveries", 5, 1),
    retryBackoff: { initial, max, factor },
    claimIdleMs: integer(options.claimIdleMs, "claimIdleMs", 30_000, 10),
    blockMs: integer(options.blockMs, "blockMs", 2_000, 1),
    batchSize: integer(options.batchSize, "batchSize", 100, 1),
    maxLen: integer(options.maxLen, "maxLen", 1_000_000, 0),
    maxMessageBytes: integer(options.maxMessageBytes, "maxMessageBytes", 1_048_576, 1),
    publishTimeout: integer(options.publishTimeout, "publishTimeout", 5_000, 1),
    connectTimeout: integer(options.connectTimeout, "connectTimeout", 5_000, 1),
    maxQueueSize: integer(options.maxQueueSize, "maxQueueSize", 10_000, 1),
    logger,
    onError: options.onError,
  };
}

/**
 * Delivery to an HTTP sink: one POST, retried with exponential backoff and
 * jitter on transient failures, shared by `sendEvent` and `sendBatch`.
 *
 * @module
 */

import { excerpt, InvalidArgumentError } from "../errors.ts";
import { defaultLogger, type Logger } from "../logger.ts";
import { delay } from "../timers.ts";
import { HttpDeliveryError, redactUrl } from "./delivery_error.ts";
import type { ToHttpRequestOptions } from "./to_http_request.ts";

/**
 * Options of `sendEvent` and `sendBatch`.
 *
 * @example
 * ```ts
 * import type { SendEventOptions } from "@opensecflow/eventbus/http";
 * const options: SendEventOptions = { mode: "structured", attempts: 5, retryDelay: 200 };
 * ```
 */
export interface SendEventOptions extends ToHttpRequestOptions {
  /** Attempts in all, the first included; default 4. */
  attempts?: number;
  /** Delay before the first retry, in ms; doubled after each; default 100. */
  retryDelay?: number;
  /** Longest delay between attempts, in ms (also caps `Retry-After`); default 10000. */
  maxRetryDelay?: number;
  /** Time limit of one attempt, in ms; default 10000. */
  timeout?: number;
  /** The fetch to use; default `globalThis.fetch`. */
  fetch?: (request: Request) => Promise<Response>;
  /** Where retries are reported. Default: warnings and errors to the console. */
  logger?: Logger;
}

/**
 * What a successful `sendEvent` or `sendBatch` reports.
 *
 * @example
 * ```ts
 * import type { DeliveryResult } from "@opensecflow/eventbus/http";
 * const result: DeliveryResult = { status: 202, attempts: 1 };
 * ```
 */
export interface DeliveryResult {
  /** The 2xx status the sink answered. */
  status: number;
  /** Attempts it took, from 1. */
  attempts: number;
}

/** Statuses worth another attempt: server errors, request timeout, too many requests. */
function isTransient(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

function checkPositive(name: string, value: unknown, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < min) {
    throw new InvalidArgumentError(name, `must be a number >= ${min}, got ${excerpt(value)}`);
  }
  return value;
}

/** The retry settings of {@linkcode SendEventOptions}, checked, with their defaults. */
export interface ResolvedSendOptions {
  readonly attempts: number;
  readonly retryDelay: number;
  readonly maxRetryDelay: number;
  readonly timeout: number;
  readonly fetch: (request: Request) => Promise<Response>;
  readonly logger: Logger;
}

/** Checks the options of `sendEvent` (also used by `httpSink` when it is created). */
export function resolveSendOptions(options: SendEventOptions): ResolvedSendOptions {
  if (options === null || typeof options !== "object") {
    throw new InvalidArgumentError("options", "must be an object");
  }
  const attempts = checkPositive("attempts", options.attempts, 4, 1);
  if (!Number.isInteger(attempts)) {
    throw new InvalidArgumentError("attempts", `must be an integer, got ${attempts}`);
  }
  const fetchFn = options.fetch ?? ((request: Request) => fetch(request));
  if (typeof fetchFn !== "function") {
    throw new InvalidArgumentError("fetch", "must be a function (request) => Promise<Response>");
  }
  return {
    attempts,
    retryDelay: checkPositive("retryDelay", options.retryDelay, 100, 0),
    maxRetryDelay: checkPositive("maxRetryDelay", options.maxRetryDelay, 10_000, 0),
    timeout: checkPositive("timeout", options.timeout, 10_000, 1),
    fetch: fetchFn,
    logger: options.logger ?? defaultLogger,
  };
}

/** `Retry-After` in ms when it holds a number of seconds, else undefined. */
function retryAfter(response: Response): number | undefined {
  const value = response.headers.get("retry-after");
  return value !== null && /^\d+$/.test(value.trim()) ? Number(value) * 1000 : undefined;
}

/**
 * POSTs the request `build` makes (one per attempt, bound to that attempt's
 * signal) until a 2xx, a permanent failure, or the last attempt. `what` names
 * the payload in messages, e.g. `event "1" ("t")`.
 */
export async function deliver(
  build: (signal: AbortSignal) => Request,
  target: URL,
  what: string,
  options: SendEventOptions,
): Promise<DeliveryResult> {
  const { attempts, retryDelay, maxRetryDelay, timeout, fetch: doFetch, logger } =
    resolveSendOptions(options);
  const where = redactUrl(target);
  let lastStatus: number | undefined;
  let hinted: number | undefined;
  let lastError: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    options.signal?.throwIfAborted();
    const attemptSignal = options.signal
      ? AbortSignal.any([options.signal, AbortSignal.timeout(timeout)])
      : AbortSignal.timeout(timeout);
    const wait = Math.min(maxRetryDelay, retryDelay * 2 ** (attempt - 1));
    try {
      const response = await doFetch(build(attemptSignal));
      // The body is not used; cancelling it frees the connection.
      await response.body?.cancel().catch(() => {});
      if (response.ok) return { status: response.status, attempts: attempt };
      lastStatus = response.status;
      lastError = undefined;
      if (!isTransient(response.status)) {
        throw new HttpDeliveryError(
          { url: where, status: response.status, attempts: attempt, retryable: false },
          `POST ${where} answered ${response.status} ${response.statusText}`.trimEnd() +
            ` for ${what}; not retried`,
        );
      }
      hinted = retryAfter(response);
    } catch (error) {
      if (error instanceof HttpDeliveryError) throw error;
      if (options.signal?.aborted) throw options.signal.reason;
      lastStatus = undefined;
      lastError = error;
    }
    if (attempt === attempts) break;
    logger.warn(
      `HTTP delivery: attempt ${attempt}/${attempts} to ${where} failed (${
        lastStatus ?? describe(lastError)
      }); retrying ${what}`,
    );
    // Jitter in [wait/2, wait] keeps many senders from retrying in lockstep;
    // a Retry-After of the server is a minimum, never shortened.
    const jittered = wait / 2 + Math.random() * wait / 2;
    const waited = await delay(
      hinted === undefined ? jittered : Math.min(maxRetryDelay, Math.max(hinted, jittered)),
      options.signal,
    );
    if (!waited) throw options.signal!.reason;
    hinted = undefined;
  }
  throw new HttpDeliveryError(
    { url: where, status: lastStatus, attempts, retryable: true },
    `POST ${where} failed ${attempts} time(s) for ${what}; last: ${
      lastStatus ?? describe(lastError)
    }`,
    lastError === undefined ? undefined : { cause: lastError },
  );
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    return error.name === "TimeoutError"
      ? "timed out"
      : `${error.name}: ${error.message.slice(0, 120)}`;
  }
  return excerpt(error);
}

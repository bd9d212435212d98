/**
 * The error of a failed outgoing delivery.
 *
 * @module
 */

import { EventBusError } from "../errors.ts";

/**
 * Delivering an event over HTTP failed: the sink answered a 4xx (not worth
 * retrying), or every attempt failed with a 5xx, a timeout or a network
 * error. `status` is the last HTTP status, `undefined` when no response came.
 *
 * @example
 * ```ts
 * import { CloudEvent } from "@opensecflow/eventbus";
 * import { HttpDeliveryError, sendEvent } from "@opensecflow/eventbus/http";
 * const event = new CloudEvent({ type: "t", source: "/s" });
 * try {
 *   await sendEvent(event, "http://127.0.0.1:9/hook", { attempts: 1 });
 * } catch (error) {
 *   if (error instanceof HttpDeliveryError) console.log(error.status, error.attempts);
 * }
 * ```
 */
export class HttpDeliveryError extends EventBusError {
  /** The sink, without credentials or query string. */
  readonly url: string;
  /** Last HTTP status received; `undefined` after a network error or timeout. */
  readonly status: number | undefined;
  /** Attempts made. */
  readonly attempts: number;
  /** True when the last failure was transient (5xx, 408, 429, network), i.e. retries ran out. */
  readonly retryable: boolean;

  /** Creates the error; `options.cause` keeps the last underlying error. */
  constructor(
    details: { url: string; status: number | undefined; attempts: number; retryable: boolean },
    message: string,
    options?: ErrorOptions,
  ) {
    super("HTTP_DELIVERY", message, options);
    this.url = details.url;
    this.status = details.status;
    this.attempts = details.attempts;
    this.retryable = details.retryable;
  }
}

/** A URL fit for messages and logs: no user info, no query, no fragment. */
export function redactUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

/**
 * Sending one event to an HTTP sink, with bounded retries.
 *
 * @module
 */

import { excerpt } from "../errors.ts";
import type { CloudEvent } from "../event.ts";
import { deliver, type DeliveryResult, type SendEventOptions } from "./delivery.ts";
import { checkSinkUrl, toHttpRequest } from "./to_http_request.ts";

/**
 * POSTs an event to an HTTP sink (binary mode unless `mode` says otherwise).
 * A 2xx resolves. A 5xx, 408, 429, timeout or network error is retried with
 * exponential backoff and jitter, honouring a `Retry-After` in seconds, up to
 * `attempts` in all; then `HttpDeliveryError` with `retryable: true`.
 * Any other status (a 4xx) fails at once with `retryable: false`. Aborting
 * `signal` rejects with its reason.
 *
 * @example
 * ```ts
 * import { CloudEvent } from "@opensecflow/eventbus";
 * import { sendEvent } from "@opensecflow/eventbus/http";
 * const event = new CloudEvent({ type: "order.created", source: "/orders", data: { id: 1 } });
 * const answer = (request: Request) => Promise.resolve(new Response(null, { status: 202 }));
 * const result = await sendEvent(event, "https://example.com/hooks", { fetch: answer });
 * console.log(result); // { status: 202, attempts: 1 }
 * ```
 */
export async function sendEvent(
  event: CloudEvent,
  url: string | URL,
  options: SendEventOptions = {},
): Promise<DeliveryResult> {
  const target = checkSinkUrl(url);
  // Validates the event and options once, before any attempt.
  toHttpRequest(event, target, options);
  return await deliver(
    (signal) => toHttpRequest(event, target, { ...options, signal }),
    target,
    `event ${excerpt(event.id)} (${excerpt(event.type)})`,
    options,
  );
}

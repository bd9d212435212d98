/**
 * Sending events to an HTTP sink as one batch, with bounded retries.
 *
 * @module
 */

import { excerpt, InvalidArgumentError } from "../errors.ts";
import type { CloudEvent } from "../event.ts";
import { deliver, type DeliveryResult, type SendEventOptions } from "./delivery.ts";
import { checkBatch, checkSinkUrl, toHttpRequest } from "./to_http_request.ts";

/**
 * Options of {@linkcode sendBatch}: those of `sendEvent` but `mode`, which is
 * always `"batch"`.
 *
 * @example
 * ```ts
 * import type { SendBatchOptions } from "@opensecflow/eventbus/http";
 * const options: SendBatchOptions = { attempts: 5, timeout: 30_000 };
 * ```
 */
export type SendBatchOptions = Omit<SendEventOptions, "mode">;

/**
 * POSTs events to an HTTP sink as one request in the batch content mode
 * (`application/cloudevents-batch+json`, a JSON array), with the retry rules
 * of `sendEvent`: a 2xx resolves; a 5xx, 408, 429, timeout or network error
 * is retried with backoff up to `attempts`; any other status fails at once
 * with `HttpDeliveryError`. The sink takes or refuses the batch as a whole.
 *
 * @example
 * ```ts
 * import { CloudEvent } from "@opensecflow/eventbus";
 * import { sendBatch } from "@opensecflow/eventbus/http";
 * const events = [1, 2, 3].map((n) => new CloudEvent({ type: "tick", source: "/clock", data: { n } }));
 * const answer = (request: Request) => Promise.resolve(new Response(null, { status: 202 }));
 * const result = await sendBatch(events, "https://example.com/hooks", { fetch: answer });
 * console.log(result); // { status: 202, attempts: 1 }
 * ```
 */
export async function sendBatch(
  events: readonly CloudEvent[],
  url: string | URL,
  options: SendBatchOptions = {},
): Promise<DeliveryResult> {
  const target = checkSinkUrl(url);
  const batch = [...checkBatch(events)];
  const mode = (options as { mode?: unknown } | null)?.mode;
  if (mode !== undefined && mode !== "batch") {
    throw new InvalidArgumentError(
      "mode",
      `sendBatch always sends in batch mode, got ${excerpt(mode)}; leave mode out`,
    );
  }
  const batchOptions = { ...options, mode: "batch" as const };
  // Validates the events and options once, before any attempt.
  toHttpRequest(batch, target, batchOptions);
  const first = batch[0];
  return await deliver(
    (signal) => toHttpRequest(batch, target, { ...batchOptions, signal }),
    target,
    `a batch of ${batch.length} event(s) from ${excerpt(first.id)} (${excerpt(first.type)})`,
    options,
  );
}

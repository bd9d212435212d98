/**
 * The CloudEvents HTTP binding (v1.0.2): receive events over HTTP into a bus,
 * parse them for a route of your own, and send events to HTTP sinks, one by
 * one or in batches. Web standards only (`Request`, `Response`, `fetch`), so
 * the receiver runs under `Deno.serve`, `Bun.serve`, Hono, and Node through
 * a fetch adapter such as `@hono/node-server`.
 *
 * @example
 * ```ts
 * import { EventBus } from "@opensecflow/eventbus";
 * import { createReceiver } from "@opensecflow/eventbus/http";
 *
 * const bus = new EventBus();
 * bus.subscribe("order.created", function log(e) {
 *   console.log("received", e.id);
 * });
 * await bus.start();
 * const receive = createReceiver({ bus });
 * // Deno.serve({ port: 8080 }, receive);   Bun.serve({ port: 8080, fetch: receive });
 * const response = await receive(
 *   new Request("http://localhost/", {
 *     method: "POST",
 *     headers: { "ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "order.created" },
 *   }),
 * );
 * console.log(response.status); // 202
 * await bus.stop();
 * ```
 *
 * @module
 */

export {
  createReceiver,
  type EventPublisher,
  type FetchHandler,
  type ReceiverOptions,
} from "./src/http/receiver.ts";
export {
  DEFAULT_BODY_TIMEOUT,
  DEFAULT_MAX_BODY_BYTES,
  type HttpContentMode,
  parseRequest,
  type ParseRequestOptions,
} from "./src/http/parse_request.ts";
export { HttpRequestError } from "./src/http/http_request_error.ts";
export type { WebhookOrigins } from "./src/http/webhook_handshake.ts";
export { MAX_PROBLEM_ISSUES, type ProblemDetails } from "./src/http/problem.ts";
export {
  type OutgoingMode,
  toHttpRequest,
  type ToHttpRequestOptions,
} from "./src/http/to_http_request.ts";
export { type DeliveryResult, type SendEventOptions } from "./src/http/delivery.ts";
export { sendEvent } from "./src/http/send_event.ts";
export { sendBatch, type SendBatchOptions } from "./src/http/send_batch.ts";
export { httpSink, type HttpSinkOptions } from "./src/http/http_sink.ts";
export { HttpDeliveryError } from "./src/http/delivery_error.ts";
export { healthHandler, type HealthSource } from "./src/http/health_handler.ts";

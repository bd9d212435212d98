/**
 * The CloudEvents HTTP binding (v1.0.2): receive events over HTTP into a bus,
 * and send events to HTTP sinks. Web standards only (`Request`, `Response`,
 * `fetch`), so the handler runs under `Deno.serve`, `Bun.serve`, Hono, and
 * Node through any fetch adapter.
 *
 * @example
 * ```ts
 * import { EventBus } from "@opensecflow/eventbus";
 * import { createEventHandler } from "@opensecflow/eventbus/http";
 *
 * const bus = new EventBus();
 * bus.subscribe("order.created", function log(e) {
 *   console.log("received", e.id);
 * });
 * await bus.start();
 * const handle = createEventHandler({ bus });
 * // Deno.serve({ port: 8080 }, handle);   Bun.serve({ port: 8080, fetch: handle });
 * const response = await handle(
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
  createEventHandler,
  DEFAULT_MAX_BODY_BYTES,
  type EventHandlerOptions,
  type EventPublisher,
  type FetchHandler,
} from "./src/http/event_handler.ts";
export type { HttpContentMode } from "./src/http/parse_request.ts";
export type { WebhookOrigins } from "./src/http/webhook_handshake.ts";
export type { ProblemDetails } from "./src/http/problem.ts";
export {
  type OutgoingMode,
  toHttpRequest,
  type ToHttpRequestOptions,
} from "./src/http/to_http_request.ts";
export { type DeliveryResult, sendEvent, type SendEventOptions } from "./src/http/send_event.ts";
export { httpSink, type HttpSinkOptions } from "./src/http/http_sink.ts";
export { HttpDeliveryError } from "./src/http/delivery_error.ts";

/**
 * The receiving side of the CloudEvents HTTP binding: a web-standard fetch
 * handler that validates incoming events and publishes them on a bus.
 *
 * @module
 */

import type { PublishOptions } from "../broker.ts";
import { EventBusError, excerpt, InvalidArgumentError, ValidationError } from "../errors.ts";
import type { CloudEvent } from "../event.ts";
import { defaultLogger, type Logger } from "../logger.ts";
import { HttpRequestError } from "./http_request_error.ts";
import { type ParseRequestOptions, readEvents, resolveParseOptions } from "./parse_request.ts";
import { problemResponse } from "./problem.ts";
import { answerHandshake, checkWebhookOrigins, type WebhookOrigins } from "./webhook_handshake.ts";

/**
 * Anything events can be published on: an `EventBus`, or any object with the
 * same `publish` (and, optionally, `publishBatch`). Typed structurally so the
 * HTTP binding does not depend on the bus's internals.
 *
 * @example
 * ```ts
 * import type { CloudEvent } from "@opensecflow/eventbus";
 * import type { EventPublisher } from "@opensecflow/eventbus/http";
 * const seen: CloudEvent[] = [];
 * const publisher: EventPublisher = { publish: async (event) => void seen.push(event) };
 * ```
 */
export interface EventPublisher {
  /** Resolves once the event is accepted; rejects with a typed error otherwise. */
  publish(event: CloudEvent): Promise<void>;
  /**
   * Publishes a batch in order, after checking all of it: when it refuses
   * the batch (`InvalidArgumentError`, `ValidationError`, `NotStartedError`,
   * `QueueFullError`), nothing is published; after another failure (the
   * transport's, `BrokerError`) part of it may be. `EventBus.publishBatch`
   * keeps this contract. Without it, a batch is published event by event.
   */
  publishBatch?(events: readonly CloudEvent[], options?: PublishOptions): Promise<void>;
}

/**
 * Options of {@linkcode createReceiver}: where events go, plus the parsing
 * options of `parseRequest`.
 *
 * @example
 * ```ts
 * import { EventBus } from "@opensecflow/eventbus";
 * import type { ReceiverOptions } from "@opensecflow/eventbus/http";
 * const options: ReceiverOptions = { bus: new EventBus(), maxBodyBytes: 64 * 1024, bodyTimeout: 2000 };
 * ```
 */
export interface ReceiverOptions extends ParseRequestOptions {
  /** Where accepted events are published. */
  bus: EventPublisher;
  /** Where publish failures are logged. Default: warnings and errors to the console. */
  logger?: Logger;
  /**
   * Answer the CloudEvents Web Hooks abuse-protection handshake (`OPTIONS`
   * with `WebHook-Request-Origin`) for these origins, or `"*"` for any.
   * Default: no handshake, `OPTIONS` gets 405.
   */
  webhookOrigins?: WebhookOrigins;
}

/**
 * A web-standard fetch handler: what `Deno.serve`, `Bun.serve` and Hono take.
 *
 * @example
 * ```ts
 * import type { FetchHandler } from "@opensecflow/eventbus/http";
 * const health: FetchHandler = () => Promise.resolve(new Response("ok"));
 * ```
 */
export type FetchHandler = (request: Request) => Promise<Response>;

/**
 * Creates a fetch handler that receives CloudEvents over HTTP (binary,
 * structured and batch content modes), validates them, and publishes them on
 * the bus, in order.
 *
 * Answers: `202` with `{ accepted }` once every event is published; `400`
 * with an RFC 9457 problem body whose `issues` name each bad attribute (a
 * batch with one bad event is refused whole, nothing published), or naming
 * the event the broker refused (too large for it: through `publishBatch`,
 * nothing of the batch is published); `405` (with `Allow`) for another
 * method; `408` when the body does not arrive within `bodyTimeout`; `413`
 * over `maxBodyBytes`; `415` for a content type that is no CloudEvent;
 * `503` when the bus is not started or its broker fails or is full; `500`
 * for anything else. No answer grows with the request: inputs are quoted as
 * short excerpts and at most 20 issues listed.
 *
 * With `webhookOrigins`, an `OPTIONS` request is the Web Hooks handshake:
 * `200` with `WebHook-Allowed-Origin` (and `WebHook-Allowed-Rate` echoing a
 * `WebHook-Request-Rate` asked for) and `Allow: POST, OPTIONS` when the
 * `WebHook-Request-Origin` is allowed; `403` when it is not; `400` without
 * that header or with one longer than a host name. Without
 * `webhookOrigins`, `OPTIONS` gets `405`.
 *
 * @example
 * ```ts
 * import { defineEvent, EventBus } from "@opensecflow/eventbus";
 * import { createReceiver } from "@opensecflow/eventbus/http";
 * import { z } from "zod";
 *
 * const OrderCreated = defineEvent({
 *   type: "order.created",
 *   data: z.object({ orderId: z.string() }),
 * });
 * const bus = new EventBus();
 * bus.subscribe(OrderCreated, function audit(e) {
 *   console.log("order", e.data.orderId);
 * });
 * await bus.start();
 * const receive = createReceiver({ bus, definitions: [OrderCreated] });
 * const response = await receive(
 *   new Request("http://localhost/events", {
 *     method: "POST",
 *     headers: { "content-type": "application/cloudevents+json" },
 *     body: JSON.stringify({
 *       specversion: "1.0",
 *       id: "1",
 *       source: "/shop",
 *       type: "order.created",
 *       data: { orderId: "A1" },
 *     }),
 *   }),
 * );
 * console.log(response.status); // 202
 * await bus.stop();
 * ```
 */
export function createReceiver(options: ReceiverOptions): FetchHandler {
  if (options === null || typeof options !== "object") {
    throw new InvalidArgumentError("options", "createReceiver needs { bus }");
  }
  const { bus, logger = defaultLogger } = options;
  if (bus === null || typeof bus !== "object" || typeof bus.publish !== "function") {
    throw new InvalidArgumentError(
      "bus",
      "must be an object with a publish(event) method, such as an EventBus",
    );
  }
  if (bus.publishBatch !== undefined && typeof bus.publishBatch !== "function") {
    throw new InvalidArgumentError("bus", "publishBatch, when present, must be a method");
  }
  const settings = resolveParseOptions(options);
  const webhookOrigins = checkWebhookOrigins(options.webhookOrigins);
  const allow = webhookOrigins === undefined ? "POST" : "POST, OPTIONS";

  return async function receiveCloudEvents(request: Request): Promise<Response> {
    if (request.method === "OPTIONS" && webhookOrigins !== undefined) {
      return answerHandshake(request, webhookOrigins);
    }
    if (request.method !== "POST") {
      await request.body?.cancel().catch(() => {});
      return problemResponse(
        405,
        `${excerpt(request.method).slice(1, -1)} is not allowed; send CloudEvents with POST`,
        { headers: { allow } },
      );
    }
    let events: CloudEvent[];
    try {
      events = await readEvents(request, settings);
    } catch (error) {
      if (error instanceof HttpRequestError) return error.toResponse();
      logger.error("CloudEvents HTTP receiver: unexpected error while reading a request", error);
      return problemResponse(500, "the request could not be processed");
    }
    const failure = await publishAll(bus, events, logger);
    return failure ?? Response.json({ accepted: events.length }, { status: 202 });
  };
}

/** Publishes the events; `undefined` when all were, else the answer saying why not. */
async function publishAll(
  bus: EventPublisher,
  events: CloudEvent[],
  logger: Logger,
): Promise<Response | undefined> {
  if (events.length > 1 && bus.publishBatch !== undefined) {
    try {
      await bus.publishBatch(events);
      return undefined;
    } catch (error) {
      // A refusal comes before anything is written; a transport failure
      // may leave part of the batch published, how much is unknown.
      return publishFailure(error, { what: "the batch", accepted: undefined, batch: true }, logger);
    }
  }
  let accepted = 0;
  try {
    for (const event of events) {
      await bus.publish(event);
      accepted++;
    }
    return undefined;
  } catch (error) {
    const event = events[accepted];
    const what = `event ${excerpt(event.id)} (${excerpt(event.type)})`;
    return publishFailure(error, { what, accepted, batch: events.length > 1 }, logger);
  }
}

// Codes that mean "try again later": the bus is not running, or its
// transport is full or unreachable.
const UNAVAILABLE_CODES = new Set(["NOT_STARTED", "QUEUE_FULL", "BROKER"]);

// Codes of a batch refused before any of it was written.
const REFUSAL_CODES = new Set(["INVALID_ARGUMENT", "VALIDATION", "NOT_STARTED", "QUEUE_FULL"]);

/** What a failed `publishBatch` left published, as the answer says it. */
function batchOutcome(error: unknown): string {
  return error instanceof EventBusError && REFUSAL_CODES.has(error.code)
    ? "nothing was published"
    : "some events may have been published";
}

function publishFailure(
  error: unknown,
  failed: { what: string; accepted: number | undefined; batch: boolean },
  logger: Logger,
): Response {
  const { what } = failed;
  const extra = failed.batch && failed.accepted !== undefined ? { accepted: failed.accepted } : {};
  const message = error instanceof Error ? error.message : String(error);
  const reason = failed.accepted === undefined ? `${message} (${batchOutcome(error)})` : message;
  if (error instanceof EventBusError && UNAVAILABLE_CODES.has(error.code)) {
    logger.warn(`CloudEvents HTTP receiver: could not publish ${what}: ${reason}`);
    return problemResponse(503, `${what} was not published: ${reason}`, {
      ...extra,
      headers: { "retry-after": "1" },
    });
  }
  if (error instanceof ValidationError) {
    return problemResponse(400, reason, { ...extra, issues: error.issues });
  }
  // Refused for what the event is (too large for the broker): permanent, so
  // not a 5xx that senders would retry for ever.
  if (error instanceof InvalidArgumentError) {
    return problemResponse(400, `${what} was refused: ${reason}`, extra);
  }
  // An unknown failure may carry internals: log it whole, answer without it.
  logger.error(`CloudEvents HTTP receiver: publishing ${what} failed`, error);
  return problemResponse(500, `${what} was not published`, extra);
}

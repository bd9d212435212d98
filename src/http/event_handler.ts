/**
 * The receiving side of the CloudEvents HTTP binding: a web-standard fetch
 * handler that validates incoming events and publishes them on a bus.
 *
 * @module
 */

import type { AttributeType } from "../attributes.ts";
import type { EventDefinition } from "../define_event.ts";
import { EventBusError, excerpt, InvalidArgumentError, ValidationError } from "../errors.ts";
import { type CloudEvent, type EventScope, isEventScope } from "../event.ts";
import { defaultLogger, type Logger } from "../logger.ts";
import { type HttpContentMode, parseRequest, RequestRejection } from "./parse_request.ts";
import { problemResponse } from "./problem.ts";
import { answerHandshake, checkWebhookOrigins, type WebhookOrigins } from "./webhook_handshake.ts";

/**
 * Anything events can be published on: an `EventBus`, or any object with the
 * same `publish`. Typed structurally so the HTTP binding does not depend on
 * the bus's internals.
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
}

/**
 * Options of {@linkcode createEventHandler}.
 *
 * @example
 * ```ts
 * import { EventBus } from "@opensecflow/eventbus";
 * import type { EventHandlerOptions } from "@opensecflow/eventbus/http";
 * const options: EventHandlerOptions = { bus: new EventBus(), maxBodyBytes: 64 * 1024 };
 * ```
 */
export interface EventHandlerOptions {
  /** Where accepted events are published. */
  bus: EventPublisher;
  /**
   * Typed event definitions. An event whose type has a definition is parsed
   * with it: its data is checked against the schema and it gets its scope.
   */
  definitions?: readonly EventDefinition[];
  /**
   * With `definitions`, whether events of other types are accepted (as plain
   * CloudEvents). Default `true`; `false` answers 400 naming `type`.
   */
  allowUnknownTypes?: boolean;
  /** Scope given to accepted events that have no definition. Default: none (a plain CloudEvent). */
  scope?: EventScope;
  /** Largest request body accepted, in bytes; larger ones get 413. Default 1 MiB. */
  maxBodyBytes?: number;
  /** Content modes accepted; others get 415. Default all three. */
  modes?: readonly HttpContentMode[];
  /** Declared types of known extension attributes, checked in their canonical string form. */
  extensionTypes?: Record<string, AttributeType>;
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
 * Default `maxBodyBytes`: 1 MiB.
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_BODY_BYTES } from "@opensecflow/eventbus/http";
 * console.log(DEFAULT_MAX_BODY_BYTES); // 1048576
 * ```
 */
export const DEFAULT_MAX_BODY_BYTES: number = 1024 * 1024;

const ALL_MODES: readonly HttpContentMode[] = ["binary", "structured", "batch"];

/**
 * Creates a fetch handler that receives CloudEvents over HTTP (binary,
 * structured and batch content modes), validates them, and publishes each on
 * the bus, in order.
 *
 * Answers: `202` with `{ accepted, ids }` once every event is published;
 * `400` with an RFC 9457 problem body whose `issues` name each bad attribute
 * (a batch with one bad event is refused whole, nothing published); `405`
 * (with `Allow`) for another method; `413` over `maxBodyBytes`; `415`
 * for a content type that is no CloudEvent; `503` when the bus is not started
 * or its broker fails or is full; `500` for anything else.
 *
 * @example
 * ```ts
 * import { defineEvent, EventBus } from "@opensecflow/eventbus";
 * import { createEventHandler } from "@opensecflow/eventbus/http";
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
 * const handler = createEventHandler({ bus, definitions: [OrderCreated] });
 * const response = await handler(
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
export function createEventHandler(options: EventHandlerOptions): FetchHandler {
  if (options === null || typeof options !== "object") {
    throw new InvalidArgumentError("options", "createEventHandler needs { bus }");
  }
  const { bus, logger = defaultLogger } = options;
  if (bus === null || typeof bus !== "object" || typeof bus.publish !== "function") {
    throw new InvalidArgumentError(
      "bus",
      "must be an object with a publish(event) method, such as an EventBus",
    );
  }
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes < 1) {
    throw new InvalidArgumentError(
      "maxBodyBytes",
      `must be a positive integer, got ${excerpt(maxBodyBytes)}`,
    );
  }
  const modeList: unknown = options.modes ?? ALL_MODES;
  if (!Array.isArray(modeList) || modeList.length === 0) {
    throw new InvalidArgumentError(
      "modes",
      'must be a non-empty array of "binary", "structured", "batch"',
    );
  }
  const modes = new Set<HttpContentMode>(modeList);
  for (const mode of modes) {
    if (!ALL_MODES.includes(mode)) {
      throw new InvalidArgumentError(
        "modes",
        `unknown content mode ${excerpt(mode)}; use "binary", "structured" or "batch"`,
      );
    }
  }
  if (options.scope !== undefined && !isEventScope(options.scope)) {
    throw new InvalidArgumentError(
      "scope",
      `must be EventScope.PROCESS or EventScope.APP, got ${excerpt(options.scope)}`,
    );
  }
  if (options.allowUnknownTypes !== undefined && typeof options.allowUnknownTypes !== "boolean") {
    throw new InvalidArgumentError(
      "allowUnknownTypes",
      `must be a boolean, got ${excerpt(options.allowUnknownTypes)}`,
    );
  }
  const webhookOrigins = checkWebhookOrigins(options.webhookOrigins);
  const allow = webhookOrigins === undefined ? "POST" : "POST, OPTIONS";
  const settings = {
    maxBodyBytes,
    modes,
    definitions: definitionMap(options.definitions),
    allowUnknownTypes: options.allowUnknownTypes ?? true,
    scope: options.scope,
    extensionTypes: options.extensionTypes,
  };

  return async function handleCloudEvents(request: Request): Promise<Response> {
    if (request.method === "OPTIONS" && webhookOrigins !== undefined) {
      return answerHandshake(request, webhookOrigins);
    }
    if (request.method !== "POST") {
      await request.body?.cancel().catch(() => {});
      return problemResponse(
        405,
        `${excerpt(request.method).slice(1, -1)} is not allowed; send CloudEvents with POST`,
        {
          headers: { allow },
        },
      );
    }
    let events: CloudEvent[];
    try {
      events = await parseRequest(request, settings);
    } catch (error) {
      if (error instanceof RequestRejection) {
        return problemResponse(error.status, error.message, { issues: error.issues });
      }
      logger.error("CloudEvents HTTP handler: unexpected error while reading a request", error);
      return problemResponse(500, "the request could not be processed");
    }
    let accepted = 0;
    try {
      for (const event of events) {
        await bus.publish(event);
        accepted++;
      }
    } catch (error) {
      return publishFailure(error, events, accepted, logger);
    }
    return Response.json({ accepted, ids: events.map((event) => event.id) }, { status: 202 });
  };
}

function definitionMap(
  definitions: readonly EventDefinition[] | undefined,
): Map<string, EventDefinition> {
  const map = new Map<string, EventDefinition>();
  if (definitions === undefined) return map;
  if (!Array.isArray(definitions)) {
    throw new InvalidArgumentError(
      "definitions",
      "must be an array of event definitions made by defineEvent",
    );
  }
  definitions.forEach((definition, index) => {
    if (
      typeof definition !== "function" || typeof definition.type !== "string" ||
      typeof definition.parse !== "function"
    ) {
      throw new InvalidArgumentError(
        `definitions[${index}]`,
        "must be an event definition made by defineEvent",
      );
    }
    if (map.has(definition.type)) {
      throw new InvalidArgumentError(
        `definitions[${index}]`,
        `type "${definition.type}" is defined twice`,
      );
    }
    map.set(definition.type, definition);
  });
  return map;
}

// Codes that mean "try again later": the bus is not running, or its
// transport is full or unreachable.
const UNAVAILABLE_CODES = new Set(["NOT_STARTED", "QUEUE_FULL", "BROKER"]);

function publishFailure(
  error: unknown,
  events: CloudEvent[],
  accepted: number,
  logger: Logger,
): Response {
  const event = events[accepted];
  const batch = events.length > 1 ? { accepted } : {};
  if (error instanceof EventBusError && UNAVAILABLE_CODES.has(error.code)) {
    logger.warn(
      `CloudEvents HTTP handler: could not publish event ${event.id} (${event.type}): ${error.message}`,
    );
    return problemResponse(503, `event ${event.id} was not published: ${error.message}`, {
      ...batch,
      headers: { "retry-after": "1" },
    });
  }
  if (error instanceof ValidationError) {
    return problemResponse(400, error.message, { ...batch, issues: error.issues });
  }
  // Refused for what the event is (too large for the broker, a type no channel
  // can carry): permanent, so not a 5xx that senders would retry for ever.
  if (error instanceof InvalidArgumentError) {
    return problemResponse(400, `event ${event.id} was refused: ${error.message}`, batch);
  }
  // An unknown failure may carry internals: log it whole, answer without it.
  logger.error(
    `CloudEvents HTTP handler: publishing event ${event.id} (${event.type}) failed`,
    error,
  );
  return problemResponse(500, `event ${event.id} was not published`, batch);
}

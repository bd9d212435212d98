/**
 * Encoding events as an HTTP request, in binary, structured or batch content
 * mode.
 *
 * @module
 */

import { excerpt, InvalidArgumentError } from "../errors.ts";
import { CloudEvent } from "../event.ts";
import { binaryBody, binaryHeaders } from "./binary_mode.ts";
import { BATCH_CONTENT_TYPE, STRUCTURED_CONTENT_TYPE } from "./constants.ts";

/**
 * How outgoing events are encoded: attributes as `ce-*` headers, one JSON
 * document, or a JSON array of events (`application/cloudevents-batch+json`).
 *
 * @example
 * ```ts
 * import type { OutgoingMode } from "@opensecflow/eventbus/http";
 * const mode: OutgoingMode = "structured";
 * ```
 */
export type OutgoingMode = "binary" | "structured" | "batch";

/**
 * Options of {@linkcode toHttpRequest}.
 *
 * @example
 * ```ts
 * import type { ToHttpRequestOptions } from "@opensecflow/eventbus/http";
 * const options: ToHttpRequestOptions = { mode: "structured", headers: { authorization: "Bearer t" } };
 * ```
 */
export interface ToHttpRequestOptions {
  /** Content mode; default `"binary"` for one event, `"batch"` for an array. */
  mode?: OutgoingMode;
  /** Extra headers (authentication, tracing); they cannot override the event's own. */
  headers?: HeadersInit;
  /** Cancels the request. */
  signal?: AbortSignal;
}

/** Checks a sink URL: absolute, http or https. */
export function checkSinkUrl(url: unknown): URL {
  let parsed: URL;
  try {
    parsed = url instanceof URL ? url : new URL(String(url));
  } catch {
    throw new InvalidArgumentError(
      "url",
      `must be an absolute http(s) URL, got ${
        excerpt(String(url).replace(/\/\/[^/]*@/, "//***@"))
      }`,
    );
  }
  if (typeof url !== "string" && !(url instanceof URL)) {
    throw new InvalidArgumentError("url", `must be a string or URL, got ${typeof url}`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new InvalidArgumentError("url", `must use http or https, got ${parsed.protocol}`);
  }
  return parsed;
}

const MODES: readonly OutgoingMode[] = ["binary", "structured", "batch"];

/** Checks the content mode option; `undefined` stays undefined (the default depends on the input). */
export function checkOutgoingMode(mode: unknown): OutgoingMode | undefined {
  if (mode !== undefined && !MODES.includes(mode as OutgoingMode)) {
    throw new InvalidArgumentError(
      "mode",
      `must be "binary", "structured" or "batch", got ${excerpt(mode)}`,
    );
  }
  return mode as OutgoingMode | undefined;
}

/** Checks the events of a batch: a non-empty array of CloudEvent. */
export function checkBatch(events: unknown): readonly CloudEvent[] {
  if (!Array.isArray(events)) {
    throw new InvalidArgumentError(
      "events",
      `must be an array of CloudEvent, got ${excerpt(events)}`,
    );
  }
  if (events.length === 0) {
    throw new InvalidArgumentError(
      "events",
      "must hold at least one event; an empty batch sends nothing",
    );
  }
  events.forEach((event, index) => {
    if (!(event instanceof CloudEvent)) {
      throw new InvalidArgumentError(
        `events[${index}]`,
        `must be a CloudEvent, got ${excerpt(event)}`,
      );
    }
  });
  return events;
}

/**
 * Builds the `POST` request that carries an event to `url`, in binary mode
 * (the default: `ce-*` headers, percent-encoded, and the data as the body) or
 * structured mode (`application/cloudevents+json`); or a batch of events
 * (`application/cloudevents-batch+json`), the default for an array. An event
 * whose `datacontenttype` cannot be a `Content-Type` header (a repeated
 * parameter, non-Latin-1 text) is refused in binary mode with
 * `InvalidArgumentError`: send it in structured mode.
 *
 * @example
 * ```ts
 * import { CloudEvent } from "@opensecflow/eventbus";
 * import { toHttpRequest } from "@opensecflow/eventbus/http";
 * const event = new CloudEvent({ type: "order.created", source: "/orders", data: { id: 1 } });
 * const request = toHttpRequest(event, "https://example.com/hooks", { mode: "binary" });
 * console.log(request.headers.get("ce-type")); // "order.created"
 * const batch = toHttpRequest([event, event], "https://example.com/hooks", { mode: "batch" });
 * console.log(batch.headers.get("content-type")); // "application/cloudevents-batch+json; charset=utf-8"
 * ```
 */
export function toHttpRequest(
  events: CloudEvent | readonly CloudEvent[],
  url: string | URL,
  options: ToHttpRequestOptions = {},
): Request {
  if (options === null || typeof options !== "object") {
    throw new InvalidArgumentError("options", "must be an object");
  }
  const mode = checkOutgoingMode(options.mode) ?? (Array.isArray(events) ? "batch" : "binary");
  if (mode !== "batch" && Array.isArray(events)) {
    throw new InvalidArgumentError(
      "mode",
      `an array of events travels in batch mode, not ${excerpt(mode)}; use mode: "batch"`,
    );
  }
  const batch = mode === "batch"
    ? checkBatch(Array.isArray(events) ? events : [events])
    : [checkEvent(events)];
  const target = checkSinkUrl(url);
  const headers = new Headers(options.headers);
  let body: BodyInit | null;
  if (mode === "batch") {
    headers.set("content-type", BATCH_CONTENT_TYPE);
    body = JSON.stringify(batch);
  } else if (mode === "structured") {
    headers.set("content-type", STRUCTURED_CONTENT_TYPE);
    body = JSON.stringify(batch[0]);
  } else {
    for (const [name, value] of binaryHeaders(batch[0])) headers.set(name, value);
    const data = binaryBody(batch[0]);
    body = data instanceof Uint8Array ? new Uint8Array(data) : data;
  }
  // A redirect would turn the POST into a GET without the event: never follow one.
  return new Request(target, {
    method: "POST",
    headers,
    body,
    signal: options.signal,
    redirect: "manual",
  });
}

function checkEvent(event: unknown): CloudEvent {
  if (!(event instanceof CloudEvent)) {
    throw new InvalidArgumentError("event", `must be a CloudEvent, got ${excerpt(event)}`);
  }
  return event;
}

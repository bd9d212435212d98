/**
 * Encoding an event as an HTTP request, in binary or structured content mode.
 *
 * @module
 */

import { CONSTANTS } from "cloudevents";
import { excerpt, InvalidArgumentError } from "../errors.ts";
import { CloudEvent } from "../event.ts";
import { binaryBody, binaryHeaders } from "./binary_mode.ts";

/**
 * How an outgoing event is encoded: attributes as `ce-*` headers, or one JSON document.
 *
 * @example
 * ```ts
 * import type { OutgoingMode } from "@opensecflow/eventbus/http";
 * const mode: OutgoingMode = "structured";
 * ```
 */
export type OutgoingMode = "binary" | "structured";

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
  /** Content mode; default `"binary"`. */
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

/** Checks the content mode option. */
export function checkOutgoingMode(mode: unknown): OutgoingMode {
  if (mode === undefined) return "binary";
  if (mode !== "binary" && mode !== "structured") {
    throw new InvalidArgumentError(
      "mode",
      `must be "binary" or "structured", got ${excerpt(mode)}`,
    );
  }
  return mode;
}

/**
 * Builds the `POST` request that carries an event to `url`, in binary mode
 * (the default: `ce-*` headers, percent-encoded, and the data as the body) or
 * structured mode (`application/cloudevents+json`).
 *
 * @example
 * ```ts
 * import { CloudEvent } from "@opensecflow/eventbus";
 * import { toHttpRequest } from "@opensecflow/eventbus/http";
 * const event = new CloudEvent({ type: "order.created", source: "/orders", data: { id: 1 } });
 * const request = toHttpRequest(event, "https://example.com/hooks", { mode: "binary" });
 * console.log(request.headers.get("ce-type")); // "order.created"
 * ```
 */
export function toHttpRequest(
  event: CloudEvent,
  url: string | URL,
  options: ToHttpRequestOptions = {},
): Request {
  if (!(event instanceof CloudEvent)) {
    throw new InvalidArgumentError("event", `must be a CloudEvent, got ${excerpt(event)}`);
  }
  if (options === null || typeof options !== "object") {
    throw new InvalidArgumentError("options", "must be an object");
  }
  const target = checkSinkUrl(url);
  const mode = checkOutgoingMode(options.mode);
  const headers = new Headers(options.headers);
  let body: BodyInit | null;
  if (mode === "structured") {
    headers.set("content-type", CONSTANTS.DEFAULT_CE_CONTENT_TYPE);
    body = JSON.stringify(event);
  } else {
    for (const [name, value] of binaryHeaders(event)) headers.set(name, value);
    const data = binaryBody(event);
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

/**
 * The abuse-protection handshake of the CloudEvents HTTP 1.1 Web Hooks
 * specification (§4): before delivering, a sender may ask with `OPTIONS` and
 * a `WebHook-Request-Origin` header whether this endpoint accepts its events.
 *
 * @module
 */

import { excerpt, InvalidArgumentError } from "../errors.ts";
import { problemResponse } from "./problem.ts";

/**
 * Origins allowed to deliver: a list of host names, or `"*"` for any.
 *
 * @example
 * ```ts
 * import type { WebhookOrigins } from "@opensecflow/eventbus/http";
 * const origins: WebhookOrigins = ["eventemitter.example.com"];
 * ```
 */
export type WebhookOrigins = readonly string[] | "*";

const MAX_ORIGIN_LENGTH = 255;

/** Checks the `webhookOrigins` option. */
export function checkWebhookOrigins(value: unknown): WebhookOrigins | undefined {
  if (value === undefined || value === "*") return value;
  if (!Array.isArray(value) || value.some((origin) => typeof origin !== "string" || !origin)) {
    throw new InvalidArgumentError(
      "webhookOrigins",
      `must be "*" or an array of origin host names, got ${excerpt(value)}`,
    );
  }
  return value.map((origin) => origin.toLowerCase());
}

/** Answers the `OPTIONS` handshake: 200 granting the origin, or 403. */
export function answerHandshake(request: Request, origins: WebhookOrigins): Response {
  const origin = request.headers.get("webhook-request-origin");
  if (origin === null) {
    return problemResponse(400, "an OPTIONS handshake needs a WebHook-Request-Origin header");
  }
  // Host names are at most 253 characters: a longer origin is not one, and
  // the grant below echoes it.
  if (origin.length > MAX_ORIGIN_LENGTH) {
    return problemResponse(400, `WebHook-Request-Origin ${excerpt(origin)} is not a host name`);
  }
  if (origins !== "*" && !origins.includes(origin.trim().toLowerCase())) {
    return problemResponse(403, `origin ${excerpt(origin)} may not deliver events here`);
  }
  const headers = new Headers({ allow: "POST, OPTIONS", "webhook-allowed-origin": origin.trim() });
  // Granting the requested rate as-is: the handler applies no rate limit of its own.
  const rate = request.headers.get("webhook-request-rate");
  if (rate !== null && /^\d{1,9}$/.test(rate.trim())) {
    headers.set("webhook-allowed-rate", rate.trim());
  }
  return new Response(null, { status: 200, headers });
}

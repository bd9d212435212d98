/**
 * Options of {@linkcode asyncapi} and their validation.
 *
 * @module
 */

import { excerpt, InvalidArgumentError } from "../errors.ts";
import type { AsyncApiServer } from "./types.ts";

/**
 * Options of {@linkcode asyncapi}.
 *
 * @example
 * ```ts
 * import type { AsyncApiOptions } from "@opensecflow/eventbus/asyncapi";
 * const options: AsyncApiOptions = {
 *   title: "Billing",
 *   version: "1.4.0",
 *   description: "Charges customers for their orders.",
 *   servers: { production: { host: "redis.internal:6379", protocol: "redis" } },
 * };
 * ```
 */
export interface AsyncApiOptions {
  /** Title of the application, e.g. the service name. */
  title: string;
  /** Version of the application (not of AsyncAPI), e.g. `"1.4.0"`. */
  version: string;
  /** Longer description (CommonMark). */
  description?: string;
  /** Servers by name; a name may hold letters, digits, `_` and `-`. */
  servers?: Record<string, AsyncApiServer>;
  /**
   * What to do with a part of a data schema JSON Schema cannot express (a
   * transform, a bigint, a Map...): `"throw"` (default) refuses it with an
   * `InvalidArgumentError` naming the event type and the path; `"any"`
   * documents it as any value. Dates are always documented as RFC 3339
   * strings, their JSON form.
   */
  unrepresentable?: "throw" | "any";
}

/** Keys of the AsyncAPI `servers` map (and of components). */
const SERVER_NAME = /^[A-Za-z0-9_-]+$/;

/** Optional text fields of a server; any other field is refused rather than dropped. */
const SERVER_TEXT_FIELDS = [
  "protocolVersion",
  "pathname",
  "title",
  "summary",
  "description",
] as const;

/** Checks the options, throwing `InvalidArgumentError` naming the first wrong one. */
export function checkOptions(options: unknown): AsyncApiOptions {
  if (options === null || typeof options !== "object") {
    throw new InvalidArgumentError("options", "must be an object with title and version");
  }
  const { title, version, description, servers, unrepresentable } = options as Record<
    string,
    unknown
  >;
  requireText("title", title);
  requireText("version", version);
  if (description !== undefined && typeof description !== "string") {
    throw new InvalidArgumentError("description", `must be a string, got ${excerpt(description)}`);
  }
  if (servers !== undefined) checkServers(servers);
  if (unrepresentable !== undefined && unrepresentable !== "throw" && unrepresentable !== "any") {
    throw new InvalidArgumentError(
      "unrepresentable",
      `must be "throw" or "any", got ${excerpt(unrepresentable)}`,
    );
  }
  return options as AsyncApiOptions;
}

function requireText(name: string, value: unknown): void {
  if (typeof value !== "string" || value.trim() === "") {
    throw new InvalidArgumentError(name, `must be a non-empty string, got ${excerpt(value)}`);
  }
}

function checkServers(servers: unknown): void {
  if (servers === null || typeof servers !== "object" || Array.isArray(servers)) {
    throw new InvalidArgumentError("servers", "must be an object of servers by name");
  }
  for (const [name, server] of Object.entries(servers)) {
    const path = `servers.${name}`;
    if (!SERVER_NAME.test(name)) {
      throw new InvalidArgumentError(
        path,
        "a server name may hold only letters, digits, _ and -",
      );
    }
    if (server === null || typeof server !== "object" || Array.isArray(server)) {
      throw new InvalidArgumentError(path, "must be an object with host and protocol");
    }
    const fields = server as Record<string, unknown>;
    requireText(`${path}.host`, fields.host);
    requireText(`${path}.protocol`, fields.protocol);
    for (const field of Object.keys(fields)) {
      if (field !== "host" && field !== "protocol" && !isTextField(field)) {
        throw new InvalidArgumentError(
          `${path}.${field}`,
          `is not a supported server field; use host, protocol, ${SERVER_TEXT_FIELDS.join(", ")}`,
        );
      }
    }
    for (const field of SERVER_TEXT_FIELDS) {
      const value = fields[field];
      if (value !== undefined && typeof value !== "string") {
        throw new InvalidArgumentError(
          `${path}.${field}`,
          `must be a string, got ${excerpt(value)}`,
        );
      }
    }
  }
}

function isTextField(field: string): field is typeof SERVER_TEXT_FIELDS[number] {
  return (SERVER_TEXT_FIELDS as readonly string[]).includes(field);
}

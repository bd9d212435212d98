/**
 * RFC 9457 problem details: the JSON body every error response of the HTTP
 * binding carries.
 *
 * @module
 */

import type { ValidationIssue } from "../errors.ts";

/**
 * The body of an error response (`application/problem+json`), after RFC 9457.
 * `issues` lists each invalid attribute when the request failed validation.
 *
 * @example
 * ```ts
 * import type { ProblemDetails } from "@opensecflow/eventbus/http";
 * const problem: ProblemDetails = {
 *   type: "about:blank",
 *   title: "Bad Request",
 *   status: 400,
 *   detail: "CloudEvent: invalid input: time: must be an RFC 3339 timestamp",
 *   issues: [{ path: "time", message: "must be an RFC 3339 timestamp" }],
 * };
 * ```
 */
export interface ProblemDetails {
  /** Problem type URI; `"about:blank"` means the status says it all. */
  type: string;
  /** The HTTP status phrase. */
  title: string;
  /** HTTP status code. */
  status: number;
  /** What went wrong with this request. */
  detail: string;
  /** Each invalid attribute, when validation failed. */
  issues?: readonly ValidationIssue[];
  /** Events of a batch published before a publish failure. */
  accepted?: number;
}

const TITLES: Readonly<Record<number, string>> = {
  400: "Bad Request",
  403: "Forbidden",
  405: "Method Not Allowed",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

/** Builds an `application/problem+json` response. */
export function problemResponse(
  status: number,
  detail: string,
  extra?: { issues?: readonly ValidationIssue[]; accepted?: number; headers?: HeadersInit },
): Response {
  const problem: ProblemDetails = {
    type: "about:blank",
    title: TITLES[status] ?? "Error",
    status,
    detail,
  };
  if (extra?.issues) problem.issues = extra.issues;
  if (extra?.accepted !== undefined) problem.accepted = extra.accepted;
  const headers = new Headers(extra?.headers);
  headers.set("content-type", "application/problem+json");
  return new Response(JSON.stringify(problem), { status, headers });
}

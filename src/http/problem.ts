/**
 * RFC 9457 problem details: the JSON body every error response of the HTTP
 * binding carries. Its size is bounded whatever the request held: the issue
 * list is capped and every text is clipped, so a hostile request cannot make
 * the answer grow with it.
 *
 * @module
 */

import type { ValidationIssue } from "../errors.ts";

/**
 * The body of an error response (`application/problem+json`), after RFC 9457.
 * `issues` lists the invalid attributes when the request failed validation,
 * at most {@linkcode MAX_PROBLEM_ISSUES} of them; `issuesOmitted` counts the
 * other issues found. A batch is not checked to its end once more issues are
 * found than are listed: `eventsUnchecked` then says how many of its events
 * were not checked (they may hold more issues).
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
  /** Invalid attributes, when validation failed; the first {@linkcode MAX_PROBLEM_ISSUES}. */
  issues?: readonly ValidationIssue[];
  /** Issues found but not listed in `issues`. */
  issuesOmitted?: number;
  /**
   * Events of a batch not checked: checking stopped once more issues were
   * found than an answer lists, so these may hold more than `issuesOmitted`
   * counts. Absent when every event was checked.
   */
  eventsUnchecked?: number;
  /** Events of a batch published before a publish failure, when known. */
  accepted?: number;
}

/**
 * Most issues a problem body lists.
 *
 * @example
 * ```ts
 * import { MAX_PROBLEM_ISSUES } from "@opensecflow/eventbus/http";
 * console.log(MAX_PROBLEM_ISSUES); // 20
 * ```
 */
export const MAX_PROBLEM_ISSUES = 20;

/** Largest problem body, in UTF-8 bytes; issues are dropped until it fits. */
export const MAX_PROBLEM_BYTES = 4096;

const MAX_DETAIL_CHARS = 400;
const MAX_PATH_CHARS = 120;
const MAX_MESSAGE_CHARS = 240;

const TITLES: Readonly<Record<number, string>> = {
  400: "Bad Request",
  403: "Forbidden",
  405: "Method Not Allowed",
  408: "Request Timeout",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

/** What a problem body may add to its status and detail. */
export interface ProblemExtras {
  /** Invalid attributes; capped and clipped in the body. */
  issues?: readonly ValidationIssue[];
  /** Events of a batch published before a publish failure. */
  accepted?: number;
  /** Events of a batch left unchecked once checking stopped. */
  eventsUnchecked?: number;
}

/** Shortens a text to `max` characters, marking the cut; never splits a surrogate pair. */
export function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max - 1;
  const code = text.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end--;
  return `${text.slice(0, end)}…`;
}

const utf8 = new TextEncoder();

/** Builds a bounded problem body: issues capped, texts clipped, at most {@linkcode MAX_PROBLEM_BYTES}. */
export function problemDetails(
  status: number,
  detail: string,
  extra?: ProblemExtras,
): ProblemDetails {
  const problem: ProblemDetails = {
    type: "about:blank",
    title: TITLES[status] ?? "Error",
    status,
    detail: clip(detail, MAX_DETAIL_CHARS),
  };
  if (extra?.accepted !== undefined) problem.accepted = extra.accepted;
  const all = extra?.issues;
  if (all === undefined || all.length === 0) return problem;
  const issues = all.slice(0, MAX_PROBLEM_ISSUES).map((issue) => ({
    path: clip(String(issue.path), MAX_PATH_CHARS),
    message: clip(String(issue.message), MAX_MESSAGE_CHARS),
  }));
  // Escaping can still make clipped texts long: drop issues until the body fits.
  while (true) {
    problem.issues = issues;
    if (all.length > issues.length) problem.issuesOmitted = all.length - issues.length;
    if (extra?.eventsUnchecked !== undefined) problem.eventsUnchecked = extra.eventsUnchecked;
    if (issues.length === 0 || byteLength(problem) <= MAX_PROBLEM_BYTES) return problem;
    issues.pop();
  }
}

function byteLength(problem: ProblemDetails): number {
  return utf8.encode(JSON.stringify(problem)).byteLength;
}

/** Builds an `application/problem+json` response with a bounded body. */
export function problemResponse(
  status: number,
  detail: string,
  extra?: ProblemExtras & { headers?: HeadersInit },
): Response {
  return problemBodyResponse(problemDetails(status, detail, extra), extra?.headers);
}

/** Sends an already-built problem body. */
export function problemBodyResponse(problem: ProblemDetails, headers?: HeadersInit): Response {
  const all = new Headers(headers);
  all.set("content-type", "application/problem+json");
  return new Response(JSON.stringify(problem), { status: problem.status, headers: all });
}

/**
 * The error of a request the HTTP binding refuses, carrying the answer the
 * receiver gives it.
 *
 * @module
 */

import { EventBusError, type ValidationIssue } from "../errors.ts";
import { problemBodyResponse, type ProblemDetails, problemDetails } from "./problem.ts";

/**
 * A request that carries no acceptable CloudEvent: `status` is the HTTP
 * status the receiver answers (400 invalid, 405 not POST, 408 body too slow,
 * 413 body too large, 415 not a CloudEvents media type) and `problem` the RFC
 * 9457 body it sends, bounded in size. `toResponse()` builds that answer.
 *
 * @example
 * ```ts
 * import { HttpRequestError, parseRequest } from "@opensecflow/eventbus/http";
 * const request = new Request("http://localhost/", { method: "POST", body: "hi" });
 * try {
 *   await parseRequest(request);
 * } catch (error) {
 *   if (error instanceof HttpRequestError) console.log(error.status, error.problem.detail); // 415 ...
 * }
 * ```
 */
export class HttpRequestError extends EventBusError {
  /** HTTP status to answer with. */
  readonly status: number;
  /** The problem body to answer with. */
  readonly problem: ProblemDetails;
  /** Headers the answer needs, e.g. `Allow` with a 405. */
  readonly headers: Readonly<Record<string, string>>;

  /** Creates the error; `options.cause` keeps the underlying error, e.g. a `ValidationError`. */
  constructor(
    status: number,
    detail: string,
    options?: ErrorOptions & {
      issues?: readonly ValidationIssue[];
      headers?: Record<string, string>;
      /** Events of a batch left unchecked once checking stopped. */
      eventsUnchecked?: number;
    },
  ) {
    const problem = problemDetails(status, detail, {
      issues: options?.issues,
      eventsUnchecked: options?.eventsUnchecked,
    });
    super("HTTP_REQUEST", problem.detail, options);
    this.status = status;
    this.problem = problem;
    this.headers = Object.freeze({ ...options?.headers });
  }

  /**
   * The answer to send: the status, `application/problem+json` and any headers.
   *
   * @example
   * ```ts
   * import { HttpRequestError } from "@opensecflow/eventbus/http";
   * const response = new HttpRequestError(415, "not a CloudEvent").toResponse();
   * console.log(response.status, response.headers.get("content-type")); // 415 application/problem+json
   * ```
   */
  toResponse(): Response {
    return problemBodyResponse(this.problem, this.headers);
  }
}

/**
 * Turning an HTTP request into validated CloudEvents: picks the content mode
 * (binary, structured, batch), reads the body under its limit, validates
 * every event, and builds typed events for the definitions given.
 *
 * @module
 */

import { CONSTANTS } from "cloudevents";
import type { AttributeType } from "../attributes.ts";
import type { EventDefinition } from "../define_event.ts";
import { excerpt, ValidationError, type ValidationIssue } from "../errors.ts";
import { CloudEvent, type EventScope, ScopedEvent } from "../event.ts";
import { hasAttributeHeaders, wireFromBinary } from "./binary_mode.ts";
import { isUtf8Charset, type MediaType, parseMediaType } from "./media_type.ts";
import { BodyTooLargeError, readBodyLimited } from "./read_body.ts";

/**
 * The three ways CloudEvents travel over HTTP: `binary` (attributes in
 * `ce-*` headers, data as the body), `structured` (one
 * `application/cloudevents+json` document) and `batch`
 * (`application/cloudevents-batch+json`, an array of events).
 *
 * @example
 * ```ts
 * import type { HttpContentMode } from "@opensecflow/eventbus/http";
 * const modes: HttpContentMode[] = ["binary", "structured"]; // no batches
 * ```
 */
export type HttpContentMode = "binary" | "structured" | "batch";

/** A request the binding refuses, with the HTTP status that says why. */
export class RequestRejection extends Error {
  /** HTTP status to answer with. */
  readonly status: number;
  /** Invalid attributes, for a 400. */
  readonly issues: readonly ValidationIssue[] | undefined;

  /** Creates a rejection. */
  constructor(status: number, message: string, issues?: readonly ValidationIssue[]) {
    super(message);
    this.name = "RequestRejection";
    this.status = status;
    this.issues = issues;
  }
}

/** What {@linkcode parseRequest} needs to know. */
export interface ParseSettings {
  /** Largest body read, in bytes. */
  readonly maxBodyBytes: number;
  /** Modes accepted. */
  readonly modes: ReadonlySet<HttpContentMode>;
  /** Typed definitions by event type. */
  readonly definitions: ReadonlyMap<string, EventDefinition>;
  /** Refuse types with no definition (only meaningful when definitions are given). */
  readonly allowUnknownTypes: boolean;
  /** Scope given to events of types without a definition, if any. */
  readonly scope: EventScope | undefined;
  /** Declared types of known extensions. */
  readonly extensionTypes: Record<string, AttributeType> | undefined;
}

const STRUCTURED_PREFIX = `${CONSTANTS.MIME_CE}+`;

/** Which mode a request uses, or a 415 rejection when none fits. */
export function detectMode(headers: Headers): { mode: HttpContentMode; type?: MediaType } {
  const type = parseMediaType(headers.get("content-type"));
  if (type?.essence === CONSTANTS.MIME_CE_BATCH) return { mode: "batch", type };
  if (type?.essence.startsWith(STRUCTURED_PREFIX)) {
    if (type.essence !== CONSTANTS.MIME_CE_JSON) {
      throw new RequestRejection(
        415,
        `structured mode supports only the JSON event format (${CONSTANTS.MIME_CE_JSON}), got ${type.essence}`,
      );
    }
    return { mode: "structured", type };
  }
  if (hasAttributeHeaders(headers)) return { mode: "binary", type };
  throw new RequestRejection(
    415,
    `expected a CloudEvent: Content-Type ${CONSTANTS.MIME_CE_JSON} (structured), ` +
      `${CONSTANTS.MIME_CE_BATCH} (batch), or ce-* attribute headers (binary); ` +
      `got ${type ? type.essence : "no Content-Type"} without ce-* headers`,
  );
}

/**
 * Reads and validates the events of a request. Throws {@linkcode RequestRejection}
 * (413, 415, or 400 with the issues); a batch with one bad event is refused whole.
 */
export async function parseRequest(
  request: Request,
  settings: ParseSettings,
): Promise<CloudEvent[]> {
  const { mode, type } = detectMode(request.headers);
  if (!settings.modes.has(mode)) {
    throw new RequestRejection(415, `${mode} content mode is not accepted here`);
  }
  if (mode !== "binary" && type !== undefined && !isUtf8Charset(type)) {
    throw new RequestRejection(
      415,
      `JSON event formats are UTF-8; charset ${excerpt(type.parameters.charset)} is not supported`,
    );
  }
  let body: Uint8Array;
  try {
    body = await readBodyLimited(request, settings.maxBodyBytes);
  } catch (error) {
    if (error instanceof BodyTooLargeError) {
      throw new RequestRejection(413, `the request body is larger than ${error.limit} bytes`);
    }
    throw new RequestRejection(400, "the request body could not be read");
  }
  try {
    if (mode === "binary") {
      return [
        typed(
          CloudEvent.fromJSON(wireFromBinary(request.headers, body), options(settings)),
          settings,
          "",
        ),
      ];
    }
    const text = decodeUtf8(body);
    if (mode === "structured") {
      return [typed(CloudEvent.fromJSON(text, options(settings)), settings, "")];
    }
    return typedBatch(CloudEvent.batchFromJSON(text, options(settings)), settings);
  } catch (error) {
    if (error instanceof ValidationError) {
      throw new RequestRejection(400, error.message, error.issues);
    }
    throw error;
  }
}

function options(settings: ParseSettings) {
  return settings.extensionTypes ? { extensionTypes: settings.extensionTypes } : undefined;
}

function decodeUtf8(body: Uint8Array): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(body);
  } catch {
    throw new ValidationError([{ path: "", message: "the body is not valid UTF-8" }]);
  }
}

function typedBatch(events: CloudEvent[], settings: ParseSettings): CloudEvent[] {
  const out: CloudEvent[] = [];
  const issues: ValidationIssue[] = [];
  events.forEach((event, index) => {
    try {
      out.push(typed(event, settings, `[${index}]`));
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      issues.push(...error.issues);
    }
  });
  if (issues.length > 0) throw new ValidationError(issues, { context: "CloudEvents batch" });
  return out;
}

/** Applies the definition of the event's type, or the fallback scope; issues prefixed for batches. */
function typed(event: CloudEvent, settings: ParseSettings, prefix: string): CloudEvent {
  const at = (path: string) => (prefix ? `${prefix}.${path}` : path);
  const definition = settings.definitions.get(event.type);
  try {
    if (definition !== undefined) return definition.parse(event, options(settings));
    if (settings.definitions.size > 0 && !settings.allowUnknownTypes) {
      throw new ValidationError([{
        path: "type",
        message: `${excerpt(event.type)} is not accepted here; accepted types: ${
          [...settings.definitions.keys()].join(", ")
        }`,
      }]);
    }
    if (settings.scope === undefined) return event;
    return new ScopedEvent({
      id: event.id,
      source: event.source,
      type: event.type,
      subject: event.subject,
      time: event.time ?? null,
      datacontenttype: event.datacontenttype,
      dataschema: event.dataschema,
      extensions: event.extensions,
      data: event.data,
      scope: settings.scope,
    });
  } catch (error) {
    if (!(error instanceof ValidationError) || !prefix) throw error;
    throw new ValidationError(error.issues.map((issue) => ({ ...issue, path: at(issue.path) })));
  }
}

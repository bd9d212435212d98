/**
 * Text forms of an AsyncAPI document: YAML (through the `yaml` package) and
 * JSON.
 *
 * @module
 */

import { stringify } from "yaml";
import { InvalidArgumentError } from "../errors.ts";
import type { AsyncApiDocument } from "./types.ts";

/**
 * The document as YAML, the usual form of AsyncAPI files. Repeated objects
 * are written out each time, never as YAML anchors, which some AsyncAPI tools
 * do not follow.
 *
 * @example
 * ```ts
 * import { EventBus } from "@opensecflow/eventbus";
 * import { asyncapi, toYAML } from "@opensecflow/eventbus/asyncapi";
 * const yaml = toYAML(asyncapi(new EventBus(), { title: "Shop", version: "1.0.0" }));
 * console.log(yaml.startsWith("asyncapi: 3.0.0")); // true
 * ```
 */
export function toYAML(document: AsyncApiDocument): string {
  checkDocument(document);
  return stringify(document, { aliasDuplicateObjects: false, lineWidth: 0 });
}

/**
 * The document as JSON, indented by two spaces.
 *
 * @example
 * ```ts
 * import { EventBus } from "@opensecflow/eventbus";
 * import { asyncapi, toJSON } from "@opensecflow/eventbus/asyncapi";
 * const json = toJSON(asyncapi(new EventBus(), { title: "Shop", version: "1.0.0" }));
 * console.log(JSON.parse(json).asyncapi); // "3.0.0"
 * ```
 */
export function toJSON(document: AsyncApiDocument): string {
  checkDocument(document);
  return JSON.stringify(document, null, 2);
}

function checkDocument(document: unknown): void {
  if (
    document === null || typeof document !== "object" ||
    typeof (document as { asyncapi?: unknown }).asyncapi !== "string"
  ) {
    throw new InvalidArgumentError("document", "must be an AsyncAPI document from asyncapi()");
  }
}

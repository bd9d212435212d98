/**
 * The one validation path of an event: {@linkcode eventInitIssues} lists
 * every problem of what `new CloudEvent(init)` takes, without building
 * anything, so the constructor, the JSON codec and typed events all report
 * the same problems the same way.
 *
 * @module
 */

import {
  type AttributeType,
  checkAbsoluteUri,
  checkExtensionName,
  checkExtensionValue,
  checkMediaType,
  checkNonEmptyString,
  checkTimestamp,
  checkUriReference,
  describeType,
} from "./attributes.ts";
import { excerpt, InvalidArgumentError, type ValidationIssue } from "./errors.ts";
import type { CloudEventInit, CloudEventOptions, ExtensionValue } from "./event.ts";
import {
  DEFAULT_MAX_DATA_DEPTH,
  findDataProblem,
  formatDataPath,
  readMaxDepth,
} from "./json_checks.ts";

/** The answer for a valid event: shared, so the common case allocates nothing. */
export const NO_ISSUES: readonly ValidationIssue[] = Object.freeze([]);

// Events of one kind repeat the same source and type: remembering the last
// valid value of each skips re-checking them on the hot path.
let lastValidSource: unknown;
let lastValidType: unknown;

/**
 * Every problem `new CloudEvent(init, options)` would report, in attribute
 * order; empty when the event is valid. Nothing is built or frozen: the
 * input is left as it was.
 * `checkData: false` is for data known to travel as JSON already. Throws
 * {@linkcode InvalidArgumentError} only for bad `options`.
 */
export function eventInitIssues(
  init: CloudEventInit<unknown>,
  options?: CloudEventOptions,
  checkData = true,
): readonly ValidationIssue[] {
  if (init === null || typeof init !== "object") {
    return [{ path: "", message: `must be an object, got ${describeType(init)}` }];
  }
  let issues: ValidationIssue[] | undefined;
  if (init.specversion !== undefined && init.specversion !== "1.0") {
    issues = add(issues, "specversion", `must be "1.0", got ${excerpt(init.specversion)}`);
  }
  if (init.id !== undefined) issues = add(issues, "id", checkNonEmptyString(init.id));
  if (init.source !== lastValidSource) {
    const problem = checkUriReference(init.source);
    if (problem) issues = add(issues, "source", problem);
    else lastValidSource = init.source;
  }
  if (init.type !== lastValidType) {
    const problem = checkNonEmptyString(init.type);
    if (problem) issues = add(issues, "type", problem);
    else lastValidType = init.type;
  }
  // `null` for an optional attribute means absent, as in the JSON format.
  if (init.datacontenttype != null) {
    issues = add(issues, "datacontenttype", checkMediaType(init.datacontenttype));
  }
  if (init.dataschema != null) {
    issues = add(issues, "dataschema", checkAbsoluteUri(init.dataschema));
  }
  if (init.subject != null) issues = add(issues, "subject", checkNonEmptyString(init.subject));
  if (init.time != null) issues = add(issues, "time", timeProblem(init.time));
  if (init.extensions != null) issues = addAll(issues, extensionIssues(init.extensions));
  // Read even without data, so a bad option is reported on every call.
  const maxDepth = options === undefined ? DEFAULT_MAX_DATA_DEPTH : readOptions(options);
  if (checkData && init.data !== undefined) {
    issues = addAll(issues, dataIssues(init.data, maxDepth));
  }
  return issues ?? NO_ISSUES;
}

/** Checks constructor options and returns the data depth bound. */
export function readOptions(options: CloudEventOptions | undefined): number {
  if (options === undefined) return DEFAULT_MAX_DATA_DEPTH;
  if (options === null || typeof options !== "object") {
    throw new InvalidArgumentError("options", `must be an object, got ${describeType(options)}`);
  }
  return readMaxDepth(options.maxDepth);
}

/**
 * Problems of data that cannot travel as JSON (see `findDataProblem`), with
 * paths under `root`; `maxDepth` as {@linkcode readOptions} returns it.
 */
export function dataIssues(
  data: unknown,
  maxDepth: number,
  root = "data",
): readonly ValidationIssue[] {
  const problem = findDataProblem(data, maxDepth);
  if (problem === undefined) return NO_ISSUES;
  return [{ path: formatDataPath(root, problem.keys), message: problem.message }];
}

function timeProblem(time: unknown): string | undefined {
  if (!(time instanceof Date)) return checkTimestamp(time);
  if (Number.isNaN(time.getTime())) return "is an invalid Date";
  const year = time.getUTCFullYear();
  return year < 0 || year > 9999
    ? "is outside the years 0000-9999 an RFC 3339 timestamp can write"
    : undefined;
}

/**
 * Problems of extension attributes: a plain object of valid names and values;
 * with `types`, declared extensions are checked in their canonical form.
 */
export function extensionIssues(
  extensions: unknown,
  types?: Readonly<Record<string, AttributeType>>,
): readonly ValidationIssue[] {
  // A Map or class instance would pass `typeof` and then lose its entries.
  if (!isPlainObject(extensions)) {
    return [{
      path: "extensions",
      message: `must be a plain object, got ${describeType(extensions)}`,
    }];
  }
  let issues: ValidationIssue[] | undefined;
  for (const name of Object.keys(extensions)) {
    const type = types !== undefined && Object.hasOwn(types, name) ? types[name] : undefined;
    const problem = checkExtensionName(name) ?? checkExtensionValue(extensions[name], type);
    if (problem) issues = add(issues, excerpt(name).slice(1, -1) || name, problem);
  }
  return issues ?? NO_ISSUES;
}

/** A frozen copy of extensions that {@linkcode extensionIssues} found valid. */
export function copyExtensions(
  extensions: Readonly<Record<string, ExtensionValue>>,
): Readonly<Record<string, ExtensionValue>> {
  const out: Record<string, ExtensionValue> = {};
  for (const name of Object.keys(extensions)) {
    // defineProperty keeps names like "constructor" as plain own data.
    Object.defineProperty(out, name, { value: extensions[name], enumerable: true });
  }
  return Object.freeze(out);
}

/** Tells whether a value is a plain object: prototype `Object.prototype` or `null`. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== "object") return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function add(
  issues: ValidationIssue[] | undefined,
  path: string,
  problem: string | undefined,
): ValidationIssue[] | undefined {
  if (problem === undefined) return issues;
  (issues ??= []).push({ path, message: problem });
  return issues;
}

function addAll(
  issues: ValidationIssue[] | undefined,
  more: readonly ValidationIssue[],
): ValidationIssue[] | undefined {
  if (more.length === 0) return issues;
  (issues ??= []).push(...more);
  return issues;
}

/**
 * Checks that event data can travel as JSON: what `JSON.stringify` writes
 * must read back as the same value. The walk is iterative, so hostile input
 * nested 100 000 levels deep cannot overflow the call stack, and it bounds
 * the nesting depth so that neither a recursive zod schema nor
 * `JSON.stringify` meets data deeper than they can handle.
 *
 * @module
 */

import { describeType } from "./attributes.ts";
import { excerpt, InvalidArgumentError } from "./errors.ts";

/**
 * Default bound on how deeply event data may nest objects and arrays: `{}`,
 * `[]` and `{ "a": 1 }` are depth 1, `[[1]]` depth 2; strings, numbers,
 * booleans and `null` are depth 0.
 *
 * @example
 * ```ts
 * import { CloudEvent, DEFAULT_MAX_DATA_DEPTH } from "@opensecflow/eventbus";
 * let data: unknown = 1;
 * for (let i = 0; i < DEFAULT_MAX_DATA_DEPTH; i++) data = [data];
 * new CloudEvent({ type: "t", source: "/s", data }); // accepted; one level more is refused
 * ```
 */
export const DEFAULT_MAX_DATA_DEPTH = 512;

/**
 * Highest `maxDepth` accepted. `JSON.stringify` of a frozen event recurses
 * once per level, and from about 3 000 levels on it overflows the stack.
 */
export const MAX_DATA_DEPTH_LIMIT = 1_000;

/**
 * Most values data may write as JSON, an object referenced several times
 * counting once per reference: a few shared arrays nested in each other can
 * otherwise expand to more text than `JSON.stringify` can build.
 */
export const MAX_DATA_VALUES = 2 ** 26;

/** A member of a container: an object key or an array index. */
export type DataKey = string | number;

/** Where data cannot travel as JSON, and why. */
export interface DataProblem {
  /** Keys from the data's root down to the offending value; empty for the root. */
  readonly keys: readonly DataKey[];
  /** Readable message, e.g. `"must be a finite number, got NaN"`. */
  readonly message: string;
}

/**
 * Reads a `maxDepth` option: absent means {@linkcode DEFAULT_MAX_DATA_DEPTH};
 * anything but an integer from 0 to {@linkcode MAX_DATA_DEPTH_LIMIT} throws
 * {@linkcode InvalidArgumentError}.
 */
export function readMaxDepth(maxDepth: unknown): number {
  if (maxDepth === undefined) return DEFAULT_MAX_DATA_DEPTH;
  if (
    typeof maxDepth !== "number" || !Number.isInteger(maxDepth) || maxDepth < 0 ||
    maxDepth > MAX_DATA_DEPTH_LIMIT
  ) {
    throw new InvalidArgumentError(
      "maxDepth",
      `must be an integer from 0 to ${MAX_DATA_DEPTH_LIMIT}, got ${excerpt(maxDepth)}`,
    );
  }
  return maxDepth;
}

/**
 * Finds the first reason `data` cannot travel as JSON, or returns `undefined`.
 *
 * Accepted: plain objects (prototype `Object.prototype` or `null`), arrays,
 * strings, finite numbers, booleans, `null`, valid `Date`s (written as their
 * ISO text) and object members whose value is `undefined` (absent, as JSON
 * writes them). A `Uint8Array` is accepted as the whole data only: it travels
 * as `data_base64`. Refused: non-finite numbers, functions, symbols, bigints,
 * `undefined` in arrays (and array holes), other class instances, cycles,
 * members whose reading throws (getters, proxies), nesting deeper than
 * `maxDepth` and more than {@linkcode MAX_DATA_VALUES} values written. An
 * object reached twice without a cycle is walked once.
 */
export function findDataProblem(data: unknown, maxDepth: number): DataProblem | undefined {
  if (data === null || typeof data !== "object") {
    const message = data === undefined ? undefined : scalarProblem(data);
    return message === undefined ? undefined : { keys: [], message };
  }
  // Small flat payloads, the common case, are checked without allocating.
  let threw = false;
  try {
    const flat = checkFlat(data, maxDepth);
    if (flat === undefined) lastFlat = data;
    if (flat !== NESTED) return flat;
  } catch {
    // The full walk reads the members again and names the one that throws.
    threw = true;
  }
  if (!threw && data instanceof Uint8Array) return undefined;
  const problem = new DataWalk(maxDepth).run(data);
  if (problem !== undefined || !threw) return problem;
  return { keys: [], message: "cannot be read consistently: a member threw once" };
}

/** The last object {@linkcode findDataProblem} found valid with scalar members only. */
let lastFlat: object | undefined;

/**
 * Tells whether `data` is the object {@linkcode findDataProblem} last found
 * valid with scalar members only, and forgets it: freezing it then needs no
 * second look at its members.
 */
export function takeCheckedFlat(data: unknown): boolean {
  if (data !== lastFlat || data === undefined) return false;
  lastFlat = undefined;
  return true;
}

/** Result of {@linkcode checkFlat} when the data holds containers: the full walk decides. */
const NESTED: DataProblem = Object.freeze({ keys: [], message: "nested" });

/**
 * Checks a plain object or array whose members are all scalars; returns
 * {@linkcode NESTED} for anything else.
 */
function checkFlat(data: object, maxDepth: number): DataProblem | undefined {
  if (maxDepth < 1) return NESTED;
  const proto = Object.getPrototypeOf(data);
  if (proto === Object.prototype || proto === null) {
    const record = data as Record<string, unknown>;
    for (const key in record) {
      const value = record[key];
      if (typeof value === "string" || typeof value === "boolean" || value == null) continue;
      if (typeof value === "number") {
        if (Number.isFinite(value)) continue;
      } else if (typeof value === "object") return NESTED;
      return { keys: [key], message: scalarProblem(value) as string };
    }
    return undefined;
  }
  if (!Array.isArray(data) || data.length > MAX_DATA_VALUES) return NESTED;
  for (let index = 0; index < data.length; index++) {
    const value: unknown = data[index];
    if (typeof value === "string" || typeof value === "boolean" || value === null) continue;
    if (typeof value === "number") {
      if (Number.isFinite(value)) continue;
    } else if (typeof value === "object") return NESTED;
    const message = value === undefined ? UNDEFINED_IN_ARRAY : scalarProblem(value) as string;
    return { keys: [index], message };
  }
  return undefined;
}

const UNDEFINED_IN_ARRAY = "is undefined, which JSON writes as null in an array";

/** Checks a value that is not an object, `null` or `undefined`. */
function scalarProblem(value: unknown): string | undefined {
  switch (typeof value) {
    case "string":
    case "boolean":
      return undefined;
    case "number":
      return Number.isFinite(value) ? undefined : `must be a finite number, got ${value}`;
    default:
      return `is ${describeType(value)}, which JSON cannot carry`;
  }
}

/** Marks the end of a container's members on the walk's stack. */
const EXIT: object = Object.freeze({});

/** What a container is, for the walk. */
type Kind = typeof ARRAY | typeof OBJECT | typeof LEAF;
const ARRAY = 0;
const OBJECT = 1;
/** A valid Date: written as its ISO text, nothing inside to walk. */
const LEAF = 2;

/** State of a container on the walk's path: meeting it again is a cycle. */
const OPEN = -1;

/**
 * The full, iterative walk. A depth-first stack holds pending members (and an
 * exit marker per container); `path` holds the keys of the open containers,
 * `sizes` how many values each will write. A container seen twice is either
 * open (a cycle) or done: then it is not walked again, but its values are
 * counted again, since JSON writes a shared object once per reference.
 */
class DataWalk {
  readonly #maxDepth: number;
  readonly #path: DataKey[] = [];
  readonly #sizes: number[] = [];
  readonly #stack: unknown[] = [];
  readonly #seen = new Map<object, number>();
  /** The member being read, for a problem thrown while reading it. */
  #member: DataKey | undefined;

  constructor(maxDepth: number) {
    this.#maxDepth = maxDepth;
  }

  run(root: object): DataProblem | undefined {
    const stack = this.#stack;
    try {
      let problem = this.#enter(root);
      while (problem === undefined && stack.length > 0) {
        const top = stack.pop();
        if (top === EXIT) problem = this.#exit(stack.pop() as object);
        else {
          this.#path.push(stack.pop() as DataKey);
          problem = this.#enter(top as object);
        }
      }
      return problem;
    } catch (error) {
      const keys = this.#member === undefined ? [...this.#path] : [...this.#path, this.#member];
      return { keys, message: `cannot be read: ${thrownText(error)}` };
    }
  }

  /** Checks a container whose key ends the path, and queues its members. */
  #enter(container: object): DataProblem | undefined {
    const path = this.#path;
    const state = this.#seen.get(container);
    if (state === OPEN) {
      return { keys: [...path], message: "refers to an object that contains it (a cycle)" };
    }
    if (state !== undefined) return this.#skip(state);
    const kind = containerKind(container);
    if (typeof kind === "string") return { keys: [...path], message: kind };
    if (kind === LEAF) return this.#skip(1);
    if (this.#sizes.length >= this.#maxDepth) {
      return {
        keys: [...path],
        message: `is nested more than ${this.#maxDepth} levels deep (the maxDepth option)`,
      };
    }
    this.#seen.set(container, OPEN);
    this.#sizes.push(1);
    this.#stack.push(container, EXIT);
    return kind === ARRAY
      ? this.#queueItems(container as unknown[])
      : this.#queueMembers(container as Record<string, unknown>);
  }

  /** Closes a walked container: bounds and remembers the values it writes. */
  #exit(container: object): DataProblem | undefined {
    const values = this.#sizes.pop() as number;
    if (values > MAX_DATA_VALUES) {
      return {
        keys: [...this.#path],
        message: `would write more than ${MAX_DATA_VALUES} values as JSON ` +
          "(an object referenced several times is written once per reference)",
      };
    }
    this.#seen.set(container, values);
    return this.#skip(values);
  }

  /** Leaves a container that is walked already or has nothing to walk. */
  #skip(values: number): undefined {
    this.#path.pop();
    this.#count(values);
    return undefined;
  }

  #count(values: number): void {
    const sizes = this.#sizes;
    if (sizes.length > 0) sizes[sizes.length - 1] += values;
  }

  #queueItems(array: readonly unknown[]): DataProblem | undefined {
    for (let index = 0; index < array.length; index++) {
      this.#member = index;
      const value = array[index];
      const problem = value === undefined ? UNDEFINED_IN_ARRAY : this.#queue(index, value);
      if (problem !== undefined) return { keys: [...this.#path, index], message: problem };
    }
    this.#member = undefined;
    return undefined;
  }

  #queueMembers(record: Record<string, unknown>): DataProblem | undefined {
    for (const key in record) {
      this.#member = key;
      const value = record[key];
      const problem = value === undefined ? undefined : this.#queue(key, value);
      if (problem !== undefined) return { keys: [...this.#path, key], message: problem };
    }
    this.#member = undefined;
    return undefined;
  }

  /** Queues a container member, or checks and counts a scalar one. */
  #queue(key: DataKey, value: unknown): string | undefined {
    if (value !== null && typeof value === "object") {
      this.#stack.push(key, value);
      return undefined;
    }
    this.#count(1);
    return value === null ? undefined : scalarProblem(value);
  }
}

/** Array, plain object, a leaf (a valid Date), or why the object cannot travel. */
function containerKind(value: object): Kind | string {
  if (Array.isArray(value)) return ARRAY;
  const proto = Object.getPrototypeOf(value);
  if (proto === Object.prototype || proto === null) return OBJECT;
  if (value instanceof Date) {
    return Number.isNaN(value.getTime()) ? "is an invalid Date, which JSON writes as null" : LEAF;
  }
  if (value instanceof Uint8Array) {
    return "is a Uint8Array: binary data travels only as the whole data (data_base64)";
  }
  return `is ${describeType(value)}, which JSON cannot carry: use plain objects and arrays`;
}

/** Path segments shown at each end of a long path; the middle is elided. */
const PATH_ENDS = 8;
/** Longest object key quoted in a path. */
const PATH_KEY_LENGTH = 60;

/**
 * Writes keys as an issue path under `root`: `data.lines[1].qty`. Long keys
 * are cut and deep paths keep only their ends, so a message stays short.
 */
export function formatDataPath(root: string, keys: readonly PropertyKey[]): string {
  const segment = (key: PropertyKey): string =>
    typeof key === "number" ? `[${key}]` : `.${shorten(String(key), PATH_KEY_LENGTH)}`;
  if (keys.length <= 2 * PATH_ENDS) return root + keys.map(segment).join("");
  const head = keys.slice(0, PATH_ENDS).map(segment).join("");
  const tail = keys.slice(-PATH_ENDS).map(segment).join("");
  return `${root}${head}…(${keys.length - 2 * PATH_ENDS} levels)…${tail}`;
}

/** Cuts text to `max` characters, marking the cut. */
export function shorten(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** A short text for something thrown, even by a proxy whose every trap throws. */
export function thrownText(error: unknown): string {
  try {
    return excerpt(error);
  } catch {
    return "an unreadable value";
  }
}

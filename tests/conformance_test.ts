// Runs every case of the official CloudEvents JSON-format conformance data in
// tests/fixtures/cloudevents-conformance/ (see its README.md for provenance). A missing folder
// or file fails the suite: the data is the specification's test, not optional.

import assert from "node:assert/strict";
import type { AttributeType } from "../src/attributes.ts";
import { ValidationError } from "../src/errors.ts";
import { CloudEvent } from "../src/event.ts";

const FOLDER = new URL("./fixtures/cloudevents-conformance/", import.meta.url);
const FILES = [
  "valid-events.json",
  "invalid-events.json",
  "valid-batches.json",
  "invalid-batches.json",
] as const;

interface ConformanceCase {
  id: string;
  description?: string;
  testType?: string;
  sampleId?: string;
  sampleExtensionAttributes?: boolean;
  event?: unknown;
  batch?: unknown;
}

interface ConformanceFile {
  testType: string;
  tests: ConformanceCase[];
}

/** A golden sample: the attributes an event must have after parsing. */
interface Sample {
  specversion: "1.0";
  id: string;
  type: string;
  source: string;
  datacontenttype?: string;
  dataschema?: string;
  subject?: string;
  time?: string;
  data?: unknown;
  extensions?: Record<string, string | number | boolean | Uint8Array>;
}

/** Types of the extension attributes of the `allExtensionTypes` sample. */
const SAMPLE_EXTENSION_TYPES: Record<string, AttributeType> = {
  extinteger: "integer",
  extboolean: "boolean",
  extstring: "string",
  extbinary: "binary",
  exttimestamp: "timestamp",
  exturi: "uri",
  exturiref: "uri-reference",
};

const minimal: Sample = {
  specversion: "1.0",
  id: "minimal",
  type: "io.cloudevents.test",
  source: "https://cloudevents.io",
};
const allCore: Sample = {
  ...minimal,
  id: "allCore",
  datacontenttype: "text/plain",
  dataschema: "https://cloudevents.io/dataschema",
  subject: "tests",
  time: "2018-04-05T17:31:00Z",
};
const allExtensionTypes: Sample = {
  ...minimal,
  id: "allExtensionTypes",
  extensions: {
    extinteger: 10,
    extboolean: true,
    extstring: "text",
    extbinary: new Uint8Array([0x4d, 0x61]),
    exttimestamp: "2023-03-31T15:12:00Z",
    exturi: "https://cloudevents.io",
    exturiref: "//authority/path",
  },
};

const SAMPLES: Record<string, Sample> = {
  minimal,
  minimalWithTime: { ...minimal, id: "minimalWithTime", time: "2018-04-05T17:31:00Z" },
  minimalWithRelativeSource: { ...minimal, id: "minimalWithRelativeSource", source: "#fragment" },
  allCore,
  simpleTextData: {
    ...minimal,
    id: "simpleTextData",
    datacontenttype: "text/plain",
    data: "Simple text",
  },
  allExtensionTypes,
};

const BATCH_SAMPLES: Record<string, Sample[]> = {
  empty: [],
  minimal: [minimal],
  minimal2: [minimal, minimal],
  minimalAndAllCore: [minimal, allCore],
  minimalAndAllExtensionTypes: [minimal, allExtensionTypes],
};

/** The attribute each invalid single-event case is wrong in. */
const INVALID_EVENT_PATHS: Record<string, string> = {
  invalidNoSpecVersion: "specversion",
  invalidNoId: "id",
  invalidNoType: "type",
  invalidNoSource: "source",
  invalidTimeGarbage: "time",
  invalidTimeToMinute: "time",
  invalidTimeOffsetX: "time",
  invalidTimeOffsetOutOfRange: "time",
  invalidTimeOffsetNonInteger: "time",
  invalidTimeOffsetHourOnly: "time",
  invalidEmptyId: "id",
  invalidEmptyType: "type",
  invalidEmptySource: "source",
  invalidEmptySpecVersion: "specversion",
  invalidUnknownSpecVersion: "specversion",
  invalidNonRfc2046DataContentType: "datacontenttype",
  invalidEmptyDataContentType: "datacontenttype",
  invalidEmptyDataSchema: "dataschema",
  invalidEmptySubject: "subject",
  invalidNumericId: "id",
  invalidObjectId: "id",
  invalidCapitalizedExtension: "MyExtension",
  invalidPunctuatedExtension: "my.extension",
  invalidNonIntegerExtensionValue: "my.extension",
  invalidBothDataAndDataBase64: "data_base64",
};

/** The member and attribute each invalid batch case is wrong in. */
const INVALID_BATCH_PATHS: Record<string, string> = {
  invalidBatchMixedSpecVersions: "[1].specversion",
  invalidBatchContainingInvalidCloudEvent: "[0].id",
  invalidBatchContainingNonObject: "[0]",
};

/** Milliseconds since the epoch; digits beyond milliseconds are dropped, as the README allows. */
function instant(timestamp: string): number {
  const millis = Date.parse(timestamp.replace(/(\.\d{3})\d+/, "$1"));
  assert.ok(!Number.isNaN(millis), `not a timestamp: ${timestamp}`);
  return millis;
}

function bytesOf(base64: string): number[] {
  return Array.from(atob(base64), (char) => char.charCodeAt(0));
}

/** Brings an extension value into a comparable form according to its declared type. */
function comparableExtension(value: unknown, type: AttributeType | undefined): unknown {
  if (type === "timestamp") return instant(value as string);
  if (type === "binary") {
    return value instanceof Uint8Array ? Array.from(value) : bytesOf(value as string);
  }
  return value;
}

/** The view of an event or sample that two equal events share. */
function comparable(
  event: Sample | CloudEvent,
  types: Record<string, AttributeType> = {},
): Record<string, unknown> {
  const view: Record<string, unknown> = {
    specversion: event.specversion,
    id: event.id,
    type: event.type,
    source: event.source,
  };
  for (const name of ["datacontenttype", "dataschema", "subject", "data"] as const) {
    if (event[name] !== undefined) view[name] = event[name];
  }
  if (event.time !== undefined) view.time = instant(event.time);
  const extensions: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(event.extensions ?? {})) {
    extensions[name] = comparableExtension(value, types[name]);
  }
  view.extensions = extensions;
  return view;
}

function sample(id: string | undefined): Sample {
  assert.ok(id !== undefined && Object.hasOwn(SAMPLES, id), `unknown golden sample ${id}`);
  return SAMPLES[id];
}

function batchSample(id: string | undefined): Sample[] {
  assert.ok(id !== undefined && Object.hasOwn(BATCH_SAMPLES, id), `unknown golden batch ${id}`);
  return BATCH_SAMPLES[id];
}

function typesOf(testCase: ConformanceCase): Record<string, AttributeType> | undefined {
  return testCase.sampleExtensionAttributes ? SAMPLE_EXTENSION_TYPES : undefined;
}

function runValidEvent(testCase: ConformanceCase): void {
  assert.ok(testCase.event !== undefined, "case has no event");
  const types = typesOf(testCase);
  const expected = comparable(sample(testCase.sampleId), types);
  const parsed = CloudEvent.fromJSON(testCase.event, types && { extensionTypes: types });
  assert.deepStrictEqual(comparable(parsed, types), expected);
  // The same event read from text, and after our own serialization, is still equal.
  const fromText = CloudEvent.fromJSON(JSON.stringify(testCase.event), { extensionTypes: types });
  assert.deepStrictEqual(comparable(fromText, types), expected);
  const again = CloudEvent.fromJSON(JSON.stringify(parsed), { extensionTypes: types });
  assert.deepStrictEqual(comparable(again, types), expected);
}

function runValidBatch(testCase: ConformanceCase): void {
  assert.ok(Array.isArray(testCase.batch), "case has no batch");
  const types = typesOf(testCase);
  const expected = batchSample(testCase.sampleId).map((event) => comparable(event, types));
  const parsed = CloudEvent.batchFromJSON(testCase.batch, types && { extensionTypes: types });
  assert.deepStrictEqual(parsed.map((event) => comparable(event, types)), expected);
  const again = CloudEvent.batchFromJSON(CloudEvent.batchToJSON(parsed), {
    extensionTypes: types,
  });
  assert.deepStrictEqual(again.map((event) => comparable(event, types)), expected);
}

function assertRejected(parse: () => unknown, path: string | undefined, caseId: string): void {
  assert.ok(path !== undefined, `no expected attribute recorded for case ${caseId}`);
  let error: unknown;
  try {
    parse();
  } catch (caught) {
    error = caught;
  }
  assert.ok(error instanceof ValidationError, `expected ValidationError, got ${error}`);
  assert.ok(error.issues.length > 0, "ValidationError without issues");
  // Only the attribute the case breaks is reported, so the path is precise.
  assert.deepStrictEqual([...new Set(error.issues.map((issue) => issue.path))], [path]);
  assert.ok(error.message.includes(path), `message does not name ${path}: ${error.message}`);
}

function runInvalidEvent(testCase: ConformanceCase): void {
  assert.ok(testCase.event !== undefined, "case has no event");
  const path = INVALID_EVENT_PATHS[testCase.id];
  assertRejected(() => CloudEvent.fromJSON(testCase.event), path, testCase.id);
  assertRejected(() => CloudEvent.fromJSON(JSON.stringify(testCase.event)), path, testCase.id);
}

function runInvalidBatch(testCase: ConformanceCase): void {
  assert.ok(Array.isArray(testCase.batch), "case has no batch");
  const path = INVALID_BATCH_PATHS[testCase.id];
  assertRejected(() => CloudEvent.batchFromJSON(testCase.batch), path, testCase.id);
  assertRejected(() => CloudEvent.batchFromJSON(JSON.stringify(testCase.batch)), path, testCase.id);
}

const RUNNERS: Record<string, (testCase: ConformanceCase) => void> = {
  ValidSingleEvent: runValidEvent,
  InvalidSingleEvent: runInvalidEvent,
  ValidBatch: runValidBatch,
  InvalidBatch: runInvalidBatch,
};

async function readCases(file: string): Promise<ConformanceFile> {
  const url = new URL(file, FOLDER);
  let text: string;
  try {
    text = await Deno.readTextFile(url);
  } catch (error) {
    throw new Error(
      `conformance data missing: ${url.pathname} (the fixtures are part of the repository)`,
      { cause: error },
    );
  }
  const parsed = JSON.parse(text) as ConformanceFile;
  assert.equal(typeof parsed.testType, "string", `${file}: no testType`);
  assert.ok(Array.isArray(parsed.tests) && parsed.tests.length > 0, `${file}: no tests`);
  return parsed;
}

Deno.test("conformance folder holds exactly the known case files", async () => {
  const found: string[] = [];
  for await (const entry of Deno.readDir(FOLDER)) {
    if (entry.name.endsWith(".json")) found.push(entry.name);
  }
  assert.deepStrictEqual(found.sort(), [...FILES].sort());
});

for (const file of FILES) {
  Deno.test(`conformance ${file}`, async (t) => {
    const { testType, tests } = await readCases(file);
    const ids = new Set<string>();
    for (const testCase of tests) {
      assert.ok(!ids.has(testCase.id), `duplicate case id ${testCase.id}`);
      ids.add(testCase.id);
      const kind = testCase.testType ?? testType;
      const run = RUNNERS[kind];
      assert.ok(run !== undefined, `${testCase.id}: unknown test type ${kind}`);
      await t.step(testCase.id, () => run(testCase));
    }
  });
}

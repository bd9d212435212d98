/**
 * `deno task bench`: runs every benchmark section and prints one
 * side-by-side table. `deno task bench memory` runs only the sections whose
 * name contains "memory".
 *
 * Adding a section takes one line: write `bench/<name>_bench.ts` that calls
 * `registerSection({ name, run })` from `./bench_util.ts`, then import it
 * below. Sections run in import order, each in a process of its own.
 *
 * @module
 */

import "./memory_bench.ts";
import "./bus_bench.ts";
import "./redis_bench.ts";
import "./redis_cluster_bench.ts";
import "./otel_bench.ts";
import "./kv_bench.ts";

import { printTable, registeredSections, type Row } from "./bench_util.ts";

/** Passed to the child process that runs one section and prints its rows as JSON. */
const ONE_SECTION = "--one-section=";

const own = Deno.args.find((arg) => arg.startsWith(ONE_SECTION));
if (own !== undefined) {
  const name = own.slice(ONE_SECTION.length);
  const section = registeredSections().find((candidate) => candidate.name === name);
  if (section === undefined) throw new Error(`no benchmark section named ${name}`);
  console.log(JSON.stringify(await section.run()));
  Deno.exit(0);
}

const filters = Deno.args.map((arg) => arg.toLowerCase());
const chosen = registeredSections().filter((section) =>
  filters.length === 0 || filters.some((f) => section.name.toLowerCase().includes(f))
);
if (typeof (globalThis as { gc?: unknown }).gc !== "function") {
  console.warn("note: run with --v8-flags=--expose-gc (deno task bench) for heap figures");
}
// Each section runs in a process of its own: what one section's subjects
// teach the JIT (other handler and event shapes) must not slow the next one.
const results: { section: string; rows: Row[] }[] = [];
for (const section of chosen) {
  console.error(`running ${section.name}...`);
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      "--v8-flags=--expose-gc",
      new URL(import.meta.url).pathname,
      `${ONE_SECTION}${section.name}`,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!output.success) throw new Error(`benchmark section ${section.name} failed`);
  const lines = new TextDecoder().decode(output.stdout).trim().split("\n");
  results.push({ section: section.name, rows: JSON.parse(lines[lines.length - 1]) as Row[] });
}
printTable(results);

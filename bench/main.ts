/**
 * `deno task bench`: runs every benchmark section and prints one
 * side-by-side table. `deno task bench memory` runs only the sections whose
 * name contains "memory".
 *
 * Adding a section takes one line: write `bench/<name>_bench.ts` that calls
 * `registerSection({ name, run })` from `./bench_util.ts`, then import it
 * below. Sections run in import order.
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

const filters = Deno.args.map((arg) => arg.toLowerCase());
const chosen = registeredSections().filter((section) =>
  filters.length === 0 || filters.some((f) => section.name.toLowerCase().includes(f))
);
if (typeof (globalThis as { gc?: unknown }).gc !== "function") {
  console.warn("note: run with --v8-flags=--expose-gc (deno task bench) for heap figures");
}
const results: { section: string; rows: Row[] }[] = [];
for (const section of chosen) {
  console.error(`running ${section.name}...`);
  results.push({ section: section.name, rows: await section.run() });
}
printTable(results);

/**
 * Shared pieces of the benchmarks: the section registry, timing, garbage
 * collection and the table printer.
 *
 * @module
 */

/** One measured figure. Rows of every section land in one table. */
export interface Row {
  /** What was measured, e.g. "MemoryBroker" or "emittery". */
  subject: string;
  /** Which figure, e.g. "throughput". */
  metric: string;
  /** The figure. */
  value: number;
  /** Its unit, e.g. "msg/s". */
  unit: string;
  /** Anything a reader needs to compare it, e.g. "2.4x emittery". */
  note?: string;
}

/** A benchmark section: a name and a function producing rows. */
export interface BenchSection {
  /** Shown as the table's section heading; `deno task bench <name>` runs only matching ones. */
  name: string;
  /** Runs the measurements. */
  run(): Promise<Row[]>;
}

const registry: BenchSection[] = [];

/** Adds a section; each `bench/*_bench.ts` calls it once at module load. */
export function registerSection(section: BenchSection): void {
  registry.push(section);
}

/** The registered sections, in import order. */
export function registeredSections(): readonly BenchSection[] {
  return registry;
}

/** A full garbage collection when `--v8-flags=--expose-gc` is set (as `deno task bench` does). */
export function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/** Heap in use after a full collection, in bytes. */
export function liveHeap(): number {
  collectGarbage();
  collectGarbage();
  return Deno.memoryUsage().heapUsed;
}

/** The median of some numbers. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** The `p`-th percentile (0..100) of some numbers, nearest rank. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

/**
 * Runs `once` (which returns elapsed ms) `rounds` times and returns every
 * elapsed time. No full collection is forced between rounds: V8 shrinks the
 * young generation after one, so the next round of an allocating subject
 * would measure a cold heap instead of the steady state (seen here: the bus
 * at 6.5 M events/s right after a forced collection, 8.3 M without).
 */
export async function rounds(count: number, once: () => Promise<number>): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) times.push(await once());
  return times;
}

/** A positive integer from an environment variable, else the fallback. */
export function envInt(name: string, fallback: number): number {
  const raw = Deno.env.get(name);
  const value = raw === undefined ? NaN : Number(raw);
  return Number.isInteger(value) && value > 0 ? value : fallback;
}

function formatValue(value: number): string {
  if (Number.isInteger(value)) return value.toLocaleString("en-US");
  return value >= 100
    ? Math.round(value).toLocaleString("en-US")
    : value.toLocaleString("en-US", { maximumFractionDigits: 3 });
}

/** Prints rows grouped by section as one aligned text table. */
export function printTable(results: { section: string; rows: Row[] }[]): void {
  const header = ["section", "subject", "metric", "value", "unit", "note"];
  const lines = results.flatMap(({ section, rows }) =>
    rows.map((row) => [
      section,
      row.subject,
      row.metric,
      formatValue(row.value),
      row.unit,
      row.note ?? "",
    ])
  );
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((line) => line[i].length)));
  const format = (cells: string[]) =>
    cells.map((cell, i) => (i === 3 ? cell.padStart(widths[i]) : cell.padEnd(widths[i])))
      .join(" | ").trimEnd();
  console.log(format(header));
  console.log(widths.map((w) => "-".repeat(w)).join("-|-"));
  for (const line of lines) console.log(format(line));
}

/**
 * Writes the AsyncAPI 3.0 document of an event bus exported by a module.
 *
 * ```sh
 * deno task asyncapi <module> --title T --version V [--export bus] [--out file.yaml|.yml|.json]
 *   [--description D]
 * ```
 *
 * The module is imported (so its top-level code runs: definitions, `declare`,
 * `subscribe`), and its bus is read, never started. The bus is the export
 * named by `--export`, else the default export, else the export `bus`.
 * Without `--out` the YAML goes to stdout.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { EventBus } from "../mod.ts";
import { asyncapi, toJSON, toYAML } from "../asyncapi.ts";

const USAGE = "usage: deno task asyncapi <module> --title T --version V " +
  "[--export NAME] [--out FILE.yaml|FILE.yml|FILE.json] [--description D]";

/** A mistake on the command line: reported with the usage, exit code 2. */
class UsageError extends Error {}

interface Arguments {
  module: string;
  exportName: string | undefined;
  out: string | undefined;
  title: string;
  version: string;
  description: string | undefined;
}

function readArguments(args: string[]): Arguments {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        export: { type: "string" },
        out: { type: "string" },
        title: { type: "string" },
        version: { type: "string" },
        description: { type: "string" },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { positionals, values } = parsed;
  if (positionals.length !== 1) throw new UsageError("give exactly one module");
  if (values.title === undefined) throw new UsageError("--title is required");
  if (values.version === undefined) throw new UsageError("--version is required");
  return {
    module: positionals[0],
    exportName: values.export,
    out: values.out,
    title: values.title,
    version: values.version,
    description: values.description,
  };
}

function isBus(value: unknown): value is EventBus {
  return value !== null && typeof value === "object" &&
    typeof (value as EventBus).definitions === "function";
}

/** The bus the module exports: the named export, else `default`, else `bus`. */
function pickBus(exports: Record<string, unknown>, name: string | undefined): EventBus {
  const candidates = name === undefined ? ["default", "bus"] : [name];
  for (const candidate of candidates) {
    if (isBus(exports[candidate])) return exports[candidate];
  }
  const buses = Object.keys(exports).filter((key) => isBus(exports[key]));
  throw new UsageError(
    `the module exports no EventBus as ${candidates.map((c) => `"${c}"`).join(" or ")}` +
      (buses.length > 0 ? `; it exports one as: ${buses.join(", ")} (use --export)` : ""),
  );
}

function formatFor(out: string): "yaml" | "json" {
  if (/\.ya?ml$/i.test(out)) return "yaml";
  if (/\.json$/i.test(out)) return "json";
  throw new UsageError(`--out must end with .yaml, .yml or .json, got "${out}"`);
}

async function main(args: string[]): Promise<void> {
  const options = readArguments(args);
  const format = options.out === undefined ? "yaml" : formatFor(options.out);
  const exports = await import(pathToFileURL(resolve(options.module)).href);
  const bus = pickBus(exports, options.exportName);
  const document = asyncapi(bus, {
    title: options.title,
    version: options.version,
    description: options.description,
  });
  const text = format === "json" ? `${toJSON(document)}\n` : toYAML(document);
  if (options.out === undefined) {
    await Deno.stdout.write(new TextEncoder().encode(text));
  } else {
    await Deno.writeTextFile(options.out, text);
    console.error(
      `wrote ${options.out}: ${Object.keys(document.channels).length} channel(s), ` +
        `${Object.keys(document.operations).length} operation(s)`,
    );
  }
}

if (import.meta.main) {
  try {
    await main(Deno.args);
  } catch (error) {
    console.error(`asyncapi: ${error instanceof Error ? error.message : String(error)}`);
    if (error instanceof UsageError) console.error(USAGE);
    Deno.exit(error instanceof UsageError ? 2 : 1);
  }
}

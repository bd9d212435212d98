/**
 * Checks the TypeScript blocks of README.md the way `deno check --doc` checks
 * JSDoc examples: each block is written to a temporary module, its imports of
 * this package mapped to the local files (`@opensecflow/eventbus` to
 * `mod.ts`, `/redis` to `redis.ts`, `/http` to `http.ts`, as the `exports` of
 * deno.json say), then type-checked with the repository's deno.json, and run
 * unless it needs something outside the process.
 *
 * A block is a complete program by default: type-checked and run (it must
 * exit 0 on its own). An HTML comment on the last non-blank line above a
 * block changes that; flags combine, e.g. `<!-- snippet: continues no-run -->`:
 *
 * - `<!-- snippet: no-run -->`: type-checked, not run. For blocks that need
 *   Redis or the network, or that serve until stopped.
 * - `<!-- snippet: continues -->`: the block goes on from the block above it
 *   (and from whatever that one continues): the two are checked, and run, as
 *   one program. The block above is still checked on its own.
 * - `<!-- snippet: fragment -->`: an excerpt that is no program, neither
 *   checked nor run. Keep these rare: prefer a complete block.
 *
 * A marker not followed by a `ts` block, or an unknown flag, is an error.
 * Errors are reported as `README.md:<line>:<column>`.
 *
 * Run: deno run -A scripts/readme_snippets/check.ts [--no-run] [file.md]
 *
 * @module
 */

import { extractSnippets, type SnippetProgram, snippetPrograms } from "./extract.ts";

/** Longest a runnable block may take; one that serves forever should be `no-run`. */
const RUN_TIMEOUT_MS = 60_000;

const root = new URL("../../", import.meta.url);
const config = new URL("deno.json", root).pathname;

interface Output {
  code: number;
  text: string;
}

/** The package's import specifiers mapped to local file URLs, from deno.json. */
async function localImports(): Promise<Map<string, string>> {
  const manifest = JSON.parse(await Deno.readTextFile(config)) as {
    name: string;
    exports: Record<string, string>;
  };
  const map = new Map<string, string>();
  for (const [subpath, file] of Object.entries(manifest.exports)) {
    const specifier = subpath === "." ? manifest.name : `${manifest.name}${subpath.slice(1)}`;
    map.set(specifier, new URL(file, root).href);
  }
  return map;
}

function mapImports(code: string, imports: Map<string, string>): string {
  return code.replace(
    /(["'])(@[\w.-]+\/[\w.-]+(?:\/[\w.-]+)*)\1/g,
    (whole, quote: string, specifier: string) => {
      const local = imports.get(specifier);
      return local === undefined ? whole : `${quote}${local}${quote}`;
    },
  );
}

async function deno(args: string[]): Promise<Output> {
  const output = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: root.pathname,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(RUN_TIMEOUT_MS),
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    text: decoder.decode(output.stdout) + decoder.decode(output.stderr),
  };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

/** Rewrites temporary module locations in deno's output into Markdown lines. */
function toMarkdownLines(
  text: string,
  files: Map<string, SnippetProgram>,
  markdown: string,
): string {
  let result = text;
  for (const [file, program] of files) {
    const url = new URL(`file://${file}`).href;
    for (const prefix of [url, file]) {
      result = result.replaceAll(
        new RegExp(`${escapeRegExp(prefix)}:(\\d+)(?::(\\d+))?`, "g"),
        (_, line: string, column?: string) => {
          const mapped = program.lines[Number(line) - 1] ?? program.line;
          return `${markdown}:${mapped}${column ? `:${column}` : ""}`;
        },
      );
      result = result.replaceAll(prefix, `${markdown}:${program.line}`);
    }
  }
  return result;
}

async function main(args: string[]): Promise<number> {
  const run = !args.includes("--no-run");
  const markdown = args.find((arg) => !arg.startsWith("--")) ?? "README.md";
  const path = new URL(markdown, root).pathname;
  const snippets = extractSnippets(await Deno.readTextFile(path), markdown);
  const programs = snippetPrograms(snippets, markdown);
  const imports = await localImports();
  const dir = await Deno.makeTempDir({ prefix: "readme_snippets_" });
  try {
    const files = new Map<string, SnippetProgram>();
    for (const program of programs) {
      const file = `${dir}/line_${program.line}.ts`;
      await Deno.writeTextFile(file, `${mapImports(program.code, imports)}\n`);
      files.set(file, program);
    }
    const fragments = snippets.filter((snippet) => snippet.flags.has("fragment")).length;
    console.log(
      `${markdown}: ${snippets.length} ts blocks, ${programs.length} programs, ${fragments} fragments`,
    );
    const checked = await deno(["check", "--quiet", "--config", config, ...files.keys()]);
    if (checked.code !== 0) {
      console.log(toMarkdownLines(checked.text, files, markdown));
      console.log(`${markdown}: type check failed`);
      return 1;
    }
    console.log(`type check: ok (${files.size} programs)`);
    if (!run) return 0;
    let failures = 0;
    for (const [file, program] of files) {
      if (!program.run) {
        console.log(`${markdown}:${program.line} not run (no-run)`);
        continue;
      }
      const result = await deno(["run", "--allow-all", "--config", config, file]).catch(
        (error: Error) => ({
          code: -1,
          text: `did not exit within ${RUN_TIMEOUT_MS} ms: ${error}`,
        }),
      );
      if (result.code === 0) {
        console.log(`${markdown}:${program.line} ran: ok`);
        continue;
      }
      failures++;
      console.log(`${markdown}:${program.line} ran: FAILED (exit ${result.code})`);
      console.log(toMarkdownLines(result.text, files, markdown));
    }
    if (failures > 0) {
      console.log(`${markdown}: ${failures} block(s) failed to run`);
      return 1;
    }
    console.log(`${markdown}: every block type-checks and every runnable block runs`);
    return 0;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));

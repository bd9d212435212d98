/**
 * Finds the TypeScript blocks of a Markdown file and turns them into
 * programs, following the snippet markers described in `check.ts`.
 *
 * @module
 */

/** What a `<!-- snippet: ... -->` marker may say about the block under it. */
export type SnippetFlag = "no-run" | "continues" | "fragment";

const FLAGS: readonly SnippetFlag[] = ["no-run", "continues", "fragment"];

/** One fenced `ts` block. */
export interface Snippet {
  /** Markdown line (from 1) of the block's first code line. */
  readonly line: number;
  /** The code, without the fences. */
  readonly code: string;
  /** Flags of the marker above the block; empty without one. */
  readonly flags: ReadonlySet<SnippetFlag>;
}

/** A program to check: one block, or a block joined to those it continues. */
export interface SnippetProgram {
  /** Markdown line of the first code line of its last block. */
  readonly line: number;
  /** The code of its blocks, in order. */
  readonly code: string;
  /** Markdown line of each line of `code`. */
  readonly lines: readonly number[];
  /** False when one of its blocks is marked `no-run`. */
  readonly run: boolean;
}

const FENCE = /^(\s*)(`{3,}|~{3,})\s*([\w+-]*)/;
const MARKER = /^\s*<!--\s*snippet:(.*?)-->\s*$/;
const TS_LANGUAGES = new Set(["ts", "typescript"]);

function parseFlags(text: string, where: string): Set<SnippetFlag> {
  const flags = new Set<SnippetFlag>();
  for (const word of text.split(/[\s,]+/).filter(Boolean)) {
    if (!FLAGS.includes(word as SnippetFlag)) {
      throw new Error(`${where}: unknown snippet flag "${word}" (known: ${FLAGS.join(", ")})`);
    }
    flags.add(word as SnippetFlag);
  }
  if (flags.size === 0) throw new Error(`${where}: a snippet marker needs a flag`);
  if (flags.has("fragment") && flags.size > 1) {
    throw new Error(`${where}: "fragment" is never checked, so it takes no other flag`);
  }
  return flags;
}

/**
 * Every `ts` (or `typescript`) block of `markdown`, with the flags of the
 * marker on the last non-blank line above it. A marker that is not followed
 * by a `ts` block is an error, so no marker is silently ignored.
 */
export function extractSnippets(markdown: string, file = "README.md"): Snippet[] {
  const lines = markdown.split(/\r?\n/);
  const snippets: Snippet[] = [];
  let marker: { flags: Set<SnippetFlag>; line: number } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i];
    const markerMatch = MARKER.exec(text);
    if (markerMatch) {
      if (marker) throw new Error(`${file}:${marker.line}: snippet marker without a ts block`);
      marker = { flags: parseFlags(markerMatch[1], `${file}:${i + 1}`), line: i + 1 };
      continue;
    }
    const fence = FENCE.exec(text);
    if (!fence) {
      if (marker && text.trim() !== "") {
        throw new Error(`${file}:${marker.line}: snippet marker without a ts block`);
      }
      continue;
    }
    const close = lines.findIndex((candidate, j) =>
      j > i && candidate.trim().startsWith(fence[2]) && candidate.trim().replace(/[`~]/g, "") === ""
    );
    if (close === -1) throw new Error(`${file}:${i + 1}: code block is never closed`);
    const isTs = TS_LANGUAGES.has(fence[3].toLowerCase());
    if (marker && !isTs) {
      throw new Error(`${file}:${marker.line}: snippet marker above a "${fence[3]}" block`);
    }
    if (isTs) {
      const code = lines.slice(i + 1, close).join("\n");
      snippets.push({ line: i + 2, code, flags: marker?.flags ?? new Set() });
    }
    marker = undefined;
    i = close;
  }
  if (marker) throw new Error(`${file}:${marker.line}: snippet marker without a ts block`);
  return snippets;
}

function blockLines(snippet: Snippet): number[] {
  return snippet.code.split("\n").map((_, k) => snippet.line + k);
}

/**
 * The programs to check: one per block that is not a `fragment`; a block
 * marked `continues` is joined to the program of the block before it.
 */
export function snippetPrograms(
  snippets: readonly Snippet[],
  file = "README.md",
): SnippetProgram[] {
  const programs: SnippetProgram[] = [];
  let previous: SnippetProgram | undefined;
  let previousWasFragment = false;
  for (const snippet of snippets) {
    const where = `${file}:${snippet.line}`;
    if (snippet.flags.has("fragment")) {
      previous = undefined;
      previousWasFragment = true;
      continue;
    }
    const run = !snippet.flags.has("no-run");
    let program: SnippetProgram;
    if (snippet.flags.has("continues")) {
      if (previous === undefined) {
        throw new Error(
          `${where}: "continues" needs a checked ts block before it${
            previousWasFragment ? ", not a fragment" : ""
          }`,
        );
      }
      program = {
        line: snippet.line,
        code: `${previous.code}\n${snippet.code}`,
        lines: [...previous.lines, ...blockLines(snippet)],
        run: previous.run && run,
      };
    } else {
      program = { line: snippet.line, code: snippet.code, lines: blockLines(snippet), run };
    }
    programs.push(program);
    previous = program;
    previousWasFragment = false;
  }
  return programs;
}

import assert from "node:assert/strict";
import { extractSnippets, snippetPrograms } from "../scripts/readme_snippets/extract.ts";

const checker = new URL("../scripts/readme_snippets/check.ts", import.meta.url).pathname;

async function check(args: string[]): Promise<{ code: number; output: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", checker, ...args],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code, output: decoder.decode(stdout) + decoder.decode(stderr) };
}

async function withMarkdown<T>(text: string, use: (path: string) => Promise<T>): Promise<T> {
  const path = await Deno.makeTempFile({ suffix: ".md" });
  try {
    await Deno.writeTextFile(path, text);
    return await use(path);
  } finally {
    await Deno.remove(path);
  }
}

const fence = "```";

Deno.test("README: every ts block type-checks and every runnable one runs", async () => {
  const { code, output } = await check([]);
  assert.equal(code, 0, output);
  assert.match(output, /every block type-checks and every runnable block runs/);
});

Deno.test("README checker: a block that fails its type check or its run fails, naming its line", async () => {
  const markdown = [
    "# t",
    "",
    `${fence}ts`,
    'import { defineEvent } from "@opensecflow/eventbus";',
    'const n: number = "one";',
    `${fence}`,
  ].join("\n");
  const typed = await withMarkdown(markdown, (path) => check([path]));
  assert.equal(typed.code, 1, typed.output);
  assert.match(typed.output, /TS2322.*\n.*\n.*\n\s+at .*\.md:5:7/);

  const throwing = [
    `${fence}ts`,
    'import { z } from "zod";',
    'import { defineEvent } from "@opensecflow/eventbus";',
    'const E = defineEvent({ type: "t", source: "/s", data: z.object({ n: z.number() }) });',
    'new E({ data: { n: "x" } as never });',
    `${fence}`,
  ].join("\n");
  const ran = await withMarkdown(throwing, (path) => check([path]));
  assert.equal(ran.code, 1, ran.output);
  assert.match(ran.output, /\.md:2 ran: FAILED/);
  assert.match(ran.output, /data\.n/);
});

Deno.test("README checker: markers say what is run, joined or skipped", () => {
  const markdown = [
    `${fence}ts`,
    "const a = 1;",
    `${fence}`,
    "",
    "<!-- snippet: continues no-run -->",
    "",
    `${fence}ts`,
    "console.log(a);",
    `${fence}`,
    "<!-- snippet: fragment -->",
    `${fence}typescript`,
    "bus.publish(event);",
    `${fence}`,
    `${fence}sh`,
    "deno task test",
    `${fence}`,
  ].join("\n");
  const snippets = extractSnippets(markdown);
  assert.deepEqual(snippets.map((s) => [s.line, [...s.flags]]), [
    [2, []],
    [8, ["continues", "no-run"]],
    [12, ["fragment"]],
  ]);
  const programs = snippetPrograms(snippets);
  assert.deepEqual(programs, [
    { line: 2, code: "const a = 1;", lines: [2], run: true },
    { line: 8, code: "const a = 1;\nconsole.log(a);", lines: [2, 8], run: false },
  ]);
});

Deno.test("README checker: a misplaced marker or an unknown flag is an error", () => {
  assert.throws(
    () => extractSnippets(`<!-- snippet: no-rnu -->\n${fence}ts\nx;\n${fence}`),
    /README\.md:1: unknown snippet flag "no-rnu"/,
  );
  assert.throws(
    () => extractSnippets(`<!-- snippet: no-run -->\ntext\n${fence}ts\nx;\n${fence}`),
    /README\.md:1: snippet marker without a ts block/,
  );
  assert.throws(
    () => extractSnippets(`<!-- snippet: no-run -->\n${fence}sh\nls\n${fence}`),
    /README\.md:1: snippet marker above a "sh" block/,
  );
  assert.throws(
    () => extractSnippets(`<!-- snippet: fragment no-run -->\n${fence}ts\nx;\n${fence}`),
    /"fragment" is never checked/,
  );
  assert.throws(
    () => snippetPrograms(extractSnippets(`<!-- snippet: continues -->\n${fence}ts\nx;\n${fence}`)),
    /README\.md:3: "continues" needs a checked ts block before it/,
  );
  assert.throws(
    () => extractSnippets(`${fence}ts\nx;\n`),
    /README\.md:1: code block is never closed/,
  );
});

import assert from "node:assert/strict";

const here = new URL("./", import.meta.url).pathname;
const legacyConfig = `${here}deno.json`;
const rootConfig = new URL("../../deno.json", import.meta.url).pathname;

async function deno(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const command = new Deno.Command(Deno.execPath(), {
    args,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  });
  const { code, stdout, stderr } = await command.output();
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

Deno.test("legacy decorators: static methods compiled with experimentalDecorators subscribe; instance methods are refused at run time", async () => {
  const run = await deno(["run", "--check", "-A", "--config", legacyConfig, `${here}app.ts`]);
  assert.equal(run.code, 0, `exit code ${run.code}\n${run.stderr}`);
  const lines = run.stdout.trim().split("\n");
  assert.deepEqual(lines.slice(2), [
    'handlers: [{"name":"Pings.onPing","scope":"process"}]',
    "eventHandler static: pings got 7",
    "direct call: eventHandler static: pings got 8",
    "subscriber static: jobs ran J-1",
    "classes: Pings, Jobs",
  ]);
  assert.match(
    lines[0],
    /^instance eventHandler refused: Billing\.charge: eventHandler\(\) cannot subscribe an instance method with legacy decorators .*Make the method static/,
  );
  assert.match(
    lines[1],
    /^instance subscriber refused: Worker\.work: broker\.subscriber\(\) cannot subscribe an instance method with legacy decorators/,
  );
});

Deno.test("legacy decorators: an instance method is a type error under experimentalDecorators, valid under TC39", async () => {
  const file = `${here}refused.ts`;
  const source = await Deno.readTextFile(file);
  const decoratorLines = source.split("\n")
    .map((line, i) => /^\s*@(eventHandler|broker\.subscriber)\(/.test(line) ? i + 1 : 0)
    .filter((line) => line > 0);
  assert.equal(decoratorLines.length, 2);

  const legacy = await deno(["check", "--config", legacyConfig, file]);
  assert.notEqual(legacy.code, 0, "refused.ts must not type-check with legacy decorators");
  const output = legacy.stdout + legacy.stderr;
  const errors = [...output.matchAll(/refused\.ts:(\d+):\d+/g)].map((m) => Number(m[1]));
  assert.deepEqual(errors, decoratorLines, output);
  assert.equal(output.match(/TS1241 \[ERROR\]/g)?.length, 2, output);

  const tc39 = await deno(["check", "--config", rootConfig, file]);
  assert.equal(tc39.code, 0, tc39.stdout + tc39.stderr);
});

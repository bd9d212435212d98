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

Deno.test("legacy decorators: static methods compiled with experimentalDecorators subscribe; properties are refused at run time", async () => {
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
    /^property eventHandler refused: Billing\.charge: eventHandler\(\) decorates methods only/,
  );
  assert.match(
    lines[1],
    /^property subscriber refused: Worker\.work: broker\.subscriber\(\) decorates methods only/,
  );
});

Deno.test("legacy decorators: instance methods compiled with experimentalDecorators type-check and are subscribed by subscribeInstance (instances.ts)", async () => {
  const run = await deno(["test", "-A", "--config", legacyConfig, `${here}instances.ts`]);
  const output = run.stdout + run.stderr;
  assert.equal(run.code, 0, output);
  assert.match(output, /ok \| 9 passed \| 0 failed/, output);
});

Deno.test("legacy decorators: a property, an accessor and a handler of the wrong event are type errors under both protocols", async () => {
  const file = `${here}refused.ts`;
  const lines = (await Deno.readTextFile(file)).split("\n");
  const decorators = lines
    .map((line, i) => /^\s*@(eventHandler|broker\.subscriber)\(/.test(line) ? i : -1)
    .filter((i) => i >= 0);
  assert.equal(decorators.length, 3);
  // Each refused decorator carries the directive, so the file type-checks only while it is refused.
  for (const i of decorators) {
    assert.match(lines[i - 1], /^\s*\/\/ @ts-expect-error /, `refused.ts:${i + 1}`);
  }
  for (const config of [legacyConfig, rootConfig]) {
    const check = await deno(["check", "--config", config, file]);
    assert.equal(check.code, 0, `${config}\n${check.stdout}${check.stderr}`);
  }
});

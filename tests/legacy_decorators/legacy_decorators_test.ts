import assert from "node:assert/strict";

const here = new URL("./", import.meta.url).pathname;

/** Type-checks and runs app.ts with this folder's deno.json (experimentalDecorators on). */
async function runLegacyApp(): Promise<
  { code: number; stdout: string; stderr: string }
> {
  const command = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--check",
      "-A",
      "--config",
      `${here}deno.json`,
      `${here}app.ts`,
    ],
    stdout: "piped",
    stderr: "piped",
  });
  const { code, stdout, stderr } = await command.output();
  const decoder = new TextDecoder();
  return {
    code,
    stdout: decoder.decode(stdout),
    stderr: decoder.decode(stderr),
  };
}

Deno.test("legacy decorators: a file compiled with experimentalDecorators type-checks and runs", async () => {
  const run = await runLegacyApp();
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

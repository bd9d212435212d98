/**
 * Runs an example as a subprocess, the way a reader would, and returns its
 * exit code and output.
 *
 * @module
 */

/** Exit code and output of one example run. */
export interface ExampleRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `deno run -A examples/<file>` with extra args and environment. */
export async function runExample(
  file: string,
  options: { args?: string[]; env?: Record<string, string>; check?: boolean } = {},
): Promise<ExampleRun> {
  const path = new URL(`../examples/${file}`, import.meta.url).pathname;
  const command = new Deno.Command(Deno.execPath(), {
    args: ["run", ...(options.check ? ["--check"] : []), "-A", path, ...(options.args ?? [])],
    env: options.env,
    stdout: "piped",
    stderr: "piped",
  });
  const { code, stdout, stderr } = await command.output();
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

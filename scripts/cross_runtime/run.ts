/**
 * Cross-runtime check: the in-memory examples and the HTTP binding run
 * unchanged on Node (>= 20) and Bun, with the same output as on Deno.
 *
 * Each target is bundled once by `deno bundle` (zod, the cloudevents SDK and
 * `@hono/node-server` resolved from npm and inlined), then run by Deno from
 * source, and by Node and Bun from the bundle; exit codes must be 0 and the outputs equal after
 * masking ids and timestamps. Bun comes from the npm registry (package `bun`,
 * pinned below) and is installed into the work directory, which is ignored by
 * git. Needs only `deno`, `node` and `npm` on PATH.
 *
 * Run: deno run -A scripts/cross_runtime/run.ts [extra entry files...]
 * Env: CROSS_RUNTIME_DIR (default .cross_runtime/ in the repository)
 *
 * @module
 */

const BUN_VERSION = "1.4.5";
const MIN_NODE_MAJOR = 20;
const RUN_TIMEOUT_MS = 120_000;
/** Installing Bun downloads its binary (tens of MB) from the npm registry. */
const INSTALL_TIMEOUT_MS = 600_000;

const root = new URL("../../", import.meta.url).pathname;
const work = Deno.env.get("CROSS_RUNTIME_DIR") ?? `${root}.cross_runtime`;
const defaultTargets = [
  "examples/01_basic_pubsub.ts",
  "examples/08_eventbus_basic.ts",
  "examples/09_eventbus_decorator.ts",
  "scripts/cross_runtime/http_smoke.ts",
];
const targets = Deno.args.length > 0 ? [...defaultTargets, ...Deno.args] : defaultTargets;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(command: string, args: string[], timeoutMs = RUN_TIMEOUT_MS): Promise<Result> {
  const output = await new Deno.Command(command, {
    args,
    cwd: root,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

function fail(message: string): never {
  console.error(`cross-runtime: ${message}`);
  Deno.exit(1);
}

async function nodeVersion(): Promise<string> {
  const result = await run("node", ["--version"]).catch(() => fail("node is not on PATH"));
  const version = result.stdout.trim();
  const major = Number(version.replace(/^v/, "").split(".")[0]);
  if (!(major >= MIN_NODE_MAJOR)) fail(`node ${version} is too old; ${MIN_NODE_MAJOR}+ is needed`);
  return version;
}

async function installBun(): Promise<string> {
  const bun = `${work}/node_modules/.bin/bun`;
  const installed = await run(bun, ["--version"]).catch(() => undefined);
  if (installed?.code === 0 && installed.stdout.trim() === BUN_VERSION) return bun;
  console.log(`installing bun@${BUN_VERSION} from npm into ${work}`);
  await Deno.mkdir(work, { recursive: true });
  const npm = await run("npm", [
    "install",
    "--prefix",
    work,
    "--no-save",
    "--no-package-lock",
    "--no-audit",
    "--no-fund",
    `bun@${BUN_VERSION}`,
  ], INSTALL_TIMEOUT_MS);
  if (npm.code !== 0) fail(`npm install bun failed:\n${npm.stderr}`);
  const check = await run(bun, ["--version"]);
  if (check.code !== 0) fail(`bun does not run after install:\n${check.stderr}`);
  return bun;
}

/** Masks what legitimately differs between two runs: ids, timestamps, ports. */
function normalize(text: string): string {
  return text
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, "<uuid>")
    .replace(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})/g, "<time>")
    .replace(/127\.0\.0\.1:\d+/g, "127.0.0.1:<port>")
    .replace(/\r\n/g, "\n")
    .trimEnd();
}

async function bundle(entry: string): Promise<string> {
  const name = entry.replace(/^.*\//, "").replace(/\.ts$/, "");
  const output = `${work}/dist/${name}.mjs`;
  const result = await run(Deno.execPath(), [
    "bundle",
    "--quiet",
    "--platform=node",
    "--output",
    output,
    entry,
  ]);
  if (result.code !== 0) fail(`deno bundle ${entry} failed:\n${result.stderr}`);
  return output;
}

const node = await nodeVersion();
const bun = await installBun();
const bunVersion = (await run(bun, ["--version"])).stdout.trim();
console.log(`deno ${Deno.version.deno}, node ${node}, bun ${bunVersion}`);

let failures = 0;
for (const entry of targets) {
  const file = await bundle(entry);
  const reference = await run(Deno.execPath(), ["run", "-A", entry]);
  if (reference.code !== 0) {
    failures++;
    console.log(`FAIL ${entry} on deno: exit ${reference.code}\n${reference.stderr}`);
    continue;
  }
  for (const [runtime, command] of [["node", "node"], ["bun", bun]] as const) {
    const result = await run(command, [file]);
    const same = normalize(result.stdout) === normalize(reference.stdout);
    if (result.code === 0 && same) {
      console.log(
        `ok   ${entry} on ${runtime} (${result.stdout.trim().split("\n").length} lines as on deno)`,
      );
      continue;
    }
    failures++;
    console.log(
      `FAIL ${entry} on ${runtime}: exit ${result.code}${same ? "" : ", output differs from deno"}`,
    );
    console.log(`--- deno\n${reference.stdout}--- ${runtime}\n${result.stdout}${result.stderr}`);
  }
}
if (failures > 0) fail(`${failures} run(s) failed`);
console.log(`cross-runtime: all ${targets.length} targets behave the same on deno, node and bun`);

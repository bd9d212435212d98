import assert from "node:assert/strict";

/** Runs an example as its own process and returns its exit code and output. */
async function runExample(file: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const url = new URL(`../examples/${file}`, import.meta.url);
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", url.pathname],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

const expectations: Record<string, string[]> = {
  "01_basic_pubsub.ts": [
    'Received order event: {"orderId":"ORD-001","amount":99.9}',
    "Broker stopped; consumed 1 message(s)",
  ],
  "02_multiple_subscribers.ts": [
    "[Email] Sending to user@example.com",
    "[SMS] Sending to 138xxxx",
    "[Log] Notification: Hello",
    "Subscribers: sendEmail, sendSms, logNotification",
  ],
  "03_publisher_decorator.ts": [
    "Processing task: T-001 (build)",
    'Got result: {"taskId":"T-001","status":"done"}',
    'Got result: {"taskId":"T-002","status":"done"}',
    'Direct call returned: {"taskId":"T-002","status":"done"}',
    "Published 3 message(s) in total",
  ],
  "04_context_manager.ts": [
    "Chat message: Hello World",
    "Broker stopped automatically (state: stopped)",
  ],
  "05_statistics.ts": [
    "Published:   5",
    "Consumed:    4",
    "Errors:      1",
    "Dropped:     0",
    "Channels:    1",
    "State:       stopped",
  ],
  "06_rpc_pattern.ts": [
    "[Client] Got response: 8",
    "[Client] Got response: 42",
    "[Client] Got 3 responses: 1, 3, 5",
    '[Client] Timed out: no reply on channel "calculator.slow" within 50 ms',
    '[Client] no subscriber on channel "calculator.divide"',
    "Pending requests after stop: 0",
  ],
};

for (const [file, lines] of Object.entries(expectations)) {
  Deno.test(`example ${file} runs and prints what it shows`, async () => {
    const { code, stdout, stderr } = await runExample(file);
    assert.equal(code, 0, `exit code ${code}\n${stderr}`);
    for (const line of lines) assert.ok(stdout.includes(line), `missing "${line}" in:\n${stdout}`);
    // Only dependency downloads of a cold cache may appear on stderr.
    const noise = stderr.split("\n").filter((l) => l.trim() !== "" && !l.includes("Download"));
    assert.deepEqual(noise, [], "the example wrote to stderr");
  });
}

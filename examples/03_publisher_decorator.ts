/**
 * The publisher decorator: a handler's return value is published to another
 * channel. The wrapped function also works when called directly.
 *
 * Run: deno run -A examples/03_publisher_decorator.ts
 */
import { MemoryBroker } from "../mod.ts";

interface Task {
  id: string;
  name: string;
}
interface TaskResult {
  taskId: string;
  status: string;
}

console.log("=== Publisher decorator ===");

const broker = new MemoryBroker();

broker.subscriber("results")(function resultHandler(result: TaskResult) {
  console.log(`  Got result: ${JSON.stringify(result)}`);
});

// Subscribed to "tasks"; whatever it returns goes to "results".
const processTask = broker.subscriber("tasks")(
  broker.publisher("results")(function processTask(task: Task): TaskResult {
    console.log(`  Processing task: ${task.id} (${task.name})`);
    return { taskId: task.id, status: "done" };
  }),
);

await broker.start();
await broker.publish({ id: "T-001", name: "build" }, "tasks");
// Called directly, the result is published too.
const direct = await processTask({ id: "T-002", name: "test" });
console.log(`  Direct call returned: ${JSON.stringify(direct)}`);
await broker.stop();
console.log(`  Published ${broker.stats().published} message(s) in total`);

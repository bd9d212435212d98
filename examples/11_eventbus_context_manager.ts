/**
 * `await using`: the bus stops (and drains) by itself when the scope ends,
 * even when the block throws.
 *
 * Run: deno run -A examples/11_eventbus_context_manager.ts
 *
 * @module
 */
import { z } from "zod";
import { defineEvent, EventBus, EventScope } from "../mod.ts";

const TaskCompleted = defineEvent({
  type: "task.completed",
  scope: EventScope.PROCESS,
  source: "/tasks",
  data: z.object({ taskId: z.string(), durationMs: z.number().nonnegative() }),
});

console.log("=== EventBus with await using ===");

let bus: EventBus;
{
  await using scoped = new EventBus();
  bus = scoped;
  scoped.subscribe(TaskCompleted, function report(event) {
    console.log(`task ${event.data.taskId} took ${event.data.durationMs} ms`);
  });
  await scoped.start();
  await scoped.publish(new TaskCompleted({ data: { taskId: "T-1", durationMs: 120 } }));
  await scoped.publish(new TaskCompleted({ data: { taskId: "T-2", durationMs: 75 } }));
  console.log("leaving the scope");
}
console.log(`after the scope the bus is ${bus.state}`);

/**
 * The logger shape the library writes to: anything console-compatible.
 *
 * @module
 */

/**
 * A console-compatible logger. `console` itself fits, and so do pino, winston
 * and most structured loggers through a thin adapter.
 *
 * @example
 * ```ts
 * import { EventBus, type Logger } from "@opensecflow/eventbus";
 * const lines: string[] = [];
 * const logger: Logger = {
 *   debug: () => {},
 *   info: (msg) => lines.push(String(msg)),
 *   warn: (msg) => lines.push(String(msg)),
 *   error: (msg) => lines.push(String(msg)),
 * };
 * const bus = new EventBus({ logger });
 * ```
 */
export interface Logger {
  /** Detail useful while debugging. */
  debug(message: string, ...details: unknown[]): void;
  /** Lifecycle notes: started, stopped. */
  info(message: string, ...details: unknown[]): void;
  /** Something was lost or retried. */
  warn(message: string, ...details: unknown[]): void;
  /** A handler or the transport failed. */
  error(message: string, ...details: unknown[]): void;
}

function ignore(): void {}

/**
 * The default logger: warnings and errors go to the console, debug and info
 * are dropped so a library never chats on its own.
 *
 * @example
 * ```ts
 * import { defaultLogger } from "@opensecflow/eventbus";
 * defaultLogger.info("not printed");
 * ```
 */
export const defaultLogger: Logger = {
  debug: ignore,
  info: ignore,
  warn: (message, ...details) => console.warn(message, ...details),
  error: (message, ...details) => console.error(message, ...details),
};

/**
 * A logger that discards everything; handy in tests.
 *
 * @example
 * ```ts
 * import { MemoryBroker, silentLogger } from "@opensecflow/eventbus";
 * const broker = new MemoryBroker({ logger: silentLogger });
 * ```
 */
export const silentLogger: Logger = {
  debug: ignore,
  info: ignore,
  warn: ignore,
  error: ignore,
};

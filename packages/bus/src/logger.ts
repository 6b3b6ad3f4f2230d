import { pino, type DestinationStream, type Logger, type LoggerOptions } from "pino";

export type { Logger } from "pino";

/**
 * The logger every stackbus process starts from. Level from `STACKBUS_LOG_LEVEL`
 * (default `info`); JSON lines on stderr so stdout stays free for command output.
 * Bind context with `logger.child({ host, runId, phase, hook })`. `destination` replaces
 * stderr (e.g. a prettifier for a terminal).
 */
export function createLogger(service: string, options: LoggerOptions = {}, destination?: DestinationStream): Logger {
  return pino(
    {
      name: service,
      level: process.env["STACKBUS_LOG_LEVEL"] ?? "info",
      base: { service, pid: process.pid },
      ...options,
    },
    destination ?? pino.destination({ dest: 2, sync: false }),
  );
}

/** A logger that writes nothing, for callers that do not want logs. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}

import type { Logger } from "./logger.js";

/**
 * Runs `stop` once on the first SIGINT or SIGTERM, then exits with `code` (0 by default).
 * A second signal exits at once, and so does a `stop` that has not finished within
 * `deadlineMs`: a service always ends within seconds of being told to.
 */
export function onShutdown(log: Logger, stop: (signal: string) => Promise<void>, code = 0, deadlineMs = 10_000): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(130);
    stopping = true;
    log.info({ signal }, "stopping");
    setTimeout(() => {
      log.warn({ deadlineMs }, "still stopping after the deadline; exiting now");
      log.flush?.();
      process.exit(code);
    }, deadlineMs).unref();
    stop(signal)
      .catch((err: unknown) => log.error({ err }, "error while stopping"))
      .finally(() => {
        log.flush?.();
        process.exit(code);
      });
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
}

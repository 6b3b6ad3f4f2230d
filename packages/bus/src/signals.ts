import type { Logger } from "./logger.js";

/**
 * Runs `stop` once on the first SIGINT or SIGTERM, then exits with `code` (0 by default).
 * A second signal exits at once.
 */
export function onShutdown(log: Logger, stop: (signal: string) => Promise<void>, code = 0): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(130);
    stopping = true;
    log.info({ signal }, "stopping");
    stop(signal)
      .catch((err: unknown) => log.error({ err }, "error while stopping"))
      .finally(() => {
        log.flush?.();
        process.exit(code);
      });
  };
  process.once("SIGINT", handler);
  process.once("SIGTERM", handler);
}

#!/usr/bin/env node
import { parseArgs } from "node:util";
import { Bus, createLogger, onShutdown } from "@stackbus/bus";
import { startFetcherService } from "./service.js";

const log = createLogger("stackbus-fetcher");
const { values } = parseArgs({
  options: { "cache-dir": { type: "string" } },
  strict: true,
});
const cacheDir = values["cache-dir"] ?? process.env["STACKBUS_FETCHER_CACHE"] ?? "./.stackbus/fetcher-cache";

try {
  const bus = await Bus.connect({ servers: process.env["NATS_URL"], name: "stackbus-fetcher", waitForServer: true, logger: log });
  const service = await startFetcherService({ bus, logger: log, cacheDir });
  onShutdown(log, async () => {
    await service.stop();
    await bus.drain();
  });
} catch (err) {
  log.fatal({ err }, "plugin fetcher failed to start");
  log.flush();
  process.exitCode = 1;
}

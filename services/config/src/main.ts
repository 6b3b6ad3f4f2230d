import { Bus, createLogger, defaultNatsUrl, onShutdown } from "@stackbus/bus";
import { startConfigService } from "./service.js";

const logger = createLogger("config");
const bus = await Bus.connect({ servers: process.env["NATS_URL"] ?? defaultNatsUrl(), name: "stackbus-config", waitForServer: true, logger });
const service = await startConfigService({ bus, logger });
onShutdown(logger, async () => {
  await service.stop();
  await bus.drain();
});

import type { Bus, Logger } from "@stackbus/bus";
import { startConfigService } from "@stackbus/config-service";
import { startCoordinator } from "@stackbus/coordinator";
import { startFetcherService } from "@stackbus/fetcher-service";

/** What `stackbus serve NAME` starts. */
export interface ServiceContext {
  bus: Bus;
  logger: Logger;
  cacheDir?: string | undefined;
}

export const SERVICES = {
  config: (ctx: ServiceContext) => startConfigService({ bus: ctx.bus, logger: ctx.logger }),
  fetcher: (ctx: ServiceContext) => startFetcherService({ bus: ctx.bus, logger: ctx.logger, cacheDir: ctx.cacheDir ?? "./.stackbus/fetcher-cache" }),
  coordinator: (ctx: ServiceContext) => startCoordinator({ bus: ctx.bus, logger: ctx.logger }),
} satisfies Record<string, (ctx: ServiceContext) => Promise<{ stop(): Promise<void> }>>;

export type ServiceName = keyof typeof SERVICES;

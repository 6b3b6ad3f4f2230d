import { commandSignerFromFile, type Bus, type Logger } from "@stackbus/bus";

/**
 * What `stackbus serve NAME` starts. Each service's code is loaded only by the process
 * that runs it, so an agent or a watcher does not carry the fetcher's git client.
 */
export interface ServiceContext {
  bus: Bus;
  logger: Logger;
  cacheDir?: string | undefined;
  /** coordinator: the nkey seed file it signs phase commands and cancels with. */
  signingKey?: string | undefined;
}

export const SERVICES = {
  config: async (ctx: ServiceContext) => (await import("@stackbus/config-service")).startConfigService({ bus: ctx.bus, logger: ctx.logger }),
  fetcher: async (ctx: ServiceContext) =>
    (await import("@stackbus/fetcher-service")).startFetcherService({ bus: ctx.bus, logger: ctx.logger, cacheDir: ctx.cacheDir ?? "./.stackbus/fetcher-cache" }),
  coordinator: async (ctx: ServiceContext) =>
    (await import("@stackbus/coordinator")).startCoordinator({ bus: ctx.bus, logger: ctx.logger, signer: ctx.signingKey ? commandSignerFromFile(ctx.signingKey) : undefined }),
} satisfies Record<string, (ctx: ServiceContext) => Promise<{ stop(): Promise<void> }>>;

export type ServiceName = keyof typeof SERVICES;

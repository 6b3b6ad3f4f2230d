import { rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Bus, Logger } from "@stackbus/bus";
import {
  BUCKETS,
  OBJECT_STORES,
  PluginPinReplySchema,
  PluginPinRequestSchema,
  PluginResolveReplySchema,
  PluginResolveRequestSchema,
  QUEUES,
  StackbusError,
  ErrorCode,
  parseSubject,
  validateName,
  wildcards,
} from "@stackbus/protocol";
import { z } from "zod";
import { GitCache } from "./gitcache.js";
import { LabAccess } from "./lab.js";
import { PluginResolver } from "./resolver.js";

/**
 * The resolve request as the service receives it: the plugin name is checked by the
 * resolver rather than the schema, so a bad name is answered with INVALID_NAME naming the
 * plugin and its URL.
 */
const IncomingResolveSchema = PluginResolveRequestSchema.extend({ name: z.string().min(1).max(256) });

export interface FetcherServiceOptions {
  bus: Bus;
  logger: Logger;
  /** Where source clones and scratch files live. One directory per fetcher instance. */
  cacheDir: string;
}

export interface FetcherService {
  /** Stops answering, then waits for resolves in flight. */
  stop(): Promise<void>;
  /** Clones (first fetch of a source) and later fetches made so far. */
  stats(): { clones: number; fetches: number };
}

/**
 * Starts the plugin fetcher: answers `plugins.resolve.<host>` for every lab (queue group
 * `QUEUES.fetcher`, so several instances share the work), for the lab's hosts and the
 * plugins the lab registers only, cloning each source once into `cacheDir` and serving
 * archives from the `OBJECT_STORES.plugins` object store.
 */
export async function startFetcherService(options: FetcherServiceOptions): Promise<FetcherService> {
  const { bus } = options;
  const log = options.logger.child({ component: "fetcher" });
  const cacheDir = resolve(options.cacheDir);
  await rm(join(cacheDir, "tmp"), { recursive: true, force: true });
  const store = await bus.objectStore(OBJECT_STORES.plugins);
  const index = await bus.kv(BUCKETS.pluginIndex);
  const cache = new GitCache({ dir: cacheDir, logger: log });
  const access = new LabAccess({ bus, logger: log });
  const resolver = new PluginResolver({ cache, store, index, logger: log, access: (lab, revision, fresh) => access.get(lab, revision, fresh) });

  const sub = bus.serve(
    wildcards.pluginsResolve,
    IncomingResolveSchema,
    PluginResolveReplySchema,
    async (req, subject) => {
      // Who asks comes from the subject (sb.<lab>.plugins.resolve.<host>), which the generated
      // permissions let each agent publish only for itself; never from the payload.
      const parsed = parseSubject(subject);
      const host = parsed?.tokens[2];
      if (parsed === undefined || host === undefined) {
        throw new StackbusError(ErrorCode.BadMessage, `not a plugins.resolve subject: ${subject}`, { subject });
      }
      return resolver.resolve(validateName("lab", parsed.lab), validateName("host", host), req);
    },
    { queue: QUEUES.fetcher },
  );
  const pins = bus.serve(
    wildcards.pluginsPin,
    PluginPinRequestSchema,
    PluginPinReplySchema,
    async (req, subject) => resolver.pinAttempt(validateName("lab", parseSubject(subject)?.lab ?? ""), req),
    { queue: QUEUES.fetcher },
  );
  await bus.flush();
  log.info({ cacheDir }, "plugin fetcher ready");

  let stopped = false;
  return {
    async stop() {
      if (stopped) return;
      stopped = true;
      await Promise.all([sub.drain().catch(() => undefined), pins.drain().catch(() => undefined)]);
      await resolver.idle();
      log.info("plugin fetcher stopped");
    },
    stats: () => ({ ...cache.counters }),
  };
}

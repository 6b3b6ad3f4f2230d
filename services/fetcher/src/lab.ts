import { z } from "zod";
import type { Bus, Logger } from "@stackbus/bus";
import { ErrorCode, LabPluginAccessSchema, StackbusError, subjects, type LabPluginAccess } from "@stackbus/protocol";
import { InFlight } from "./lock.js";

/** What the fetcher sends the config service: nothing but the lab, which is in the subject. */
export const LabPluginAccessRequestSchema = z.object({});

/**
 * The settings used when the config service does not answer: registration order, no
 * reclone, online, no mirrors, every transport allowed, no credentials.
 */
export const DEFAULT_LAB_ACCESS: LabPluginAccess = Object.freeze({
  order: "registration",
  reclone: false,
  offline: false,
  mirrors: [],
  allowSchemes: ["https", "http", "file", "path"],
  credentials: [],
}) as LabPluginAccess;

export interface LabAccessOptions {
  bus: Bus;
  logger: Logger;
  /** How long an answer is reused. @default 1000 */
  ttlMs?: number;
  /** How long to wait for the config service. @default 2000 */
  timeoutMs?: number;
}

/**
 * Asks the config service for a lab's plugin settings and credentials, reusing an
 * answer for a second so a burst of hosts asks once. When nothing answers (no config
 * service) the defaults apply. Credentials are kept in memory only and never logged.
 */
export class LabAccess {
  readonly #bus: Bus;
  readonly #log: Logger;
  readonly #ttlMs: number;
  readonly #timeoutMs: number;
  readonly #cache = new Map<string, { at: number; access: LabPluginAccess }>();
  readonly #inflight = new InFlight();
  readonly #warned = new Set<string>();

  constructor(options: LabAccessOptions) {
    this.#bus = options.bus;
    this.#log = options.logger;
    this.#ttlMs = options.ttlMs ?? 1_000;
    this.#timeoutMs = options.timeoutMs ?? 2_000;
  }

  async get(lab: string): Promise<LabPluginAccess> {
    const cached = this.#cache.get(lab);
    if (cached && Date.now() - cached.at < this.#ttlMs) return cached.access;
    return this.#inflight.run(lab, async () => {
      const access = await this.#ask(lab);
      this.#cache.set(lab, { at: Date.now(), access });
      return access;
    });
  }

  async #ask(lab: string): Promise<LabPluginAccess> {
    try {
      const access = await this.#bus.request(
        subjects.configPluginSettings(lab),
        LabPluginAccessRequestSchema,
        {},
        LabPluginAccessSchema,
        { timeoutMs: this.#timeoutMs },
      );
      this.#warned.delete(lab);
      return access;
    } catch (err) {
      const e = err instanceof StackbusError ? err : undefined;
      if (!this.#warned.has(lab)) {
        this.#warned.add(lab);
        const quiet = e?.code === ErrorCode.Unavailable;
        this.#log[quiet ? "info" : "warn"](
          { lab, code: e?.code ?? ErrorCode.Internal },
          `no plugin settings from the config service (${e?.message ?? String(err)}); using the defaults`,
        );
      }
      return DEFAULT_LAB_ACCESS;
    }
  }
}

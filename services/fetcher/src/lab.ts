import type { Bus, Logger } from "@stackbus/bus";
import {
  ErrorCode,
  LabPluginAccessRequestSchema,
  LabPluginAccessSchema,
  StackbusError,
  subjects,
  type LabPluginAccess,
} from "@stackbus/protocol";
import { InFlight } from "./lock.js";

export interface LabAccessOptions {
  bus: Bus;
  logger: Logger;
  /** How long an answer is reused. @default 1000 */
  ttlMs?: number;
  /** How long to wait for the config service. @default 2000 */
  timeoutMs?: number;
}

/**
 * Asks the config service for a lab's plugin settings, credentials, hosts and registered
 * plugins (at a revision, or the current one), reusing an answer for a second so a burst
 * of hosts asks once. When the config service does not answer, the last answer for that
 * lab and revision is used; with none, nothing is resolved for the lab (UNAVAILABLE, which
 * hosts ask again): the fetcher never fetches for a lab whose registrations it does not
 * know. Credentials are kept in memory only and never logged.
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

  /**
   * The lab's access at `revision` (the current one when absent). `fresh` asks the config
   * service even when an answer of the last second is at hand (a revision applied just now
   * may register a plugin the cached answer lacks).
   */
  async get(lab: string, revision?: number, fresh = false): Promise<LabPluginAccess> {
    const key = `${lab}#${revision ?? "current"}`;
    const cached = this.#cache.get(key);
    if (!fresh && cached && Date.now() - cached.at < this.#ttlMs) return cached.access;
    return this.#inflight.run(key, async () => {
      const access = await this.#ask(lab, revision, key);
      this.#cache.set(key, { at: Date.now(), access });
      return access;
    });
  }

  async #ask(lab: string, revision: number | undefined, key: string): Promise<LabPluginAccess> {
    try {
      const access = await this.#bus.request(
        subjects.configPluginSettings(lab),
        LabPluginAccessRequestSchema,
        revision === undefined ? {} : { revision },
        LabPluginAccessSchema,
        { timeoutMs: this.#timeoutMs },
      );
      this.#warned.delete(key);
      return access;
    } catch (err) {
      const e = err instanceof StackbusError ? err : undefined;
      const unanswered = e?.code === ErrorCode.Unavailable || e?.code === ErrorCode.Timeout;
      if (!unanswered) throw err;
      const last = this.#cache.get(key);
      const at = revision === undefined ? `lab ${JSON.stringify(lab)}` : `revision ${revision} of lab ${JSON.stringify(lab)}`;
      if (!this.#warned.has(key)) {
        this.#warned.add(key);
        this.#log.warn(
          { lab, revision, code: e.code },
          last ? `the config service did not answer for ${at} (${e.message}); using its last answer` : `the config service did not answer for ${at} (${e.message})`,
        );
      }
      if (last) return last.access;
      throw new StackbusError(
        ErrorCode.Unavailable,
        `cannot tell which plugins ${at} registers: the config service did not answer (${e.message}); nothing is fetched until it does`,
        { lab, ...(revision === undefined ? {} : { revision }) },
        { cause: err },
      );
    }
  }
}

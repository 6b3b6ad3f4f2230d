import { ConfigGetRequestSchema, ErrorCode, HostConfigSchema, StackbusError, subjects, toStackbusError } from "@stackbus/protocol";
import type { Bus, Logger } from "@stackbus/bus";

/** An agent started for a host its lab does not have: it exits (status 2) instead of waiting. */
export class UnknownHostError extends StackbusError<typeof ErrorCode.InvalidArgument> {
  override name = "UnknownHostError";
  constructor(host: string, detail: string) {
    super(
      ErrorCode.InvalidArgument,
      `cannot start the agent: ${detail}. Start it with the --host the lab names, or add host ${JSON.stringify(host)} to the manifest and apply it`,
      { host },
    );
  }
}

/**
 * Before an agent registers: asks the config service for this host's config. A lab that has
 * this host: go on. A lab applied without it: UnknownHostError (a mistyped --host does not
 * wait forever). A lab not applied yet: waits, warning once a minute, since the lab may be
 * applied after the agents start. No config service answering: goes on (the registry, which
 * the config service creates, then decides).
 */
export async function awaitLabHost(bus: Bus, lab: string, host: string, log: Logger, options: { retryMs?: number; signal?: AbortSignal } = {}): Promise<void> {
  const retryMs = options.retryMs ?? 5_000;
  let warnedAt = 0;
  for (;;) {
    try {
      await bus.request(subjects.configGet(lab, host), ConfigGetRequestSchema, {}, HostConfigSchema, { timeoutMs: 5_000 });
      if (warnedAt > 0) log.info({ lab, host }, "the lab has this host now; starting");
      return;
    } catch (err) {
      const e = toStackbusError(err);
      if (e.code === ErrorCode.NotFound && typeof e.data["host"] === "string") throw new UnknownHostError(host, e.message);
      if (e.code !== ErrorCode.NotFound) {
        // No config service to ask (yet): the registry decides whether this agent may start.
        log.warn({ lab, host, err: e.message }, "could not check that the lab has this host; starting anyway");
        return;
      }
      if (Date.now() - warnedAt >= 60_000) {
        log.warn({ lab, host }, `lab ${JSON.stringify(lab)} is not applied yet: waiting for \`stackbus lab apply\` (or start the agent with the right --lab)`);
        warnedAt = Date.now();
      }
    }
    if (options.signal?.aborted) throw new StackbusError(ErrorCode.Unavailable, "stopped while waiting for the lab");
    await new Promise((r) => setTimeout(r, retryMs));
  }
}

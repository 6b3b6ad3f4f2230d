import type { Bus, CommandSigner, Logger } from "@stackbus/bus";
import { ErrorCode, parseDuration, StackbusError, type Duration } from "@stackbus/protocol";

/** How long the coordinator waits for what it asks, and how often it looks again. */
export interface CoordinatorTimeouts {
  /** A run's start waits this long for the config service's lab revision. */
  config: Duration;
  /**
   * @deprecated Nothing waits on it: a step command is answered on its run's reply inbox,
   * and sent again (engine's RESEND_*) until the agent acknowledges it or the run's ack timeout.
   */
  command: Duration;
  /** A cancel sent to an agent waits this long for its answer. */
  cancel: Duration;
  /** Each run is looked at again this often even when nothing arrives. */
  tick: Duration;
  /** Saving a run record is retried this long (its bucket may be electing a leader). */
  saveDeadline: Duration;
  /** A start waits this long for a run that is finishing before refusing it as busy. */
  finishingGrace: Duration;
  /** On stop, what is still being stored gets this long. */
  stopGrace: Duration;
  /** A start asks every host's agent whether it is there, and waits this long for the answers. */
  agentPing: Duration;
  /** A resume that picks up the lab's current config waits this long for the fetcher to resolve its plugins again. */
  pluginPin: Duration;
}

/** The defaults of every coordinator timeout: the one place they are set. */
export const COORDINATOR_TIMEOUTS: Readonly<CoordinatorTimeouts> = {
  config: "10s",
  command: "3s",
  cancel: "5s",
  tick: "1s",
  saveDeadline: "60s",
  finishingGrace: "2s",
  stopGrace: "3s",
  agentPing: "1500ms",
  pluginPin: "90s",
};

export interface CoordinatorOptions {
  bus: Bus;
  logger: Logger;
  /** Any of the timeouts; the others are `COORDINATOR_TIMEOUTS`. */
  timeouts?: Partial<CoordinatorTimeouts>;
  /**
   * Signs every phase command and cancel, so agents given its public key accept only the
   * coordinator's. Without one, commands go unsigned (a lab without NATS permissions).
   */
  signer?: CommandSigner | undefined;
}

/** The timeouts in milliseconds, as the coordinator uses them. */
export interface CoordinatorTimings {
  configMs: number;
  commandMs: number;
  cancelMs: number;
  tickMs: number;
  saveDeadlineMs: number;
  finishingGraceMs: number;
  stopGraceMs: number;
  agentPingMs: number;
  pluginPinMs: number;
}

export interface CompiledCoordinatorOptions {
  bus: Bus;
  logger: Logger;
  signer: CommandSigner | undefined;
  timings: Readonly<CoordinatorTimings>;
}

/** Applies the defaults and checks every timeout once, when the coordinator starts. */
export function compileCoordinatorOptions(options: CoordinatorOptions): CompiledCoordinatorOptions {
  const t = { ...COORDINATOR_TIMEOUTS, ...options.timeouts };
  const ms = (name: keyof CoordinatorTimeouts) => {
    const value = parseDuration(t[name], `coordinator timeout ${name}`);
    if (value <= 0) throw new StackbusError(ErrorCode.InvalidArgument, `coordinator timeout ${name} must be more than 0`, { value: String(t[name]) });
    return value;
  };
  return {
    bus: options.bus,
    logger: options.logger,
    signer: options.signer,
    timings: Object.freeze({
      configMs: ms("config"),
      commandMs: ms("command"),
      cancelMs: ms("cancel"),
      tickMs: ms("tick"),
      saveDeadlineMs: ms("saveDeadline"),
      finishingGraceMs: ms("finishingGrace"),
      stopGraceMs: ms("stopGrace"),
      agentPingMs: ms("agentPing"),
      pluginPinMs: ms("pluginPin"),
    }),
  };
}

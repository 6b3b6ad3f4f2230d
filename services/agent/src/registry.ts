import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import {
  AgentInfoSchema,
  BUCKETS,
  ErrorCode,
  HeartbeatSchema,
  keys,
  PingReplySchema,
  PingRequestSchema,
  StackbusError,
  STACKBUS_VERSION,
  subjects,
  type AgentInfo,
  type StepRef,
} from "@stackbus/protocol";
import { casUpdate, PermissionDeniedError, withRetry, type Bus, type CasDecision, type KV, type KvEntry, type Logger, type Subscription } from "@stackbus/bus";

/** The version this agent reports (the coordinator refuses an agent of another minor version). */
export const AGENT_VERSION = STACKBUS_VERSION;

/** Refused: another agent is live for this host. */
export class DuplicateAgentError extends StackbusError {
  override name = "DuplicateAgentError";
  constructor(readonly other: AgentInfo) {
    super(
      ErrorCode.Conflict,
      `an agent for host "${other.host}" in lab "${other.lab}" is already running (pid ${other.pid} on ${other.hostname}, since ${new Date(other.startedAt).toISOString()}); stop it first`,
      { other },
    );
  }
}

/**
 * An idle agent beats this many heartbeat intervals apart (30 s by default): nobody waits
 * on it then, and `stackbus agents` asks the agent itself.
 */
export const IDLE_HEARTBEAT_FACTOR = 15;

/** While a step is in hand, the agent beats at least this many times in the run's heartbeat timeout. */
export const BEATS_PER_TIMEOUT = 4;

/** What the heartbeat says the host is doing. */
export interface BusyState {
  busy: StepRef | null;
  hook: string | null;
}

/**
 * The agent's presence on the bus: its entry in the agent registry (who holds the host),
 * the ping it answers, and the heartbeat it sends while it has a step in hand (running it,
 * or storing its result). Only the coordinator reads heartbeats, and only for a host that
 * acknowledged a step and has not reported it: a step that ends within one interval sends
 * none (its acknowledgement and result say the host lives), an idle host one now and then.
 */
export class Registration {
  readonly info: AgentInfo;
  readonly #bus: Bus;
  readonly #log: Logger;
  readonly #state: () => BusyState;
  #registry: KV | undefined;
  #timer: NodeJS.Timeout | undefined;
  #heartbeatMs = 2_000;
  #ping: Subscription | undefined;
  #heartbeatAt = 0;
  #inHand = false;

  constructor(options: { bus: Bus; lab: string; host: string; logger: Logger; state: () => BusyState }) {
    this.#bus = options.bus;
    this.#log = options.logger;
    this.#state = options.state;
    this.info = {
      lab: options.lab,
      host: options.host,
      instance: randomUUID(),
      pid: process.pid,
      hostname: hostname(),
      version: AGENT_VERSION,
      startedAt: Date.now(),
    };
  }

  /**
   * Records this agent in the registry and starts answering pings and sending heartbeats.
   * Refuses to start when another live agent holds the host: live means it answers a ping.
   */
  async start(heartbeatMs: number): Promise<void> {
    this.#heartbeatMs = heartbeatMs;
    const { lab, host } = this.info;
    this.#registry = await this.#bus.kv(BUCKETS.agents).catch((err: unknown) => {
      if (!(err instanceof PermissionDeniedError)) throw err;
      // Only the services create buckets: this one is the config service's.
      throw new StackbusError(
        ErrorCode.PermissionDenied,
        `the agents' registry (bucket ${BUCKETS.agents}) does not exist yet, and an agent may not create it: start the config service first, which creates it (${err.message})`,
        { subject: err.subject },
        { cause: err },
      );
    });
    await register(this.#bus, this.#registry, this.info, this.#log);
    // From now on this agent answers pings, so a second agent for this host sees it is live.
    this.#ping = this.#bus.serve(subjects.hostPing(lab, host), PingRequestSchema, PingReplySchema, () => {
      const { busy, hook } = this.#state();
      return { ...this.info, busy, hook: busy ? hook : null, heartbeatAt: this.#heartbeatAt, heartbeatMs: this.#heartbeatMs };
    });
    this.beat();
    this.#every(this.#heartbeatMs * IDLE_HEARTBEAT_FACTOR);
  }

  /**
   * Heartbeats while the agent has a step in hand (the first one interval from now): every
   * heartbeat interval, or every quarter of the run's heartbeat timeout when that is
   * longer (4 beats in a timeout are enough, and each is a message every host sends);
   * every IDLE_HEARTBEAT_FACTOR intervals while it has none.
   */
  inHand(active: boolean, heartbeatTimeoutMs?: number): void {
    if (active === this.#inHand) return;
    this.#inHand = active;
    const busyMs = Math.max(this.#heartbeatMs, Math.floor((heartbeatTimeoutMs ?? 0) / BEATS_PER_TIMEOUT));
    this.#every(active ? busyMs : this.#heartbeatMs * IDLE_HEARTBEAT_FACTOR);
  }

  #every(ms: number): void {
    clearInterval(this.#timer);
    this.#timer = setInterval(() => this.beat(), ms);
  }

  /** Sends a heartbeat now. */
  beat(): void {
    const { lab, host, instance } = this.info;
    const { busy, hook } = this.#state();
    this.#heartbeatAt = Date.now();
    this.#bus.publish(subjects.hostHeartbeat(lab, host), HeartbeatSchema, { lab, host, instance, at: Date.now(), busy, hook: busy ? hook : null });
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#ping?.unsubscribe();
    await this.#registry?.delete(keys.agent(this.info.lab, this.info.host)).catch(() => undefined);
  }
}

/**
 * Writes this agent's registration: a new key, or over the registration of an earlier
 * agent of the host that no longer answers its ping (one that answers is a duplicate).
 */
async function register(bus: Bus, registry: KV, info: AgentInfo, log: Logger): Promise<void> {
  const key = keys.agent(info.lab, info.host);
  const value = JSON.stringify(info);
  const takeOver = async (current: KvEntry | null): Promise<CasDecision<void>> => {
    const other = current ? AgentInfoSchema.safeParse(current.json()) : undefined;
    if (other?.success && other.data.instance !== info.instance) {
      const live = await bus
        .request(subjects.hostPing(info.lab, info.host), PingRequestSchema, {}, PingReplySchema, { timeoutMs: 1_000 })
        .catch(() => undefined);
      if (live) throw new DuplicateAgentError(live);
      log.info({ previous: other.data.pid }, "taking over the registration of an agent that no longer answers");
    }
    return { value, result: undefined };
  };
  const conflict = () => new StackbusError(ErrorCode.Conflict, `could not register the agent for host ${info.host}: the registry kept changing`);
  await withRetry("registering the agent", () => casUpdate(registry, key, takeOver, { attempts: 5, conflict }), {
    deadlineMs: 10_000,
    final: (err) => err instanceof DuplicateAgentError || (err instanceof StackbusError && err.code === ErrorCode.Conflict),
  });
}

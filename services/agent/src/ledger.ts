import { ErrorCode, StackbusError, StepResultSchema, subjects, type CommandAck, type PhaseCommand, type StepRef, type StepResult } from "@stackbus/protocol";
import { NO_REPLY, type Bus, type Logger } from "@stackbus/bus";
import { StateStore } from "./state.js";
import { agentFailure, failedResult, originOf, resultMsgId, type StepOrigin } from "./results.js";

/**
 * A step still running this long after its command came is acknowledged (sooner when a
 * quarter of the run's ack or heartbeat timeout is shorter); one that ended sooner is
 * acknowledged by its result in the run stream, which the coordinator reads. The
 * coordinator sends an unacknowledged command again only after 4 s.
 */
export const ACK_AFTER_MS = 1_000;

/** When a new step's command is acknowledged if the step still runs. */
export function ackAfterMs(cmd: Pick<PhaseCommand, "ackTimeoutMs" | "heartbeatTimeoutMs">): number {
  return Math.min(ACK_AFTER_MS, Math.floor((cmd.ackTimeoutMs ?? Infinity) / 4), Math.floor((cmd.heartbeatTimeoutMs ?? Infinity) / 4));
}

/** The key of a step in the ledger and among the active steps. */
function stepKey(ref: { runId: string; attempt: number; step: string }): string {
  return `${ref.runId}#${ref.attempt}#${ref.step}`;
}

/**
 * Exactly once, on the agent's side: a step is recorded as running before it is
 * acknowledged and as done with its result before the result is published, so a
 * redelivered command never runs a hook twice (it is answered from the record), a
 * result survives a restart of the agent, and a step a killed instance left running is
 * reported `lost`, never run again.
 */
export class CommandLedger {
  readonly #bus: Bus;
  readonly #state: StateStore;
  readonly #host: string;
  readonly #instance: string;
  readonly #log: Logger;
  readonly #onIdle: () => void;
  readonly #onActive: (active: boolean, cmd?: PhaseCommand) => void;
  readonly #active = new Map<string, Promise<void>>();
  /** The step running now on this host, if any. */
  busy: StepRef | null = null;

  constructor(options: {
    bus: Bus;
    state: StateStore;
    host: string;
    instance: string;
    logger: Logger;
    /** The step running now ended (its result is being recorded and stored). */
    onIdle: () => void;
    /** True, with its command, when the agent takes a step in hand; false when it has none left (run and stored). */
    onActive?: (active: boolean, cmd?: PhaseCommand) => void;
  }) {
    this.#onIdle = options.onIdle;
    this.#onActive = options.onActive ?? (() => undefined);
    this.#bus = options.bus;
    this.#state = options.state;
    this.#host = options.host;
    this.#instance = options.instance;
    this.#log = options.logger;
  }

  /** True while a step of this run and attempt runs here. */
  hasActive(runId: string, attempt: number): boolean {
    const prefix = `${runId}#${attempt}#`;
    return [...this.#active.keys()].some((k) => k.startsWith(prefix));
  }

  /**
   * Answers a command: the stored result of a step already done, `running` for one
   * running now. A new one is recorded and handed to `run`, and answered `started` if it
   * still runs `ackAfterMs` later, else not at all: its result, stored in the run stream,
   * answers it (or, if that could not be stored, the answer to the coordinator's next copy
   * of the command, from the state dir).
   */
  accept(cmd: PhaseCommand, run: (cmd: PhaseCommand) => Promise<StepResult>): CommandAck | Promise<CommandAck | typeof NO_REPLY> {
    const ack = (state: CommandAck["state"], result?: StepResult): CommandAck => ({ host: this.#host, instance: this.#instance, state, ...(result ? { result } : {}) });
    const recorded = this.#state.get(cmd.runId, cmd.attempt, cmd.step);
    if (recorded?.state === "done") {
      void this.#store(recorded.result).catch(() => undefined);
      return ack("done", recorded.result);
    }
    if (recorded?.state === "running") {
      if (this.#active.has(stepKey(cmd))) return ack("running");
      // Started by an earlier instance of this agent that did not finish it: its outcome is unknown.
      const result = failedResult(
        originOf(cmd, this.#host),
        recorded.startedAt,
        agentFailure("lost", `the agent restarted while ${cmd.step} was running; its outcome is unknown and it is not run again (resume the run)`),
        "lost",
      );
      void this.finish(result).catch((err: unknown) => this.#log.error({ err }, "could not publish a lost result"));
      return ack("done", result);
    }
    if (this.busy && (this.busy.runId !== cmd.runId || this.busy.attempt !== cmd.attempt)) {
      throw new StackbusError(ErrorCode.Conflict, `host ${this.#host} is busy with run ${this.busy.runId} (${this.busy.step})`, { busy: this.busy });
    }
    this.#state.put(cmd.runId, cmd.attempt, cmd.step, { state: "running", startedAt: Date.now(), instance: this.#instance });
    const key = stepKey(cmd);
    let answer: (a: CommandAck | typeof NO_REPLY) => void = () => undefined;
    const answered = new Promise<CommandAck | typeof NO_REPLY>((resolve) => (answer = resolve));
    const ackTimer = setTimeout(() => answer(ack("started")), ackAfterMs(cmd));
    const done = (async () => {
      this.busy = { runId: cmd.runId, attempt: cmd.attempt, step: cmd.step };
      let result: StepResult;
      try {
        result = await run(cmd);
      } finally {
        this.busy = null;
        this.#onIdle();
      }
      try {
        await this.finish(result);
      } catch (err) {
        this.#log.error({ err, runId: cmd.runId, step: cmd.step }, "could not publish a step result; it is kept in the state dir and answered on the next command");
      }
    })()
      .catch((err: unknown) => this.#log.error({ err, runId: cmd.runId, step: cmd.step }, "a step ended with an error inside the agent"))
      .finally(() => {
        clearTimeout(ackTimer);
        answer(NO_REPLY);
        this.#active.delete(key);
        if (this.#active.size === 0) this.#onActive(false);
      });
    this.#active.set(key, done);
    this.#onActive(true, cmd);
    return answered;
  }

  /** Records a step's result, then stores it in the run stream. */
  async finish(result: StepResult): Promise<void> {
    this.#state.put(result.runId, result.attempt, result.step, { state: "done", result });
    await this.#store(result, 10 * 60_000);
  }

  #store(result: StepResult, deadlineMs?: number): Promise<unknown> {
    const origin: StepOrigin = result;
    return this.#bus.publishDurable(subjects.runResult(result.lab, result.runId, this.#host), StepResultSchema, result, {
      msgID: resultMsgId(origin),
      ...(deadlineMs !== undefined ? { deadlineMs } : {}),
    });
  }

  /** Waits (at most `ms`) for the steps running now. */
  async drain(ms: number): Promise<void> {
    await Promise.race([Promise.allSettled([...this.#active.values()]), new Promise((r) => setTimeout(r, ms))]);
  }
}

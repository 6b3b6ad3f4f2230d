import { join } from "node:path";
import {
  findStep,
  ProgressSchema,
  stepsOf,
  subjects,
  toStackbusError,
  type HostConfig,
  type PhaseCommand,
  type RunKind,
  type StepResult,
  type CancelRequest,
} from "@stackbus/protocol";
import type { Bus, Logger } from "@stackbus/bus";
import { OutputLog } from "./output.js";
import { fetchHostConfig, type HostDirs } from "./prepare.js";
import { agentFailure, failedResult, originOf } from "./results.js";
import { runFinally } from "./finally.js";
import { runAsFor } from "./devstack/user.js";
import type { StateStore } from "./state.js";
import type { Activity, RunHandle, Runner } from "./runner.js";

/** One run on this host: its config, its output, and the runner's handle while it lasts. */
interface RunContext {
  runId: string;
  attempt: number;
  kind: RunKind;
  config: HostConfig;
  out: OutputLog;
  handle: RunHandle | null;
  lastUsed: number;
}

export interface HostRunsOptions {
  bus: Bus;
  lab: string;
  host: string;
  dirs: HostDirs;
  state: StateStore;
  logger: Logger;
  /** The runner a host config names (the hooks runner or the devstack runner). */
  runnerFor: (config: HostConfig) => Runner;
  /** Whether the ledger still has a step of this run's attempt in hand. */
  isActive: (runId: string, attempt: number) => boolean;
  /** The run and attempt whose step is running now, if any. */
  busy: () => { runId: string; attempt: number } | null;
  /** Told the hook (or DevStack activity) each step is in, for the heartbeat. */
  onActivity: (what: string | null) => void;
}

/**
 * The runs of one host: each run's config, output log and runner handle from its
 * `prepare` to its last step (or its `finally`), and the step that runs in them. The
 * ledger decides whether a command runs; this decides how.
 */
export class HostRuns {
  readonly #o: HostRunsOptions;
  readonly #runs = new Map<string, RunContext>();
  readonly #log: Logger;

  constructor(options: HostRunsOptions) {
    this.#o = options;
    this.#log = options.logger;
  }

  /** Runs one step of a command the ledger accepted; never throws (a failure is a result). */
  async run(cmd: PhaseCommand): Promise<StepResult> {
    const startedAt = Date.now();
    const origin = originOf(cmd, this.#o.host);
    try {
      if (cmd.step === "prepare") return await this.#prepare(cmd, startedAt);
      const step = findStep(cmd.kind, cmd.step);
      const key = runKey(cmd.runId, cmd.attempt);
      const ctx = this.#runs.get(key);
      if (!step) return failedResult(origin, startedAt, agentFailure("internal", `a ${cmd.kind} run has no step ${cmd.step}`));
      if (step.id === "finally") return await this.#finally(cmd, ctx, startedAt);
      if (!ctx?.handle || ctx.handle.ended) {
        return failedResult(
          origin,
          startedAt,
          agentFailure(
            "session",
            `this host has no live session for run ${cmd.runId} (attempt ${cmd.attempt}): the agent restarted or an earlier step ended it; resume the run to start again`,
          ),
        );
      }
      const handle = ctx.handle;
      ctx.lastUsed = Date.now();
      ctx.out.beginStep(cmd.attempt, cmd.step);
      const timer = setTimeout(() => {
        this.#log.warn({ runId: cmd.runId, step: cmd.step }, "step ran past its timeout; killing it");
        handle.kill("timeout");
      }, cmd.timeoutMs);
      let result: StepResult;
      try {
        result = await handle.runStep({ cmd, step, startedAt, progress: this.#progressOf(cmd) });
      } finally {
        clearTimeout(timer);
      }
      const steps = stepsOf(cmd.kind);
      const last = steps[steps.length - 1]?.id === cmd.step;
      const failed = step.errexit && result.status !== "ok";
      const finallyNext = last && !failed && ctx.config.finally.some((f) => f.kinds.includes(cmd.kind));
      if (last || handle.ended || failed) this.close(key, last ? "the run's last step finished" : "the run cannot go on on this host", finallyNext);
      return result;
    } catch (err) {
      const e = toStackbusError(err);
      this.#log.error({ err, runId: cmd.runId, step: cmd.step }, "step failed inside the agent");
      return failedResult(origin, startedAt, agentFailure("internal", e.message));
    }
  }

  /**
   * A cancel from the coordinator: kills the step of that run that is running here, and
   * with `end` (the run is over) releases what the run holds. Whether a step was killed.
   */
  cancel(req: CancelRequest): boolean {
    let canceled = false;
    const busy = this.#o.busy();
    for (const [key, ctx] of [...this.#runs]) {
      if (ctx.runId !== req.runId) continue;
      if (req.end && req.attempt !== undefined && ctx.attempt > req.attempt) continue;
      if (busy?.runId === req.runId && busy.attempt === ctx.attempt) {
        ctx.handle?.kill("canceled");
        canceled = true;
      }
      if (req.end) this.close(key, req.reason);
    }
    return canceled;
  }

  /** Closes the runs nothing has used for `idleMs` and no step of which is in hand. */
  closeIdle(idleMs: number): void {
    for (const [key, ctx] of this.#runs) {
      if (Date.now() - ctx.lastUsed > idleMs && !this.#o.isActive(ctx.runId, ctx.attempt)) this.close(key, "idle");
    }
  }

  /** Releases every run (the agent is stopping). */
  closeAll(reason: string): void {
    for (const key of [...this.#runs.keys()]) this.close(key, reason);
  }

  /** Releases a run's handle (its session, its paused script) and, unless `keep`, forgets the run. */
  close(key: string, reason: string, keep = false): void {
    const ctx = this.#runs.get(key);
    if (!ctx) return;
    if (ctx.handle) {
      this.#o.state.sessionClosed(ctx.runId, ctx.handle.pgid);
      ctx.handle.close(reason);
      ctx.handle = null;
    }
    if (keep) return;
    this.#runs.delete(key);
    void ctx.out.close();
  }

  #progressOf(cmd: PhaseCommand): (what: Activity) => void {
    const { bus, lab, host } = this.#o;
    return (what) => {
      this.#o.onActivity(what.activity ?? what.hook);
      bus.publish(subjects.runProgress(lab, cmd.runId, host), ProgressSchema, {
        runId: cmd.runId,
        host,
        attempt: cmd.attempt,
        step: cmd.step,
        hook: what.hook,
        at: Date.now(),
        ...(what.activity !== undefined ? { activity: what.activity } : {}),
        ...(what.done !== undefined ? { done: what.done } : {}),
        ...(what.total !== undefined ? { total: what.total } : {}),
      });
    };
  }

  #outputOf(cmd: PhaseCommand): OutputLog {
    const { bus, lab, host, state } = this.#o;
    return new OutputLog({ bus, logger: this.#log, lab, host, runId: cmd.runId, file: join(state.runDir(cmd.runId), `attempt-${cmd.attempt}.log`) });
  }

  async #prepare(cmd: PhaseCommand, startedAt: number): Promise<StepResult> {
    const { bus, lab, host, state } = this.#o;
    const key = runKey(cmd.runId, cmd.attempt);
    this.close(key, "prepared again");
    const runDir = state.runDir(cmd.runId);
    const out = this.#outputOf(cmd);
    out.beginStep(cmd.attempt, "prepare");
    let config: HostConfig;
    try {
      config = await fetchHostConfig(bus, lab, host, cmd.configRevision);
    } catch (err) {
      const e = toStackbusError(err);
      out.line("prepare", "agent", e.message);
      await out.close();
      return failedResult(originOf(cmd, host), startedAt, { ...agentFailure("prepare", e.message), outputTail: out.tail("prepare") });
    }
    const prepared = await this.#o.runnerFor(config).prepare({
      cmd,
      config,
      out,
      runDir,
      startedAt,
      progress: this.#progressOf(cmd),
      track: (pgid) => state.sessionOpened(cmd.runId, pgid),
    });
    if (prepared.handle && prepared.result.status === "ok") {
      this.#runs.set(key, { runId: cmd.runId, attempt: cmd.attempt, kind: cmd.kind, config, out, handle: prepared.handle, lastUsed: Date.now() });
    } else {
      prepared.handle?.close("prepare failed");
      await out.close();
    }
    return prepared.result;
  }

  /** The lab's `finally` commands for this host, after every host finished the last step. */
  async #finally(cmd: PhaseCommand, ctx: RunContext | undefined, startedAt: number): Promise<StepResult> {
    const { bus, lab, host, state, dirs } = this.#o;
    const config = ctx?.config ?? (await fetchHostConfig(bus, lab, host, cmd.configRevision));
    const out = ctx?.out ?? this.#outputOf(cmd);
    out.beginStep(cmd.attempt, "finally");
    try {
      return await runFinally({
        origin: originOf(cmd, host),
        startedAt,
        commands: config.finally.filter((f) => f.kinds.includes(cmd.kind)).map((f) => f.command),
        topDir: dirs.topDir,
        runAs: config.runner === "devstack" ? await runAsFor(config) : null,
        out,
        timeoutMs: cmd.timeoutMs,
        progress: this.#progressOf(cmd),
        track: (pgid) => state.sessionOpened(cmd.runId, pgid),
        untrack: (pgid) => state.sessionClosed(cmd.runId, pgid),
      });
    } finally {
      this.#runs.delete(runKey(cmd.runId, cmd.attempt));
      await out.close();
    }
  }
}

function runKey(runId: string, attempt: number): string {
  return `${runId}#${attempt}`;
}

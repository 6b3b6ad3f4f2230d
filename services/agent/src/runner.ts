import type { HostConfig, PhaseCommand, Step, StepResult } from "@stackbus/protocol";
import type { OutputLog } from "./output.js";

/**
 * The seam between the agent and how a host's steps run. The agent owns the bus, the
 * exactly-once ledger, heartbeats, timeouts and output shipping; a runner turns one
 * step of one run into a StepResult. Two runners sit behind it: `hooks` (the hooks are
 * sourced into one stackbus bash session per run) and `devstack` (the host's own
 * DevStack checkout runs its stack.sh, unstack.sh or clean.sh, paused between phases).
 */
export interface Runner {
  /** Runs the prepare step of a run; on success, the handle that runs its later steps. */
  prepare(ctx: PrepareContext): Promise<Prepared>;
  /** The agent is stopping. */
  close(): void;
}

export interface Prepared {
  result: StepResult;
  /** Present when the run can go on on this host. */
  handle?: RunHandle;
}

/** What the host is doing now, for heartbeats and the live view. */
export interface Activity {
  /** The hook (or script) running now. */
  hook: string;
  /** The host's own words for it (DevStack's `echo_summary` lines). */
  activity?: string;
  done?: number;
  total?: number;
}

export interface PrepareContext {
  cmd: PhaseCommand;
  config: HostConfig;
  /** The run's output: bus, the host's run log, per-hook tails. */
  out: OutputLog;
  /** The run's directory in the agent's state dir. */
  runDir: string;
  startedAt: number;
  progress: (what: Activity) => void;
  /** Records a process group the run started, so a later agent can end it if this one dies. */
  track: (pgid: number) => void;
}

export interface StepContext {
  cmd: PhaseCommand;
  step: Step;
  startedAt: number;
  progress: (what: Activity) => void;
}

/** One prepared run on this host. */
export interface RunHandle {
  /** The process group this run keeps alive (its session, its DevStack script). */
  readonly pgid: number;
  /** True once the session or script has ended: no later step can run. */
  readonly ended: boolean;
  runStep(ctx: StepContext): Promise<StepResult>;
  /** Kills what runs now (the whole process group): the step ends `timeout` or `canceled`. */
  kill(reason: "timeout" | "canceled"): void;
  /** Releases the run: ends an idle session, stops a script paused between phases. */
  close(reason: string): void;
}

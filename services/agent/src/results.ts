import { toStackbusError, type Failure, type PhaseCommand, type StepId, type StepResult, type StepStatus } from "@stackbus/protocol";
import type { OutputLog } from "./output.js";

/** The step a result answers: which run, attempt and step, on which host. */
export interface StepOrigin {
  lab: string;
  host: string;
  runId: string;
  attempt: number;
  step: StepId;
}

/** The origin of the step a command asks for, on this host. */
export function originOf(cmd: PhaseCommand, host: string): StepOrigin {
  return { lab: cmd.lab, host, runId: cmd.runId, attempt: cmd.attempt, step: cmd.step };
}

/** What a failure says besides the host and step it happened on. */
export type FailureDetail = Omit<Failure, "host" | "step">;

/** The one place a StepResult is built: timings from `startedAt` to now, the rest given or empty. */
export function stepResult(
  origin: StepOrigin,
  startedAt: number,
  fields: Partial<Pick<StepResult, "status" | "hooks" | "failures" | "facts" | "warnings" | "devstack">> = {},
): StepResult {
  const finishedAt = Date.now();
  return {
    ...origin,
    status: fields.status ?? "ok",
    startedAt,
    finishedAt,
    durationMs: Math.max(0, finishedAt - startedAt),
    hooks: fields.hooks ?? [],
    failures: fields.failures ?? [],
    facts: fields.facts ?? {},
    warnings: fields.warnings ?? [],
    ...(fields.devstack ? { devstack: fields.devstack } : {}),
  };
}

/** A result with one failure of this host at this step. */
export function failedResult(origin: StepOrigin, startedAt: number, failure: FailureDetail, status: StepStatus = "failed"): StepResult {
  return stepResult(origin, startedAt, { status, failures: [{ host: origin.host, step: origin.step, ...failure }] });
}

/** A failure detail with no hook, exit status or output: the agent's own reason. */
export function agentFailure(reason: Failure["reason"], message: string): FailureDetail {
  return { reason, hook: null, exitCode: null, signal: null, message, outputTail: [] };
}

/** The message id a step result is stored under in the run stream: one per host and step, so a retry is stored once. */
export function resultMsgId(origin: StepOrigin): string {
  return `${origin.runId}.${origin.attempt}.${origin.step}.${origin.host}`;
}

/**
 * The prepare step's result when something threw: its message in the step's output, the
 * plugin it names (a fetch or install failure) as the hook.
 */
export async function prepareFailed(origin: StepOrigin, startedAt: number, err: unknown, out: OutputLog): Promise<StepResult> {
  const e = toStackbusError(err);
  out.line("prepare", "agent", e.message);
  await out.flush();
  const plugin = (e.data as Record<string, unknown>)["plugin"];
  return failedResult(origin, startedAt, {
    reason: "prepare",
    hook: typeof plugin === "string" ? `plugin ${plugin}` : null,
    exitCode: null,
    signal: null,
    message: e.message,
    outputTail: out.tail("prepare"),
  });
}

import type { Failure, PhaseCommand, StepId, StepResult, StepStatus } from "@stackbus/protocol";

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

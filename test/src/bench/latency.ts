import type { Bus } from "@stackbus/bus";
import { STREAMS, subjects } from "@stackbus/protocol";
import { median } from "./hooks.js";

/**
 * Where the time of one step goes on a one-host run, from the run stream: when the
 * stream stored each event and result (nats-server's clock) and when the agent started
 * and ended the step (the agent's clock, the same machine's). Medians over the run's
 * steps after prepare.
 */
export interface StepLatency {
  /** step.started stored, to the agent starting the step: the command sent, delivered, checked and recorded. */
  toAgentMs: number;
  /** The step on the agent, start to end: its hooks through the session, facts, output. */
  onAgentMs: number;
  /** Of onAgentMs, the hooks' own time as the session measured it. */
  hooksMs: number;
  /** The agent's end of the step, to its result stored in the run stream. */
  resultStoredMs: number;
  /** The result stored, to step.finished stored: the coordinator reads it, decides, stores the event. */
  toStepFinishedMs: number;
  /** step.finished stored, to the next step.started stored. */
  toNextStepMs: number;
}

interface Stored {
  type?: string;
  step?: string;
  startedAt?: number;
  finishedAt?: number;
  hooks?: Array<{ durationMs: number }>;
}

export async function stepLatency(bus: Bus, lab: string, runId: string, host: string): Promise<StepLatency | undefined> {
  const messages = await bus.readStream(STREAMS.runs, subjects.runAll(lab, runId));
  const resultSubject = subjects.runResult(lab, runId, host);
  const started = new Map<string, number>();
  const finished = new Map<string, number>();
  const results = new Map<string, { stored: number; value: Stored }>();
  const order: string[] = [];
  for (const m of messages) {
    const value = JSON.parse(new TextDecoder().decode(m.data)) as Stored;
    if (m.subject === resultSubject && value.step) results.set(value.step, { stored: m.time, value });
    else if (value.type === "step.started" && value.step) {
      started.set(value.step, m.time);
      order.push(value.step);
    } else if (value.type === "step.finished" && value.step) finished.set(value.step, m.time);
  }
  const rows: StepLatency[] = [];
  order.forEach((step, i) => {
    const result = results.get(step);
    const start = started.get(step);
    const end = finished.get(step);
    const next = order[i + 1] !== undefined ? started.get(order[i + 1] as string) : undefined;
    if (step === "prepare" || !result || start === undefined || end === undefined || next === undefined) return;
    const { startedAt = Number.NaN, finishedAt = Number.NaN, hooks = [] } = result.value;
    rows.push({
      toAgentMs: startedAt - start,
      onAgentMs: finishedAt - startedAt,
      hooksMs: hooks.reduce((sum, h) => sum + h.durationMs, 0),
      resultStoredMs: result.stored - finishedAt,
      toStepFinishedMs: end - result.stored,
      toNextStepMs: next - end,
    });
  });
  if (rows.length === 0) return undefined;
  const pick = (k: keyof StepLatency) => median(rows.map((r) => r[k]));
  return {
    toAgentMs: pick("toAgentMs"),
    onAgentMs: pick("onAgentMs"),
    hooksMs: pick("hooksMs"),
    resultStoredMs: pick("resultStoredMs"),
    toStepFinishedMs: pick("toStepFinishedMs"),
    toNextStepMs: pick("toNextStepMs"),
  };
}

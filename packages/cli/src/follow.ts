import {
  formatDuration,
  RunEventSchema,
  senderMismatch,
  StepResultSchema,
  STREAMS,
  subjects,
  type Failure,
  type RunEvent,
  type StepResult,
} from "@stackbus/protocol";
import { decode, type Bus } from "@stackbus/bus";
import pc from "picocolors";

/** One stored record of a run, in stream order. */
export type RunRecordItem =
  | { kind: "event"; event: RunEvent; seq: number; pending: number }
  | { kind: "result"; result: StepResult; seq: number; pending: number };

/**
 * Follows a run's stored events and results from its first message, live, until the run
 * finishes (the given attempt, or any attempt when none is given). A watcher that attaches
 * late replays everything first. Survives a coordinator restart: it reads the stream, not
 * the coordinator.
 */
export async function* followRun(
  bus: Bus,
  lab: string,
  runId: string,
  options: { untilAttempt?: number; signal?: AbortSignal; stopAtEnd?: boolean } = {},
): AsyncGenerator<RunRecordItem> {
  const stream = bus.followStream(STREAMS.runs, subjects.runAll(lab, runId), options.signal ? { signal: options.signal } : {});
  // The latest attempt seen, and the latest that has finished: records stored after a
  // run.finished (a late acknowledgement) never hold a finished run open.
  let latest = 0;
  let finished = 0;
  for await (const m of stream) {
    let item: RunRecordItem | undefined;
    try {
      if (m.subject.endsWith(".event")) item = { kind: "event", event: decode(m.subject, RunEventSchema, m.data), seq: m.seq, pending: m.pending };
      else if (m.subject.includes(".result.")) {
        const result = decode(m.subject, StepResultSchema, m.data);
        // A result that claims to be another host's (its subject names the sender) is not shown.
        if (!senderMismatch(m.subject, result)) item = { kind: "result", result, seq: m.seq, pending: m.pending };
      }
    } catch {
      continue;
    }
    if (!item) continue;
    yield item;
    if (item.kind === "event" && item.event.type === "run.attempt") latest = Math.max(latest, item.event.attempt);
    if (item.kind === "event" && item.event.type === "run.finished") finished = Math.max(finished, item.event.attempt);
    if (options.stopAtEnd === false || finished === 0) continue;
    const wanted = options.untilAttempt;
    if (wanted !== undefined && finished >= wanted) return;
    // Without a wanted attempt, stop at the last stored finish: a resume may follow an earlier one.
    if (wanted === undefined && finished >= latest && item.pending === 0) return;
  }
}

const time = (at: number) => new Date(at).toISOString().slice(11, 19);

/** One plain line per event, for logs, pipes and `--wait`. */
export function plainLine(item: RunRecordItem): string | undefined {
  if (item.kind === "result") {
    const r = item.result;
    const status = r.status === "ok" ? pc.green("ok") : pc.red(r.status.toUpperCase());
    const head = `${pc.dim(time(r.finishedAt))} ${r.step} ${r.host} ${status} (${formatDuration(r.durationMs)})`;
    const warnings = r.warnings.map((w) => `    ${pc.yellow("warning")} ${w}`);
    return [head, ...warnings, ...r.failures.map((f) => describeFailure(f, "    "))].join("\n");
  }
  const e = item.event;
  const t = pc.dim(time(e.at));
  switch (e.type) {
    case "run.created":
      return `${t} run ${e.spec.runId}: ${e.spec.kind} on ${e.spec.hosts.length} host(s): ${describeWaves(e.spec.hosts)}`;
    case "run.attempt":
      return e.reason === "resume" ? `${t} resuming (attempt ${e.attempt}) from ${e.from}: ${e.steps.join(", ")}` : undefined;
    case "step.started":
      return `${t} ${pc.bold(e.step)}${Number.isNaN(e.wave) ? "" : ` wave ${e.wave}`}: started on ${e.hosts.join(", ")}`;
    case "host.acked":
      return undefined;
    case "host.finished": {
      const status = e.status === "ok" ? pc.green("ok") : pc.red(e.status.toUpperCase());
      const head = `${t} ${e.step} ${e.host} ${status} (${formatDuration(e.durationMs)})`;
      if (e.status === "ok") return head;
      return [head, ...e.failures.map((f) => describeFailure(f, "    "))].join("\n");
    }
    case "step.finished":
      return `${t} ${pc.bold(e.step)} ${e.status === "ok" ? pc.green("done") : pc.red(`failed on ${e.failedHosts.join(", ")}`)} (${formatDuration(e.durationMs)})`;
    case "run.cancel-requested":
      return `${t} cancel requested: ${e.reason}`;
    case "run.finished": {
      const status = e.status === "succeeded" ? pc.green("succeeded") : pc.red(e.status);
      return `${t} run ${e.runId} ${status} in ${formatDuration(e.durationMs)}${e.failures.length ? `: ${e.failures.length} failure(s)` : ""}`;
    }
  }
}

/**
 * A failure's message without what `describeFailure` prints on lines of its own: the
 * failing command and its place (the hooks runner writes "`CMD` at FILE:FN:LINE", the
 * devstack runner "failing command: CMD at PLACE") and DevStack's log.
 */
export function failureSummary(f: Failure): string {
  let message = f.message;
  if (f.command !== undefined) {
    const at = f.location ? ` at ${f.location}` : "";
    for (const part of [`: \`${f.command}\`${at}`, `; failing command: ${f.command}${at}`]) message = message.replace(part, "");
  }
  if (f.logFile) message = message.replace(`; DevStack's log: ${f.logFile}`, "");
  return message;
}

/**
 * A failure as people read it: host, step, hook and exit status; the message; the failing
 * command and where it is (`file:function:line`, from the ERR trap, as DevStack's xtrace
 * would show it); DevStack's log; and the output tail.
 */
export function describeFailure(f: Failure, indent = "", tailLines = 20): string {
  const what = [f.host, f.step, f.hook ?? f.reason, f.exitCode !== null ? `exit ${f.exitCode}` : f.signal ?? ""].filter(Boolean).join(" / ");
  const lines = [`${indent}${pc.red("✗")} ${what}: ${failureSummary(f)}`];
  if (f.command !== undefined) lines.push(`${indent}  failing command: ${pc.bold(f.command)}${f.location ? `  ${pc.dim("at")} ${f.location}` : ""}`);
  if (f.logFile) lines.push(`${indent}  DevStack's log: ${f.logFile}`);
  for (const line of tailLines > 0 ? f.outputTail.slice(-tailLines) : []) lines.push(`${indent}  ${pc.dim("|")} ${line}`);
  return lines.join("\n");
}

function describeWaves(hosts: Array<{ name: string; wave: number }>): string {
  const waves = [...new Set(hosts.map((h) => h.wave))].sort((a, b) => a - b);
  if (waves.length === 1) return hosts.map((h) => h.name).join(", ");
  return waves.map((w) => `wave ${w}: ${hosts.filter((h) => h.wave === w).map((h) => h.name).join(", ")}`).join("; ");
}

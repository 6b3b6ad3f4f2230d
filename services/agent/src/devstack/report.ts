import type { HookResult } from "@stackbus/protocol";
import type { FailureDetail } from "../results.js";
import type { JournalRecord } from "./journal.js";

/** outfilter.py's timestamp prefix on each line DevStack logs (`2026-12-01 10:25:56.129 | `). */
const STAMP = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \| /;
/** An xtrace line under DevStack's PS4 (`+ file:function:line   :   command`). */
const XTRACE = /^\++ (\S+:\S+:\d+)\s+:\s+(.*)$/;

function unstamped(line: string): string {
  return line.replace(STAMP, "");
}

/**
 * DevStack's `time_totals` table (printed at the end of stack.sh): seconds by component,
 * with "Unaccounted time" and "Total runtime". Empty when the output has none.
 */
export function parseTimeTotals(lines: readonly string[]): Record<string, number> {
  const text = lines.map(unstamped);
  const start = text.lastIndexOf("DevStack Component Timing");
  if (start < 0) return {};
  const out: Record<string, number> = {};
  for (const line of text.slice(start + 1)) {
    const m = /^(\S.*?)\s+(-?\d+)$/.exec(line.trimEnd());
    if (m) out[m[1] as string] = Number(m[2]);
    if (line.startsWith("Total runtime")) break;
  }
  return out;
}

/** The hooks the journal saw start in a step, with how each ended (a hook with no end was running when the script exited). */
export function hookResults(records: readonly JournalRecord[], exit: { code: number | null; signal: string | null } | null): HookResult[] {
  const out: HookResult[] = [];
  const open = new Map<string, { at: number; index: number }>();
  for (const r of records) {
    if (r.type === "hook-start") {
      open.set(r.hook, { at: r.at, index: out.length });
      out.push({ hook: r.hook, command: `source ${r.hook}`, status: "failed", durationMs: 0, exitCode: exit?.code ?? null, signal: exit?.signal ?? null });
    } else if (r.type === "hook-end") {
      const o = open.get(r.hook);
      const h = o ? out[o.index] : undefined;
      if (!o || !h) continue;
      open.delete(r.hook);
      Object.assign(h, { status: r.status === 0 ? "ok" : "failed", durationMs: Math.max(0, r.at - o.at), exitCode: r.status, signal: null });
    }
  }
  return out;
}

export interface ScriptFailure {
  script: string;
  stepLabel: string;
  exit: { code: number | null; signal: string | null } | null;
  killReason: "timeout" | "canceled" | undefined;
  mismatch: string | undefined;
  records: readonly JournalRecord[];
  outputTail: string[];
  logFile: string | null;
  topDir: string;
}

/**
 * Why a DevStack script did not get through a step: the hook that was running, the
 * command that failed and where (from the pause points' ERR note, else DevStack's own
 * xtrace, else the call stack at exit), the exit status, the output tail and
 * DevStack's log on the host.
 */
export function describeScriptFailure(f: ScriptFailure): FailureDetail {
  const exitCode = f.exit?.code ?? null;
  const signal = f.exit?.signal ?? null;
  const running = lastOpenHook(f.records);
  const where = failingCommand(f.records, running?.at ?? Number.POSITIVE_INFINITY, f.outputTail, f.topDir);
  const status = signal ? `was killed by ${signal}` : exitCode === 0 ? "ended (exit status 0)" : `failed with exit status ${exitCode}`;
  const parts: string[] = [];
  if (f.killReason === "timeout") parts.push(`${f.script} was killed: ${f.stepLabel} ran past its timeout`);
  else if (f.killReason === "canceled") parts.push(`${f.script} was killed: the run was canceled`);
  else if (f.mismatch) parts.push(f.mismatch);
  else parts.push(`${f.script} ${status} during ${f.stepLabel}${running ? `, in ${running.hook}` : ", in DevStack's own work before it"}`);
  if (where) parts.push(`failing command: ${where.command}${where.location ? ` at ${where.location}` : ""}`);
  parts.push(f.logFile ? `DevStack's log: ${f.logFile}` : "DevStack keeps no log of its own (no LOGFILE in the localrc)");
  return {
    reason: f.killReason ?? (running ? "hook" : "devstack"),
    hook: running?.hook ?? f.script,
    exitCode,
    signal,
    message: parts.join("; "),
    outputTail: f.outputTail,
    ...(where ? { command: where.command, ...(where.location ? { location: where.location } : {}) } : {}),
    ...(f.logFile ? { logFile: f.logFile } : {}),
  };
}

function lastOpenHook(records: readonly JournalRecord[]): { hook: string; at: number } | undefined {
  const open: Array<{ hook: string; at: number }> = [];
  for (const r of records) {
    if (r.type === "hook-start") open.push({ hook: r.hook, at: r.at });
    else if (r.type === "hook-end") {
      const i = open.map((o) => o.hook).lastIndexOf(r.hook);
      if (i >= 0) open.splice(i, 1);
    }
  }
  return open[open.length - 1];
}

function failingCommand(records: readonly JournalRecord[], since: number, tail: readonly string[], topDir: string): { command: string; location?: string } | undefined {
  const short = (location: string) => (location.startsWith(`${topDir}/`) ? location.slice(topDir.length + 1) : location);
  const error = [...records].reverse().find((r) => r.type === "error" && r.at >= since);
  if (error?.type === "error") return { command: error.command, location: short(error.location) };
  const exit = [...records].reverse().find((r) => r.type === "exit");
  if (exit?.type !== "exit" || exit.xtrace) {
    // xtrace was on when the script ended: DevStack's own trace names the command.
    for (const line of [...tail].reverse().map(unstamped)) {
      const m = XTRACE.exec(line);
      if (m) return { command: (m[2] as string).trim(), location: m[1] as string };
    }
  }
  if (exit?.type === "exit" && exit.status !== 0) {
    const [frame] = exit.stack.split(" ");
    const [fn, at] = (frame ?? "").split("@");
    if (fn === "err_trap" && at) {
      // stack.sh's ERR trap fires for a failing top-level command: it was called from that line.
      const i = at.lastIndexOf(":");
      return { command: exit.command, location: `${short(at.slice(0, i))}:main:${at.slice(i + 1)}` };
    }
    return { command: exit.command, ...(fn && at ? { location: `${short(exit.source)}:${fn} (called from ${short(at)})` } : {}) };
  }
  return undefined;
}

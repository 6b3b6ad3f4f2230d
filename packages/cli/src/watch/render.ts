import { formatDuration, type StepId } from "@stackbus/protocol";
import pc from "picocolors";
import type { Cell, CellStatus, RunView } from "./model.js";
import { describeFailure } from "../follow.js";
import { fit, table, visibleLength } from "../table.js";

/** One symbol per state; every one a single terminal column. */
export const SYMBOL: Record<CellStatus, string> = {
  pending: "·",
  waiting: "…",
  running: "▶",
  ok: "✓",
  failed: "✗",
  timeout: "⧗",
  canceled: "⊘",
  lost: "?",
  skipped: "-",
  carried: "↺",
};

const MEANING: Record<CellStatus, string> = {
  ok: "ok",
  running: "running",
  waiting: "waits for an earlier wave",
  pending: "to come",
  carried: "carried from an earlier attempt",
  failed: "failed",
  timeout: "timed out",
  canceled: "canceled",
  lost: "lost",
  skipped: "not run",
};

/** Step names as column heads when the full names do not fit. */
const SHORT: Partial<Record<StepId, string>> = {
  override_defaults: "ovr-def",
  "pre-install": "pre-ins",
  "post-config": "post-cf",
  "test-config": "test-cf",
};

function colour(status: CellStatus, text: string): string {
  switch (status) {
    case "ok":
      return pc.green(text);
    case "running":
      return pc.cyan(text);
    case "pending":
    case "waiting":
    case "skipped":
    case "carried":
      return pc.dim(text);
    default:
      return pc.red(text);
  }
}

/** A duration in at most 5 columns: 0.4s, 42s, 3m05s, 12m, 1h05m. */
export function shortDuration(ms: number): string {
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)}s`;
  if (ms < 60_000) return `${Math.round(ms / 1000)}s`;
  const s = Math.round(ms / 1000);
  if (s < 600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** One cell's text: status symbol, and elapsed time (running), duration (finished, carried) or the wave it waits for. */
export function cellText(cell: Cell, now: number): string {
  const s = SYMBOL[cell.status];
  switch (cell.status) {
    case "pending":
    case "skipped":
      return s;
    case "waiting":
      return `${s} w${cell.waitsForWave ?? "?"}`;
    case "running":
      return cell.startedAt ? `${s} ${shortDuration(Math.max(0, now - cell.startedAt))}` : s;
    default:
      return cell.durationMs !== null ? `${s} ${shortDuration(cell.durationMs)}` : s;
  }
}

export interface RenderOptions {
  /** Cut every line to this many columns (the terminal's width); none when piped. */
  width?: number | undefined;
  /** Also show the last output lines of this host. */
  tail?: string[];
  tailHost?: string;
}

/** The matrix (a column per step) when it fits the width, else one line per host with a symbol per step. */
function grid(view: RunView, now: number, width: number | undefined): { lines: string[]; shortNames: boolean } {
  const steps = view.steps;
  const hosts = view.hosts;
  const hostWidth = Math.min(16, Math.max(4, ...hosts.map((h) => h.length)));
  const cellWidth = 8;
  const full = Math.max(cellWidth, ...steps.map((s) => s.length + 1));
  const matrix = (col: number) => hostWidth + 3 + steps.length * col;
  const col = width === undefined || matrix(full) <= width ? full : matrix(cellWidth) <= width ? cellWidth : 0;
  const lines: string[] = [];
  if (col > 0) {
    const shortNames = col < full;
    const head = steps.map((s) => fit(shortNames ? (SHORT[s] ?? s) : s, col)).join("");
    lines.push(pc.dim(`${fit("host", hostWidth)} w ${head}`.trimEnd()));
    for (const host of hosts) {
      const cells = steps.map((s) => {
        const cell = view.cell(host, s);
        // The padding stays outside the colour, so the line's end can be trimmed.
        const text = fit(cellText(cell, now), col);
        const shown = text.trimEnd();
        return colour(cell.status, shown) + text.slice(shown.length);
      });
      lines.push(`${fit(host, hostWidth)}${pc.dim(String(view.waveOf(host) ?? "").padStart(2))} ${cells.join("")}`.trimEnd());
    }
    return { lines, shortNames };
  }
  // Too narrow for a column per step: a symbol per step, then where the host is.
  lines.push(pc.dim(`${fit("host", hostWidth)} w ${steps.map((s) => s[0]).join("")}`));
  for (const host of hosts) {
    const cells = steps.map((s) => view.cell(host, s));
    const symbols = cells.map((c) => colour(c.status, SYMBOL[c.status])).join("");
    const at = steps.findIndex((s, i) => ["running", "waiting", "failed", "timeout", "lost", "canceled"].includes(cells[i]?.status ?? "pending"));
    const where = at >= 0 ? ` ${steps[at]} ${cellText(cells[at] as Cell, now)}` : "";
    lines.push(`${fit(host, hostWidth)}${pc.dim(String(view.waveOf(host) ?? "").padStart(2))} ${symbols}${where}`);
  }
  return { lines, shortNames: false };
}

/** Items joined two spaces apart, on as many lines as the width needs. */
function wrap(items: string[], width: number | undefined): string[] {
  const lines: string[] = [];
  for (const item of items) {
    const last = lines[lines.length - 1];
    if (last !== undefined && (width === undefined || visibleLength(last) + 2 + visibleLength(item) <= width)) lines[lines.length - 1] = `${last}  ${item}`;
    else lines.push(item);
  }
  return lines.map((l) => pc.dim(l));
}

/** The symbols shown, with what each means; and the short step names, when used. */
function legend(view: RunView, shortNames: boolean, width: number | undefined): string[] {
  const shown = new Set<CellStatus>();
  for (const host of view.hosts) for (const step of view.steps) shown.add(view.cell(host, step).status);
  const order: CellStatus[] = ["ok", "running", "waiting", "pending", "carried", "failed", "timeout", "lost", "canceled", "skipped"];
  const lines = wrap(order.filter((s) => shown.has(s)).map((s) => `${SYMBOL[s]} ${MEANING[s]}`), width);
  const used = view.steps.filter((s) => SHORT[s]);
  if (shortNames && used.length > 0) lines.push(...wrap(used.map((s) => `${SHORT[s]} = ${s}`), width));
  return lines;
}

/** What the running step does now: each running host's hook and its time, and its last line; who waits. */
function current(view: RunView, now: number): string[] {
  const pos = view.position();
  if (!pos || pos.hosts.length === 0) return [];
  const { done, total } = view.progressOf(pos.step);
  const lines = ["", `${pc.bold(pos.step)}${view.wavesCount(pos.step) > 1 ? ` wave ${pos.wave}` : ""}: ${done}/${total} hosts done`];
  const hostWidth = Math.max(4, ...pos.hosts.map((h) => h.length));
  for (const host of pos.hosts) {
    const cell = view.cell(host, pos.step);
    if (cell.status !== "running" && cell.status !== "pending") continue;
    const hookTime = cell.hookStartedAt !== undefined ? ` ${shortDuration(Math.max(0, now - cell.hookStartedAt))}` : "";
    const bytes = cell.total ? ` ${formatBytes(cell.done ?? 0)}/${formatBytes(cell.total)}` : "";
    const activity = cell.activity && cell.activity !== cell.hook ? pc.dim(` ${cell.activity}`) : "";
    const last = view.lastLine(host, pos.step);
    lines.push(`  ${fit(host, hostWidth)} ${cell.hook ? pc.cyan(cell.hook) : pc.dim("(starting)")}${hookTime}${bytes}${activity}${last ? pc.dim(`  | ${last}`) : ""}`);
  }
  const waiting = view.participants(pos.step).filter((h) => view.cell(h, pos.step).status === "waiting");
  if (waiting.length > 0) lines.push(pc.dim(`  ${waiting.join(", ")}: waiting for wave ${pos.wave} to finish ${pos.step}`));
  return lines;
}

/** The command that resumes this run. */
export function resumeCommand(view: RunView): string | undefined {
  const spec = view.spec;
  if (!spec || (view.status !== "failed" && view.status !== "canceled")) return undefined;
  return `stackbus ${spec.kind} --resume ${spec.runId} --lab ${spec.lab} --wait`;
}

/**
 * The live view: the run's state, a legend, hosts x steps, what each running host does now
 * (its hook, the hook's time, its last output line), who waits for an earlier wave, failures
 * with the failing command and output, and the command that resumes a failed run. With a
 * width, every line is cut to it, so nothing wraps.
 */
export function renderMatrix(view: RunView, now: number, options: RenderOptions = {}): string {
  const spec = view.spec;
  if (!spec) return pc.dim("waiting for the run to start...");
  const width = options.width;
  const elapsed = formatDuration((view.finishedAt ?? now) - view.startedAt);
  const state = view.finished ? (view.status === "succeeded" ? pc.green(view.status) : pc.red(view.status)) : pc.cyan("running");
  const { lines: rows, shortNames } = grid(view, now, width);
  const lines = [`${pc.bold(`${spec.kind} ${spec.runId}`)}  lab ${spec.lab}  attempt ${view.attempt}  ${state}  ${elapsed}`, ...legend(view, shortNames, width), ...rows, ...current(view, now)];
  const failed = view.failures.length > 0 ? view.failures : view.hosts.flatMap((h) => view.steps.flatMap((s) => (view.cell(h, s).status === "carried" ? [] : view.cell(h, s).failures)));
  if (failed.length > 0) {
    lines.push("");
    for (const f of failed.slice(0, 5)) lines.push(...describeFailure(f, "", options.tailHost ? 0 : 5).split("\n"));
    if (failed.length > 5) lines.push(pc.dim(`  ... and ${failed.length - 5} more (stackbus status ${spec.runId})`));
  }
  if (options.tailHost && options.tail && options.tail.length > 0) {
    lines.push("", pc.bold(`last output of ${options.tailHost}:`));
    for (const l of options.tail.slice(-10)) lines.push(pc.dim(`  | ${l}`));
  }
  const resume = resumeCommand(view);
  if (resume) lines.push("", `resume with: ${pc.bold(resume)}`);
  return lines.map((l) => (width !== undefined && visibleLength(l) > width ? fit(l, width) : l)).join("\n");
}

/**
 * The end-of-run summary, in compact tables: per step its wall time, the slowest host and the
 * slowest hook there; per hook its time on each host (when the hosts fit the width) and its
 * wall time across the lab; the attempt's total wall time.
 */
export function renderSummary(view: RunView, width?: number): string {
  const lines: string[] = [];
  const steps = view.slowest();
  const rows = steps.map((s) => [s.step, s.wallMs !== null ? formatDuration(s.wallMs) : "-", s.host, formatDuration(s.durationMs), s.hook ?? "-", s.hook ? formatDuration(s.hookMs) : "-"]);
  const total = (view.finishedAt ?? Date.now()) - (view.attemptStartedAt || view.startedAt);
  rows.push([pc.bold("total"), pc.bold(formatDuration(Math.max(0, total))), "", "", "", ""]);
  lines.push(pc.bold("Steps (wall time; the slowest host and its slowest hook)"), table(["step", "wall", "slowest host", "time", "slowest hook there", "hook time"], rows, { width, right: [1, 3, 5] }));
  const times = view.hookTimes();
  if (times.length > 0) {
    const hosts = view.hosts;
    const perHost = times.map((r) => [r.step, r.hook, ...hosts.map((h) => (r.byHost[h] !== undefined ? formatDuration(r.byHost[h] as number) : "-")), formatDuration(r.wallMs)]);
    const wide = table(["step", "hook", ...hosts, "wall"], perHost, { right: hosts.map((_, i) => i + 2).concat(hosts.length + 2) });
    const fits = width === undefined || wide.split("\n").every((l) => visibleLength(l) <= width);
    let text = wide;
    if (!fits) {
      const slowest = times.map((r) => {
        const [host, ms] = Object.entries(r.byHost).sort((a, b) => b[1] - a[1])[0] ?? ["-", 0];
        return [r.step, r.hook, host, formatDuration(ms), formatDuration(r.wallMs)];
      });
      text = table(["step", "hook", "slowest host", "time", "wall"], slowest, { width, right: [3, 4] });
    }
    lines.push("", pc.bold("Hooks (time on each host; wall: the slowest host of each wave)"), text);
  }
  return lines.join("\n");
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n}B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)}KiB`;
  return `${(n / 1024 / 1024).toFixed(1)}MiB`;
}

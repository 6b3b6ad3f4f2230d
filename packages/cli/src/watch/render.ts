import { formatDuration, type StepId } from "@stackbus/protocol";
import pc from "picocolors";
import Table from "cli-table3";
import type { Cell, RunView } from "./model.js";
import { describeFailure } from "../follow.js";

const SYMBOL: Record<Cell["status"], string> = {
  pending: "·",
  running: "▶",
  ok: "✓",
  failed: "✗",
  timeout: "⏱",
  canceled: "⊘",
  lost: "?",
  skipped: "-",
};

function colour(status: Cell["status"], text: string): string {
  switch (status) {
    case "ok":
      return pc.green(text);
    case "running":
      return pc.cyan(text);
    case "pending":
    case "skipped":
      return pc.dim(text);
    default:
      return pc.red(text);
  }
}

/** One cell's text: status symbol and elapsed time (running) or duration (finished). */
export function cellText(cell: Cell, now: number): string {
  if (cell.status === "pending") return SYMBOL.pending;
  if (cell.status === "running") {
    const elapsed = cell.startedAt ? formatDuration(Math.max(0, now - cell.startedAt)) : "";
    return `${SYMBOL.running} ${elapsed}`;
  }
  if (cell.status === "skipped") return SYMBOL.skipped;
  return `${SYMBOL[cell.status]} ${cell.durationMs != null ? formatDuration(cell.durationMs) : ""}`.trim();
}

const pad = (text: string, width: number) => text + " ".repeat(Math.max(0, width - text.length));

/**
 * The live matrix: a row per host, a column per step, each cell pending, running with
 * elapsed time, ok with duration, or failed; then the hook each host is running now, and
 * the last output lines of a failed (or chosen) host.
 */
export function renderMatrix(view: RunView, now: number, options: { tail?: string[]; tailHost?: string; width?: number } = {}): string {
  const spec = view.spec;
  if (!spec) return pc.dim("waiting for the run to start...");
  const steps = view.steps;
  const hosts = view.hosts;
  const hostWidth = Math.max(4, ...hosts.map((h) => h.length));
  const colWidth = Math.max(11, ...steps.map((s) => s.length)) + 1;
  const lines: string[] = [];
  const elapsed = formatDuration((view.finishedAt ?? now) - view.startedAt);
  const state = view.finished ? (view.status === "succeeded" ? pc.green(view.status) : pc.red(view.status)) : pc.cyan("running");
  lines.push(`${pc.bold(`${spec.kind} ${spec.runId}`)}  lab ${spec.lab}  attempt ${view.attempt}  ${state}  ${elapsed}`);
  lines.push(pc.dim(pad("host", hostWidth + 2) + steps.map((s) => pad(s, colWidth)).join("")));
  for (const host of hosts) {
    const wave = spec.hosts.find((h) => h.name === host)?.wave;
    const cells = steps.map((s) => {
      const cell = view.cell(host, s);
      return colour(cell.status, pad(cellText(cell, now), colWidth));
    });
    lines.push(`${pad(host, hostWidth)}${pc.dim(String(wave ?? "").padStart(2))}${cells.join("")}`);
  }
  const current = steps.find((s) => hosts.some((h) => view.cell(h, s).status === "running"));
  if (current) {
    const { done, total } = view.progressOf(current);
    lines.push("", `${pc.bold(current)}: ${done}/${total} hosts done`);
    for (const host of hosts) {
      const cell = view.cell(host, current);
      if (cell.status !== "running") continue;
      const bytes = cell.total ? ` ${formatBytes(cell.done ?? 0)}/${formatBytes(cell.total)}` : "";
      const activity = cell.activity && cell.activity !== cell.hook ? pc.dim(` ${cell.activity}`) : "";
      lines.push(`  ${pad(host, hostWidth)} ${cell.hook ? pc.cyan(cell.hook) : pc.dim("(starting)")}${bytes}${activity}`);
    }
  }
  const failed = view.failures.length > 0 ? view.failures : hosts.flatMap((h) => steps.flatMap((s) => view.cell(h, s).failures));
  if (failed.length > 0) {
    lines.push("");
    for (const f of failed.slice(0, 5)) lines.push(describeFailure(f, "", options.tailHost ? 0 : 8));
  }
  if (options.tailHost && options.tail && options.tail.length > 0) {
    lines.push("", pc.bold(`last output of ${options.tailHost}:`));
    for (const l of options.tail.slice(-10)) lines.push(pc.dim(`  | ${l}`));
  }
  return lines.map((l) => (options.width ? l.slice(0, options.width + 40) : l)).join("\n");
}

/** The end-of-run summary: per step the slowest host and hook; per hook its time on each host. */
export function renderSummary(view: RunView): string {
  const lines: string[] = [];
  const slow = new Table({ head: ["step", "slowest host", "time", "slowest hook there", "hook time"], style: { head: [], border: [] } });
  for (const s of view.slowest()) slow.push([s.step, s.host, formatDuration(s.durationMs), s.hook ?? "-", s.hook ? formatDuration(s.hookMs) : "-"]);
  lines.push(pc.bold("Slowest host and hook per step"), slow.toString());
  const times = view.hookTimes().filter((r) => r.totalMs > 0 || Object.keys(r.byHost).length > 0);
  if (times.length > 0) {
    const hosts = view.hosts;
    const table = new Table({ head: ["step", "hook", ...hosts, "total"], style: { head: [], border: [] } });
    for (const r of times) table.push([r.step, r.hook, ...hosts.map((h) => (r.byHost[h] !== undefined ? formatDuration(r.byHost[h] as number) : "-")), formatDuration(r.totalMs)]);
    lines.push("", pc.bold("Hook times on each host"), table.toString());
  }
  return lines.join("\n");
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n}B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)}KiB`;
  return `${(n / 1024 / 1024).toFixed(1)}MiB`;
}

export type { StepId };

import { stepsOf, type Failure, type HookResult, type Progress, type RunEvent, type RunSpec, type StepId, type StepResult } from "@stackbus/protocol";
import type { RunRecordItem } from "../follow.js";

export type CellStatus = "pending" | "running" | "ok" | "failed" | "timeout" | "canceled" | "lost" | "skipped";

export interface Cell {
  status: CellStatus;
  startedAt: number | null;
  durationMs: number | null;
  /** The hook running now (live progress), when running. */
  hook: string | null;
  /** What the host says it is doing (DevStack's echo_summary lines), when running. */
  activity?: string;
  /** Bytes done/total of long work (plugin download), when known. */
  done?: number;
  total?: number;
  hooks: HookResult[];
  failures: Failure[];
}

/**
 * A run as people watch it: hosts x steps, folded from the run's stored events and
 * results (and live progress), for the terminal view, plain lines and summaries.
 */
export class RunView {
  spec: RunSpec | undefined;
  attempt = 0;
  steps: StepId[] = [];
  status: "running" | "succeeded" | "failed" | "canceled" = "running";
  startedAt = 0;
  finishedAt: number | null = null;
  failures: Failure[] = [];
  readonly cells = new Map<string, Map<StepId, Cell>>();
  readonly stepStarted = new Map<StepId, number>();
  readonly stepDuration = new Map<StepId, number>();

  get hosts(): string[] {
    return this.spec ? [...this.spec.hosts].sort((a, b) => a.wave - b.wave || a.name.localeCompare(b.name)).map((h) => h.name) : [];
  }

  /** The hosts of a step: every host, but for `finally`, those its commands name. */
  participants(step: StepId): string[] {
    if (step !== "finally" || !this.spec) return this.hosts;
    const named = new Set(this.spec.finally.flatMap((f) => f.hosts));
    return this.hosts.filter((h) => named.has(h));
  }

  get finished(): boolean {
    return this.status !== "running";
  }

  cell(host: string, step: StepId): Cell {
    let row = this.cells.get(host);
    if (!row) this.cells.set(host, (row = new Map()));
    let cell = row.get(step);
    if (!cell) row.set(step, (cell = { status: "pending", startedAt: null, durationMs: null, hook: null, hooks: [], failures: [] }));
    return cell;
  }

  apply(item: RunRecordItem): void {
    if (item.kind === "result") this.#result(item.result);
    else this.#event(item.event);
  }

  #event(e: RunEvent): void {
    switch (e.type) {
      case "run.created":
        this.spec = e.spec;
        this.startedAt = e.at;
        this.steps = stepsOf(e.spec.kind).map((s) => s.id);
        return;
      case "run.attempt":
        this.attempt = e.attempt;
        for (const step of e.steps) if (!this.steps.includes(step)) this.steps.push(step);
        this.status = "running";
        this.finishedAt = null;
        for (const step of e.steps) {
          for (const host of this.participants(step)) {
            if (e.carried[step]?.includes(host)) continue;
            const c = this.cell(host, step);
            if (e.attempt > 1) Object.assign(c, { status: "pending", startedAt: null, durationMs: null, hook: null, hooks: [], failures: [] });
          }
        }
        return;
      case "step.started":
        if (!this.stepStarted.has(e.step)) this.stepStarted.set(e.step, e.at);
        for (const h of e.hosts) {
          const c = this.cell(h, e.step);
          if (c.status === "pending") Object.assign(c, { status: "running", startedAt: e.at });
        }
        return;
      case "host.acked": {
        const c = this.cell(e.host, e.step);
        if (c.status === "pending") Object.assign(c, { status: "running", startedAt: e.at });
        return;
      }
      case "host.finished": {
        const c = this.cell(e.host, e.step);
        Object.assign(c, { status: e.status, durationMs: e.durationMs, hook: null, failures: e.failures });
        c.startedAt ??= e.at - e.durationMs;
        return;
      }
      case "step.finished":
        this.stepDuration.set(e.step, e.durationMs);
        return;
      case "run.cancel-requested":
        return;
      case "run.finished":
        this.status = e.status;
        this.finishedAt = e.at;
        this.failures = e.failures;
        for (const row of this.cells.values()) for (const c of row.values()) if (c.status === "running") c.status = e.status === "canceled" ? "canceled" : "lost";
        for (const step of this.steps) for (const host of this.participants(step)) if (this.cell(host, step).status === "pending") this.cell(host, step).status = "skipped";
        return;
    }
  }

  #result(r: StepResult): void {
    if (r.attempt !== this.attempt) return;
    const c = this.cell(r.host, r.step);
    Object.assign(c, { status: r.status, durationMs: r.durationMs, startedAt: r.startedAt, hook: null, hooks: r.hooks, failures: r.failures });
  }

  applyProgress(p: Progress): void {
    if (p.attempt !== this.attempt) return;
    const c = this.cell(p.host, p.step);
    if (c.status !== "pending" && c.status !== "running") return;
    c.status = "running";
    c.startedAt ??= p.at;
    c.hook = p.hook;
    if (p.activity !== undefined) c.activity = p.activity;
    if (p.done !== undefined) c.done = p.done;
    if (p.total !== undefined) c.total = p.total;
  }

  /** Hosts done of total for a step. */
  progressOf(step: StepId): { done: number; total: number } {
    const hosts = this.participants(step);
    const done = hosts.filter((h) => !["pending", "running"].includes(this.cell(h, step).status)).length;
    return { done, total: hosts.length };
  }

  /** Per step: the slowest host and the slowest hook on it. */
  slowest(): Array<{ step: StepId; host: string; durationMs: number; hook: string | null; hookMs: number }> {
    const out = [];
    for (const step of this.steps) {
      let best: { host: string; durationMs: number } | undefined;
      for (const host of this.hosts) {
        const c = this.cells.get(host)?.get(step);
        if (c?.durationMs != null && (!best || c.durationMs > best.durationMs)) best = { host, durationMs: c.durationMs };
      }
      if (!best) continue;
      const hooks = this.cell(best.host, step).hooks;
      const slowHook = hooks.reduce<HookResult | undefined>((a, h) => (!a || h.durationMs > a.durationMs ? h : a), undefined);
      out.push({ step, host: best.host, durationMs: best.durationMs, hook: slowHook?.hook ?? null, hookMs: slowHook?.durationMs ?? 0 });
    }
    return out;
  }

  /** Per hook (step and name): its time on each host, like DevStack's timing totals across hosts. */
  hookTimes(): Array<{ step: StepId; hook: string; byHost: Record<string, number>; totalMs: number }> {
    const rows = new Map<string, { step: StepId; hook: string; byHost: Record<string, number>; totalMs: number }>();
    for (const step of this.steps) {
      for (const host of this.hosts) {
        for (const h of this.cells.get(host)?.get(step)?.hooks ?? []) {
          const key = `${step}\0${h.hook}`;
          let row = rows.get(key);
          if (!row) rows.set(key, (row = { step, hook: h.hook, byHost: {}, totalMs: 0 }));
          row.byHost[host] = (row.byHost[host] ?? 0) + h.durationMs;
          row.totalMs += h.durationMs;
        }
      }
    }
    return [...rows.values()];
  }
}

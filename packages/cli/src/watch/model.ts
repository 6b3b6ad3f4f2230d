import { FINALLY_STEP, stepsOf, type Failure, type HookResult, type LogBatch, type Progress, type RunSpec, type StepId } from "@stackbus/protocol";
import { RunMachine } from "@stackbus/engine";
import type { RunRecordItem } from "../follow.js";

/**
 * What a cell shows: the engine's state of the host in the step, plus what only a watcher
 * distinguishes: `waiting` (the step is running, the host's wave has not started it yet),
 * `carried` (done in an earlier attempt; this attempt does not run it), `skipped` (the run
 * ended before it).
 */
export type CellStatus = "pending" | "waiting" | "running" | "ok" | "failed" | "timeout" | "canceled" | "lost" | "skipped" | "carried";

export interface Cell {
  status: CellStatus;
  /** When the host started the step (running), or started it (finished). */
  startedAt: number | null;
  durationMs: number | null;
  /** `waiting`: the wave the step is at now. */
  waitsForWave?: number;
  /** The hook running now (live progress), when running, and since when. */
  hook: string | null;
  hookStartedAt?: number;
  /** What the host says it is doing (DevStack's echo_summary lines), when running. */
  activity?: string;
  /** Bytes done/total of long work (plugin download), when known. */
  done?: number;
  total?: number;
  hooks: HookResult[];
  failures: Failure[];
}

const FINAL = new Set(["ok", "failed", "timeout", "canceled", "lost", "skipped"]);
const key = (host: string, step: StepId) => `${host}\0${step}`;

/**
 * A run as people watch it: hosts x steps. The state comes from the engine's own projection
 * (`RunMachine`, fed the run's stored events and results exactly as the coordinator is);
 * the view adds only what the engine does not keep: hook timings per result, live progress
 * and the last line each host printed.
 */
export class RunView {
  machine: RunMachine | undefined;
  /** When the current attempt started. */
  attemptStartedAt = 0;
  failures: Failure[] = [];
  readonly stepWall = new Map<StepId, number>();
  readonly #waveStarted = new Map<string, number>();
  readonly #hooks = new Map<string, { attempt: number; hooks: HookResult[] }>();
  readonly #live = new Map<string, Progress>();
  readonly #lastLine = new Map<string, { attempt: number; step: StepId; hook: string; text: string }>();
  #position: ReturnType<RunMachine["position"]> | null = null;

  get spec(): RunSpec | undefined {
    return this.machine?.spec;
  }

  get attempt(): number {
    return this.machine?.attempt ?? 0;
  }

  get status(): RunMachine["status"] {
    return this.machine?.status ?? "running";
  }

  get finished(): boolean {
    return this.machine?.finished ?? false;
  }

  get startedAt(): number {
    return this.machine?.startedAt ?? 0;
  }

  get finishedAt(): number | null {
    return this.machine?.finishedAt ?? null;
  }

  /** Every step of the run's kind (and `finally` when the run has one), in order. */
  get steps(): StepId[] {
    const spec = this.spec;
    if (!spec) return [];
    const steps = stepsOf(spec.kind).map((s) => s.id);
    return spec.finally.length > 0 ? [...steps, FINALLY_STEP.id] : steps;
  }

  get hosts(): string[] {
    return this.spec ? [...this.spec.hosts].sort((a, b) => a.wave - b.wave || a.name.localeCompare(b.name)).map((h) => h.name) : [];
  }

  waveOf(host: string): number | undefined {
    return this.spec?.hosts.find((h) => h.name === host)?.wave;
  }

  /** How many waves take `step` one after the other (1 where wave order does not hold). */
  wavesCount(step: StepId): number {
    return this.machine?.wavesOf(step).length ?? 1;
  }

  /** The hosts of a step: every host, but for `finally`, those its commands name. */
  participants(step: StepId): string[] {
    if (!this.machine) return [];
    const named = new Set(this.machine.participants(step).map((h) => h.name));
    return this.hosts.filter((h) => named.has(h));
  }

  /** The step and wave the run is at, and the hosts that must answer it (the engine's). */
  position(): ReturnType<RunMachine["position"]> {
    if (!this.machine || this.machine.finished) return undefined;
    this.#position ??= this.machine.position() ?? null;
    return this.#position ?? undefined;
  }

  apply(item: RunRecordItem): void {
    this.#position = null;
    if (item.kind === "result") {
      const r = item.result;
      if (this.machine?.applyResult(r)) this.#hooks.set(key(r.host, r.step), { attempt: r.attempt, hooks: r.hooks });
      return;
    }
    const e = item.event;
    if (e.type === "run.created") {
      this.machine = new RunMachine(e.spec);
      return;
    }
    if (!this.machine) return;
    const before = this.machine.attempt;
    this.machine.applyEvent(e);
    switch (e.type) {
      case "run.attempt":
        if (this.machine.attempt > before) {
          this.attemptStartedAt = e.at;
          this.#waveStarted.clear();
          this.#live.clear();
          this.failures = [];
        }
        return;
      case "step.started":
        if (e.attempt === this.machine.attempt) this.#waveStarted.set(`${e.step}:${e.wave}`, e.at);
        return;
      case "step.finished":
        if (e.attempt === this.machine.attempt) this.stepWall.set(e.step, e.durationMs);
        return;
      case "run.finished":
        if (e.attempt === this.machine.attempt) this.failures = e.failures;
        return;
      default:
        return;
    }
  }

  applyProgress(p: Progress): void {
    if (p.attempt !== this.attempt) return;
    const k = key(p.host, p.step);
    const before = this.#live.get(k);
    // A new hook starts its own clock; the same hook reporting bytes or activity keeps it.
    this.#live.set(k, before && before.hook === p.hook ? { ...before, ...p, at: before.at } : p);
  }

  /** Keeps the last line each host printed (of its latest attempt; shown while that attempt runs). */
  applyLog(batch: LogBatch): void {
    if (batch.attempt < (this.#lastLine.get(batch.host)?.attempt ?? 0)) return;
    const line = batch.lines.filter((l) => l.text.trim() !== "").at(-1);
    if (line) this.#lastLine.set(batch.host, { attempt: batch.attempt, step: batch.step, hook: line.hook, text: line.text });
  }

  /** The last line `host` printed during `step` of this attempt. */
  lastLine(host: string, step: StepId): string | undefined {
    const l = this.#lastLine.get(host);
    return l && l.attempt === this.attempt && l.step === step ? l.text : undefined;
  }

  cell(host: string, step: StepId): Cell {
    const m = this.machine;
    const state = m?.cells.get(host)?.get(step);
    const hooks = this.#hooks.get(key(host, step));
    const base: Cell = { status: "pending", startedAt: null, durationMs: null, hook: null, hooks: [], failures: [] };
    if (!m || !state) return base;
    const cell: Cell = { ...base, startedAt: state.startedAt, durationMs: state.durationMs, failures: state.failures };
    if (hooks && hooks.attempt === state.attempt) cell.hooks = hooks.hooks;
    if (FINAL.has(state.status) && state.attempt < m.attempt) return { ...cell, status: "carried" };
    if (FINAL.has(state.status)) return { ...cell, status: state.status as CellStatus };
    if (m.finished) return { ...cell, status: state.status === "running" ? (m.status === "canceled" ? "canceled" : "lost") : "skipped" };
    if (m.isCarried(step, host)) return { ...cell, status: "carried" };
    const pos = this.position();
    if (pos?.step !== step) return cell;
    if (pos.hosts.includes(host)) {
      const live = this.#live.get(key(host, step));
      const since = state.startedAt ?? this.#waveStarted.get(`${step}:${pos.wave}`) ?? null;
      return {
        ...cell,
        status: since === null ? "pending" : "running",
        startedAt: since,
        hook: live?.hook ?? null,
        ...(live ? { hookStartedAt: live.at } : {}),
        ...(live?.activity !== undefined ? { activity: live.activity } : {}),
        ...(live?.done !== undefined ? { done: live.done } : {}),
        ...(live?.total !== undefined ? { total: live.total } : {}),
      };
    }
    const wave = this.waveOf(host);
    if (m.waveOrdered(step) && wave !== undefined && wave > pos.wave) return { ...cell, status: "waiting", waitsForWave: pos.wave };
    return cell;
  }

  /** Hosts done of total for a step. */
  progressOf(step: StepId): { done: number; total: number } {
    const hosts = this.participants(step);
    const done = hosts.filter((h) => !["pending", "running", "waiting"].includes(this.cell(h, step).status)).length;
    return { done, total: hosts.length };
  }

  /** Per step this attempt ran: its wall time, the slowest host and the slowest hook on it. */
  slowest(): Array<{ step: StepId; wallMs: number | null; host: string; durationMs: number; hook: string | null; hookMs: number }> {
    const out = [];
    for (const step of this.steps) {
      let best: { host: string; durationMs: number } | undefined;
      for (const host of this.participants(step)) {
        const c = this.cell(host, step);
        if (c.status === "carried" || c.durationMs === null) continue;
        if (!best || c.durationMs > best.durationMs) best = { host, durationMs: c.durationMs };
      }
      if (!best) continue;
      const slowHook = this.cell(best.host, step).hooks.reduce<HookResult | undefined>((a, h) => (!a || h.durationMs > a.durationMs ? h : a), undefined);
      out.push({ step, wallMs: this.stepWall.get(step) ?? null, host: best.host, durationMs: best.durationMs, hook: slowHook?.hook ?? null, hookMs: slowHook?.durationMs ?? 0 });
    }
    return out;
  }

  /**
   * Per hook (step and name): its time on each host this attempt, and its wall time across the
   * lab: the slowest host of each wave, waves added where the step keeps wave order (hosts of
   * one wave run it at once), never host times added.
   */
  hookTimes(): Array<{ step: StepId; hook: string; byHost: Record<string, number>; wallMs: number }> {
    const rows = new Map<string, { step: StepId; hook: string; byHost: Record<string, number>; wallMs: number }>();
    for (const step of this.steps) {
      for (const host of this.participants(step)) {
        const c = this.cell(host, step);
        if (c.status === "carried") continue;
        for (const h of c.hooks) {
          const k = `${step}\0${h.hook}`;
          let row = rows.get(k);
          if (!row) rows.set(k, (row = { step, hook: h.hook, byHost: {}, wallMs: 0 }));
          row.byHost[host] = (row.byHost[host] ?? 0) + h.durationMs;
        }
      }
    }
    for (const row of rows.values()) {
      const ordered = this.machine?.waveOrdered(row.step) ?? true;
      const perWave = new Map<number, number>();
      for (const [host, ms] of Object.entries(row.byHost)) {
        const wave = ordered ? (this.waveOf(host) ?? 0) : 0;
        perWave.set(wave, Math.max(perWave.get(wave) ?? 0, ms));
      }
      row.wallMs = [...perWave.values()].reduce((a, b) => a + b, 0);
    }
    return [...rows.values()];
  }
}

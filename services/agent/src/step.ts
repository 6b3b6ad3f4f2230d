import { readFileSync, statSync, writeFileSync } from "node:fs";
import { factsDeclaration, parseFactsFile } from "@stackbus/bashlib";
import {
  ErrorCode,
  StackbusError,
  type Failure,
  type Facts,
  type HookResult,
  type MergeGroup,
  type Step,
  type StepResult,
  type StepStatus,
} from "@stackbus/protocol";
import type { BashSession, HookRun, HookSpec } from "./session.js";
import { hooksFor, type HookPlaces, type InstalledPlugin } from "./hooks.js";
import type { OutputLog } from "./output.js";

/** Applies one local.conf merge group in the live session; throws a coded error naming the problem. */
export type MergeRunner = (group: MergeGroup) => Promise<{ files: string[]; warnings: string[] }>;

export interface StepContext {
  lab: string;
  host: string;
  runId: string;
  attempt: number;
  topDir: string;
  session: BashSession;
  out: OutputLog;
  plugins: readonly InstalledPlugin[];
  /** With --devstack-dir: the checkout and the run's directory of links to it (see HookPlaces). */
  devstack?: HookPlaces["devstack"];
  factsFile: string;
  merge: MergeRunner;
  /** Told which hooks run now, so output lines can be attributed. */
  setBatch: (hooks: readonly HookSpec[] | null) => void;
  /**
   * Told the hook (or merge) now running, for heartbeats and the live view: only one that
   * has run for a while (LIVE_AFTER_MS), again every LIVE_AGAIN_MS while it runs; a quick
   * hook is told of by its step's result alone.
   */
  onHook: (hook: string) => void;
  /**
   * In steps without errexit (unstack, clean): `warn` makes a failing hook a warning on the
   * result, as DevStack's unstack.sh and clean.sh go on past it; `fail` fails the step.
   * @default "warn"
   */
  unstackErrors?: "warn" | "fail";
  /** Told when a hook calls die in a step without errexit (it ends that DevStack script's hooks). */
  onDied?: (hook: string) => void;
}

/**
 * Runs one step of the phase model on this host: its actions in order, hooks in batches
 * in the run's session, merges between them, then collects facts and strays.
 */
export async function executeStep(ctx: StepContext, step: Step, facts: Facts, startedAt: number): Promise<StepResult> {
  const hooks: HookResult[] = [];
  const failures: Failure[] = [];
  const warnings: string[] = [];
  let status: StepStatus = "ok";

  // The other hosts' exported values, readable with `stackbus_fact HOST VAR`: sent with the first batch.
  let prelude: string | undefined = Object.keys(facts).length > 0 ? factsDeclaration(facts) : undefined;
  let batch: HookSpec[] = [];
  const flush = async (): Promise<boolean> => {
    if (batch.length === 0) return true;
    const specs = batch;
    batch = [];
    ctx.setBatch(specs);
    let runs: HookRun[];
    try {
      runs = await runBatchReporting(ctx, specs, step.errexit, prelude);
      prelude = undefined;
    } finally {
      ctx.setBatch(null);
    }
    status = foldRuns(ctx, step, runs, { hooks, failures, warnings }, status);
    if (ctx.session.ended) return false;
    return !(step.errexit && failures.length > 0);
  };

  let go = true;
  for (const action of step.actions) {
    if (!go) break;
    if (action.kind === "merge") {
      go = await flush();
      if (!go) break;
      const name = `merge [[${action.group}|...]]`;
      const t0 = Date.now();
      const live = setTimeout(() => ctx.onHook(name), LIVE_MERGE_MS);
      try {
        const outcome = await ctx.merge(action.group);
        warnings.push(...outcome.warnings);
        for (const f of outcome.files) ctx.out.line(name, "agent", `merged into ${f}`);
        if (outcome.files.length > 0 || outcome.warnings.length > 0) {
          hooks.push({ hook: name, command: `merge_config_group local.conf ${action.group}`, status: "ok", durationMs: Date.now() - t0, exitCode: 0, signal: null });
        }
      } catch (err) {
        const e = err instanceof StackbusError ? err : new StackbusError(ErrorCode.MergeFailed, String((err as Error).message ?? err));
        ctx.out.line(name, "agent", e.message);
        hooks.push({ hook: name, command: `merge_config_group local.conf ${action.group}`, status: "failed", durationMs: Date.now() - t0, exitCode: null, signal: null });
        failures.push({ host: ctx.host, step: step.id, reason: "merge", hook: name, exitCode: null, signal: null, message: e.message, outputTail: [] });
        status = "failed";
        go = !step.errexit;
      } finally {
        clearTimeout(live);
      }
      continue;
    }
    batch.push(...hooksFor(action, { topDir: ctx.topDir, plugins: ctx.plugins, devstack: ctx.devstack }));
  }
  if (go) await flush();

  if (ctx.session.ended && failures.length === 0) {
    failures.push({
      host: ctx.host,
      step: step.id,
      reason: "session",
      hook: null,
      exitCode: ctx.session.exitCode,
      signal: null,
      message: "the hook session ended during the step",
      outputTail: [],
    });
    status = "failed";
  }

  const exported = ctx.session.ended ? {} : readFacts(ctx.factsFile);
  if (!ctx.session.ended) {
    for (const stray of await ctx.session.strayProcesses()) {
      warnings.push(`process ${stray.pid} (${stray.command}) started by a hook of ${step.label} is still running`);
    }
  }
  await ctx.out.flush();
  const finishedAt = Date.now();
  return {
    lab: ctx.lab,
    runId: ctx.runId,
    host: ctx.host,
    attempt: ctx.attempt,
    step: step.id,
    status,
    startedAt,
    finishedAt,
    durationMs: finishedAt - startedAt,
    hooks,
    failures,
    facts: exported,
    warnings,
  };
}

/** Adds a batch's hook runs to the step's hooks, failures and warnings; returns the step's status so far. */
function foldRuns(ctx: StepContext, step: Step, runs: HookRun[], acc: { hooks: HookResult[]; failures: Failure[]; warnings: string[] }, status: StepStatus): StepStatus {
  const { hooks, failures, warnings } = acc;
  for (const run of runs) {
    if (run.status === "skipped" || run.status === "pending") {
      if (run.skipReason === "stopped" || run.skipReason === "session ended") {
        hooks.push(hookResult(run, "skipped"));
      }
      continue;
    }
    hooks.push(hookResult(run, run.status));
    if (run.died && !step.errexit) ctx.onDied?.(run.name);
    if (run.status === "failed" && !step.errexit && (ctx.unstackErrors ?? "warn") === "warn") {
      warnings.push(run.died ? `${describeFailure(run, ctx.topDir)}: the rest of this script's hooks on ${ctx.host} do not run, as DevStack's die ends it` : `${describeFailure(run, ctx.topDir)} (DevStack's unstack.sh and clean.sh go on past it)`);
      continue;
    }
    if (run.status !== "ok") {
      const reason = run.status === "failed" ? "hook" : run.status;
      failures.push({
        host: ctx.host,
        step: step.id,
        reason,
        hook: run.name,
        exitCode: run.exitCode,
        signal: run.signal,
        message: describeFailure(run, ctx.topDir),
        outputTail: ctx.out.tail(run.name),
        ...(run.command !== undefined && run.location ? { command: run.command, location: shortPath(run.location, ctx.topDir) } : {}),
      });
      if (run.status === "timeout") status = "timeout";
      else if (run.status === "canceled") status = "canceled";
      else if (status === "ok") status = "failed";
    }
  }
  return status;
}

/** How long a hook runs before the live view is told of it (a merge: LIVE_MERGE_MS). */
export const LIVE_AFTER_MS = 25;
const LIVE_MERGE_MS = 200;
/**
 * How often the live view is told again of a hook that goes on running: a watcher that
 * attaches late (progress is not stored) learns the hook before its output's next batch.
 */
const LIVE_AGAIN_MS = 200;

/**
 * Runs a batch and reports to `onHook` each hook that is still running LIVE_AFTER_MS after
 * it started, then every LIVE_AGAIN_MS while it runs; a hook that ends sooner is told of by
 * its step's result alone. The look comes after the I/O already waiting has been read, so
 * a hook whose end record is in the pipe is not reported as running.
 */
async function runBatchReporting(ctx: StepContext, specs: HookSpec[], errexit: boolean, prelude: string | undefined): Promise<HookRun[]> {
  let timer: NodeJS.Timeout | undefined;
  const tell = (i: number, after: number) => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      setImmediate(() => {
        const spec = specs[i];
        if (ctx.session.currentHook !== i || !spec) return;
        ctx.onHook(spec.name);
        tell(i, LIVE_AGAIN_MS);
      });
    }, after);
  };
  ctx.session.onHookStart = (i) => tell(i, LIVE_AFTER_MS);
  try {
    return await ctx.session.runBatch(specs, errexit, prelude);
  } finally {
    ctx.session.onHookStart = undefined;
    clearTimeout(timer);
  }
}

function hookResult(run: HookRun, status: HookResult["status"]): HookResult {
  const args = run.spec.args.join(" ");
  const command =
    run.spec.kind === "call" || run.spec.kind === "hv-call"
      ? run.spec.target
      : `source ${run.spec.target || run.name}${args ? ` ${args}` : ""}`;
  return { hook: run.name, command, status, durationMs: run.durationMs, exitCode: run.exitCode, signal: run.signal };
}

/** What a failed hook run did, in a sentence: killed, died, or its exit status and the failing command. */
export function describeFailure(run: HookRun, topDir: string): string {
  if (run.status === "timeout") return `${run.name} was killed: the step ran past its timeout`;
  if (run.status === "canceled") return `${run.name} was killed: the run was canceled`;
  if (run.signal) return `${run.name} was killed by ${run.signal}`;
  if (run.died) return `${run.name} called die (exit status ${run.exitCode})`;
  const where = run.command !== undefined && run.location ? `: \`${run.command}\` at ${shortPath(run.location, topDir)}` : "";
  return `${run.name} failed with exit status ${run.exitCode}${where}`;
}

/** A `file:function:line` with the file relative to TOP_DIR when it is inside it. */
function shortPath(location: string, topDir: string): string {
  return location.startsWith(`${topDir}/`) ? location.slice(topDir.length + 1) : location;
}

/** Reads and clears what `stackbus_export` wrote during the step. */
export function readFacts(file: string): Record<string, string> {
  let data: Buffer;
  try {
    if (statSync(file).size === 0) return {};
    data = readFileSync(file);
  } catch {
    return {};
  }
  writeFileSync(file, "", { mode: 0o600 });
  return parseFactsFile(data);
}

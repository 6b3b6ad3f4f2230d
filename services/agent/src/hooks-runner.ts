import type { RunKind, StepId, StepResult } from "@stackbus/protocol";
import type { Bus, Logger } from "@stackbus/bus";
import type { BashSession, HookSpec } from "./session.js";
import { hooksFor, type HookPlaces, type InstalledPlugin } from "./hooks.js";
import { describeFailure, executeStep } from "./step.js";
import { installPlugins, mergeInSession, openSession, SpareSession, type HostDirs } from "./prepare.js";
import { failedResult, originOf, prepareFailed, stepResult } from "./results.js";
import type { Prepared, PrepareContext, RunHandle, Runner, StepContext } from "./runner.js";
import type { OutputLog } from "./output.js";

/**
 * The `hooks` runner: every step of a run is sourced into one persistent bash session
 * with stackbus's helper library (or DevStack's `functions` with --devstack-dir), as
 * one stack.sh process would source them.
 */
export class HooksRunner implements Runner {
  readonly #bus: Bus;
  readonly #dirs: HostDirs;
  readonly #host: string;
  readonly #log: Logger;
  /** The next run's shell, started and with its preamble sourced while the host is idle. */
  readonly #spare: SpareSession;
  /** True while a step of some run executes (output outside a batch is the session's own). */
  busy = false;

  constructor(options: { bus: Bus; dirs: HostDirs; lab: string; host: string; logger: Logger }) {
    this.#bus = options.bus;
    this.#dirs = options.dirs;
    this.#host = options.host;
    this.#log = options.logger;
    this.#spare = new SpareSession({ dirs: options.dirs, lab: options.lab, host: options.host, logger: options.logger });
  }

  /** Opens the next spare session now (at agent start). */
  warm(): void {
    this.#spare.warm();
  }

  /** This host runs in DevStack mode now: a spare hook session would only sit in its checkout. */
  park(): void {
    this.#spare.drop();
  }

  async prepare(ctx: PrepareContext): Promise<Prepared> {
    const { cmd, config, out } = ctx;
    const origin = originOf(cmd, this.#host);
    const say = (line: string) => out.line("prepare", "agent", line);
    const router: { batch: readonly HookSpec[] | null } = { batch: null };
    let session: BashSession | undefined;
    try {
      say(`lab ${config.lab} revision ${config.revision}; TOP_DIR=${this.#dirs.topDir} DEST=${this.#dirs.dest}`);
      const opened = await openSession({
        dirs: this.#dirs,
        config,
        kind: cmd.kind,
        runId: cmd.runId,
        runDir: ctx.runDir,
        logger: this.#log,
        spare: this.#spare,
        onOutput: (stream, index, text) => {
          const spec = index !== null ? router.batch?.[index] : undefined;
          out.line(spec ? spec.name : this.busy ? "(session)" : "(background)", stream, text);
        },
      });
      session = opened.session;
      ctx.track(session.pid);
      if (opened.failed) {
        const failed = opened.failed;
        session.close();
        await out.flush();
        const what = failed.name === "localrc" ? "sourcing the localrc section of local.conf failed" : describeFailure(failed, this.#dirs.topDir);
        return {
          result: failedResult(origin, ctx.startedAt, {
            reason: "prepare",
            hook: failed.name,
            exitCode: failed.exitCode,
            signal: failed.signal,
            message: `${what}: ${out.tail(failed.name).slice(-3).join(" / ")}`,
            outputTail: out.tail(failed.name),
            ...(failed.command !== undefined && failed.location ? { command: failed.command, location: failed.location } : {}),
          }),
        };
      }
      const warnings = config.diagnostics.filter((d) => d.severity === "warning").map((d) => d.message);
      warnings.push(...opened.warnings);
      const installed = await installPlugins({
        bus: this.#bus,
        session,
        config,
        runId: cmd.runId,
        runDir: ctx.runDir,
        dest: this.#dirs.dest,
        log: say,
        onProgress: (plugin, done, total) => ctx.progress({ hook: `fetch ${plugin}`, done, total }),
      });
      warnings.push(...installed.warnings);
      await out.flush();
      const handle = new HooksRun(this, session, out, installed.plugins, opened.factsFile, ctx.runDir, router, this.#dirs, this.#host, config.unstackErrors, opened.devstack);
      return { result: stepResult(origin, ctx.startedAt, { warnings }), handle };
    } catch (err) {
      session?.close();
      return { result: await prepareFailed(origin, ctx.startedAt, err, out) };
    }
  }

  /** A run's session closed: the spare for the next run is opened soon. */
  sessionClosed(): void {
    this.#spare.warmSoon();
  }

  close(): void {
    this.#spare.close();
  }
}

/** One run's session on this host. */
class HooksRun implements RunHandle {
  constructor(
    readonly runner: HooksRunner,
    readonly session: BashSession,
    readonly out: OutputLog,
    readonly plugins: InstalledPlugin[],
    readonly factsFile: string,
    readonly runDir: string,
    readonly router: { batch: readonly HookSpec[] | null },
    readonly dirs: HostDirs,
    readonly host: string,
    readonly unstackErrors: "warn" | "fail",
    readonly devstack: HookPlaces["devstack"],
  ) {}

  /** A hook that called die in unstack or clean, and the DevStack script it ended. */
  #died: { hook: string; step: StepId; script: string } | undefined;

  get pgid(): number {
    return this.session.pid;
  }

  get ended(): boolean {
    return this.session.ended;
  }

  async runStep(ctx: StepContext): Promise<StepResult> {
    const { cmd, step } = ctx;
    const died = this.#died;
    if (died && died.script === scriptOf(cmd.kind, step.id)) {
      // DevStack's die ended that script: none of its later hooks run.
      const skipped = step.actions.flatMap((a) => hooksFor(a, { topDir: this.dirs.topDir, plugins: this.plugins, devstack: this.devstack }));
      return stepResult(originOf(cmd, this.host), ctx.startedAt, {
        hooks: skipped.map((h) => ({ hook: h.name, command: h.target, status: "skipped", durationMs: 0, exitCode: null, signal: null })),
        warnings: [`not run: ${died.hook} called die in ${died.step}, which ends ${died.script} in DevStack (its later hooks, ${skipped.map((h) => h.name).join(", ") || "none"}, do not run)`],
      });
    }
    this.runner.busy = true;
    try {
      return await executeStep(
        {
          lab: cmd.lab,
          host: this.host,
          runId: cmd.runId,
          attempt: cmd.attempt,
          topDir: this.dirs.topDir,
          session: this.session,
          out: this.out,
          plugins: this.plugins,
          devstack: this.devstack,
          factsFile: this.factsFile,
          merge: (group) => mergeInSession(this.session, this.dirs.topDir, this.runDir, group),
          setBatch: (hooks) => {
            this.router.batch = hooks;
          },
          onHook: (hook) => ctx.progress({ hook }),
          unstackErrors: this.unstackErrors,
          onDied: (hook) => {
            this.#died = { hook, step: step.id, script: scriptOf(cmd.kind, step.id) };
          },
        },
        step,
        cmd.facts,
        ctx.startedAt,
      );
    } finally {
      this.runner.busy = false;
    }
  }

  kill(reason: "timeout" | "canceled"): void {
    this.session.kill("SIGTERM", reason);
  }

  close(): void {
    if (!this.session.ended) this.session.close();
    this.runner.sessionClosed();
  }
}

/**
 * The DevStack script a step of the hooks runner stands for, for what a die ends:
 * unstack.sh for every step of an unstack run and for the steps clean.sh's unstack.sh
 * child runs; clean.sh for the clean step (clean.sh goes on after its child died).
 */
function scriptOf(kind: RunKind, step: StepId): string {
  if (kind === "stack") return "stack.sh";
  if (kind === "clean" && step === "clean") return "clean.sh";
  return "unstack.sh";
}

import { copyFileSync, existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { factsDeclaration, stackbusFunctionsPath } from "@stackbus/bashlib";
import { findStep, stepsOf, type HostConfig, type PhaseCommand, type RunKind, type StepId, type StepResult } from "@stackbus/protocol";
import type { Bus, Logger } from "@stackbus/bus";
import { fetchPlugins, type HostDirs, type RegisteredPlugin } from "../prepare.js";
import { readFacts } from "../step.js";
import { failedResult, originOf, prepareFailed, stepResult } from "../results.js";
import type { Activity, Prepared, PrepareContext, RunHandle, Runner, StepContext } from "../runner.js";
import { LineSplitter, type OutputLog } from "../output.js";
import { boundaryOf, describeBoundary, SCRIPTS, stepEndedBy, type Boundary } from "./boundaries.js";
import { chownTree, checkoutProblems, ensureLocalrcAuto, localConfText, writeOwned } from "./checkout.js";
import { ControlServer, type ScriptEvent } from "./control.js";
import { JournalReader, type JournalRecord } from "./journal.js";
import { describeScriptFailure, hookResults, parseTimeTotals } from "./report.js";
import { asUser, runAsFor, type RunAs } from "./user.js";

const HOOK_SCRIPT = new URL("../../bash/devstack-hook.sh", import.meta.url).pathname;
/** How long a script told to stop at a pause point may take to exit before its process group is killed. */
const STOP_GRACE_MS = 60_000;

/**
 * The `devstack` runner: the host's TOP_DIR is its DevStack checkout, and each run
 * starts that checkout's own stack.sh, unstack.sh or clean.sh, unchanged, as DevStack's
 * user. The script pauses at the end of each phase (bash/devstack-hook.sh, sourced from
 * the localrc) until the coordinator starts the next step on this host.
 */
export class DevstackRunner implements Runner {
  readonly #bus: Bus;
  readonly #dirs: HostDirs;
  readonly #lab: string;
  readonly #host: string;
  readonly #log: Logger;
  readonly #control: ControlServer;

  constructor(options: { bus: Bus; dirs: HostDirs; lab: string; host: string; logger: Logger }) {
    this.#bus = options.bus;
    this.#dirs = options.dirs;
    this.#lab = options.lab;
    this.#host = options.host;
    this.#log = options.logger;
    this.#control = new ControlServer(options.logger);
  }

  listen(): Promise<void> {
    return this.#control.listen();
  }

  async prepare(ctx: PrepareContext): Promise<Prepared> {
    const { cmd, config, out } = ctx;
    const origin = originOf(cmd, this.#host);
    const script = SCRIPTS[cmd.kind];
    const say = (line: string) => out.line("prepare", "agent", line);
    let run: DevstackRun | undefined;
    try {
      const runAs = await runAsFor(config);
      const warnings = config.diagnostics.filter((d) => d.severity === "warning").map((d) => d.message);
      if (!runAs.sudo && config.devstackUser !== runAs.user) {
        warnings.push(`the agent runs as ${runAs.user}, not root, so DevStack's scripts run as ${runAs.user} (devstackUser ${config.devstackUser} applies to an agent running as root)`);
      }
      if (config.pluginSettings.order === "requires") warnings.push("plugins.order: requires does not apply in DevStack mode: DevStack runs plugins in registration order");
      const problems = await checkoutProblems(this.#dirs.topDir, runAs);
      if (problems.length > 0) {
        for (const p of problems) say(p);
        return { result: failedResult(origin, ctx.startedAt, { reason: "prepare", hook: null, exitCode: null, signal: null, message: `DevStack mode on ${this.#host}: ${problems.join("; ")}`, outputTail: problems }) };
      }
      say(`lab ${config.lab} revision ${config.revision}; DevStack checkout ${this.#dirs.topDir}; ${script} runs as ${runAs.user}`);
      writeOwned(join(this.#dirs.topDir, "local.conf"), localConfText(config), runAs);
      const note = ensureLocalrcAuto(this.#dirs.topDir, cmd.kind, config, runAs);
      if (note) {
        warnings.push(note);
        say(note);
      }
      run = new DevstackRun({ cmd, config, runAs, out, runDir: ctx.runDir, dirs: this.#dirs, control: this.#control, log: this.#log, host: this.#host, lab: this.#lab });
      ctx.track(run.pgid);
      const reached = await run.advance("prepare", ctx.progress);
      if (!reached) return { result: run.failedResult(cmd, "prepare", ctx.startedAt) };
      const event = run.held as ScriptEvent;
      const [dest = "", logFile = "", ...rest] = event.fields;
      run.logFile = logFile || null;
      const registered: RegisteredPlugin[] = [];
      for (let i = 0; i + 3 < rest.length; i += 4) registered.push({ name: rest[i] ?? "", url: rest[i + 1] ?? "", ref: rest[i + 2] ?? "", dir: rest[i + 3] ?? "" });
      say(`${script} reached the end of its localrc: DEST=${dest}${run.logFile ? `, LOGFILE=${run.logFile}` : ""}`);
      if (registered.length > 0) {
        if (dest && !existsSync(dest)) {
          mkdirSync(dest, { recursive: true });
          chownTree(dest, runAs);
        }
        const fetched = await fetchPlugins({
          bus: this.#bus,
          config,
          runId: cmd.runId,
          runDir: ctx.runDir,
          registered,
          dest: dest || this.#dirs.dest,
          log: say,
          onProgress: (plugin, done, total) => ctx.progress({ hook: `fetch ${plugin}`, done, total }),
          onInstalled: (path) => chownTree(path, runAs),
        });
        warnings.push(...fetched.warnings);
      }
      await out.flush();
      return { result: stepResult(origin, ctx.startedAt, { warnings, devstack: run.info(false) }), handle: run };
    } catch (err) {
      run?.close("prepare failed");
      return { result: await prepareFailed(origin, ctx.startedAt, err, out) };
    }
  }

  close(): void {
    this.#control.close();
  }
}

type Exit = { code: number | null; signal: string | null };

/** One DevStack script of one run, paused between steps. */
class DevstackRun implements RunHandle {
  readonly pgid: number;
  readonly kind: RunKind;
  readonly script: string;
  logFile: string | null = null;
  /** The pause point the script waits at, answered when the next step starts. */
  held: ScriptEvent | null = null;
  readonly #child: ReturnType<typeof execa>;
  readonly #out: OutputLog;
  readonly #dir: string;
  readonly #journal: JournalReader;
  readonly #channel: { token: string; close(): void };
  readonly #log: Logger;
  readonly #topDir: string;
  readonly #host: string;
  readonly #runAs: RunAs;
  /** Where the journal is kept after the run (the agent's state dir). */
  readonly #keep: string;
  #events: ScriptEvent[] = [];
  #wake: (() => void) | undefined;
  #exit: Exit | null = null;
  #killReason: "timeout" | "canceled" | undefined;
  #closing: string | undefined;
  /** Journal records of the step running now. */
  #records: JournalRecord[] = [];
  #summary: string | null = null;
  #mismatch: string | undefined;

  constructor(o: { cmd: PhaseCommand; config: HostConfig; runAs: RunAs; out: OutputLog; runDir: string; dirs: HostDirs; control: ControlServer; log: Logger; host: string; lab: string }) {
    this.kind = o.cmd.kind;
    this.script = SCRIPTS[o.cmd.kind];
    this.#out = o.out;
    this.#log = o.log;
    this.#host = o.host;
    this.#runAs = o.runAs;
    this.#keep = join(o.runDir, `devstack-journal-${o.cmd.attempt}`);
    this.#topDir = realpathSync(o.dirs.topDir);
    this.#dir = mkdtempSync(join(tmpdir(), `stackbus-devstack-${o.host}-`));
    for (const [from, name] of [
      [HOOK_SCRIPT, "devstack-hook.sh"],
      [stackbusFunctionsPath(), "stackbus.sh"],
    ] as const) {
      copyFileSync(from, join(this.#dir, name));
    }
    for (const name of ["journal", "exports"]) writeOwned(join(this.#dir, name), "", o.runAs);
    chownTree(this.#dir, o.runAs);
    this.#journal = new JournalReader(join(this.#dir, "journal"));
    this.#channel = o.control.open((event) => this.#onEvent(event));
    const env: Record<string, string> = {
      STACKBUS_DEVSTACK_HOOK: join(this.#dir, "devstack-hook.sh"),
      STACKBUS_DEVSTACK_TOP: this.#topDir,
      STACKBUS_DEVSTACK_PORT: String(o.control.port),
      STACKBUS_DEVSTACK_TOKEN: this.#channel.token,
      STACKBUS_DEVSTACK_DIR: this.#dir,
      STACKBUS_FACTS_FILE: join(this.#dir, "exports"),
      STACKBUS_LAB: o.lab,
      STACKBUS_HOST: o.host,
      STACKBUS_RUN: o.cmd.runId,
      ...proxyEnv(),
    };
    const inherited = { ...process.env };
    delete inherited["NODE_OPTIONS"];
    const { file, args, env: own } = asUser(o.runAs, env, [`./${this.script}`]);
    this.#child = execa(file, args, {
      cwd: this.#topDir,
      env: own ? { ...inherited, ...own } : { PATH: process.env["PATH"] ?? "/usr/bin:/bin" },
      extendEnv: false,
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      detached: true,
      buffer: false,
      reject: false,
      cleanup: false,
    });
    if (this.#child.pid === undefined) throw new Error(`could not start ${this.script}`);
    this.pgid = this.#child.pid;
    for (const stream of ["stdout", "stderr"] as const) this.#pipeLines(stream);
    let streamsClosed = 0;
    const closed = new Promise<void>((resolve) => {
      for (const s of [this.#child.stdout, this.#child.stderr]) s?.once("close", () => ++streamsClosed === 2 && resolve());
    });
    this.#child.once("exit", (code, signal) => {
      // Output still in the pipes is read first (daemons that keep them open are not waited for).
      const late = new Promise((r) => setTimeout(r, 1_000).unref());
      void Promise.race([closed, late]).then(() => {
        this.#exit = { code, signal };
        this.#channel.close();
        this.#wake?.();
        if (this.#closing !== undefined) this.#cleanup();
      });
    });
  }

  get ended(): boolean {
    return this.#exit !== null;
  }

  #pipeLines(stream: "stdout" | "stderr"): void {
    const s = this.#child[stream];
    if (!s) return;
    s.setEncoding("utf8");
    const lines = new LineSplitter((line) => this.#out.line(this.script, stream, line));
    s.on("data", (chunk: string) => lines.push(chunk));
    s.on("end", () => lines.end());
  }

  #onEvent(event: ScriptEvent): void {
    if (this.#closing !== undefined) {
      event.stop(this.#closing);
      return;
    }
    this.#events.push(event);
    this.#wake?.();
  }

  /**
   * Lets the script run until it reaches where `step` ends (true; the pause is held) or
   * exits (false, or true when the step ends at the script's exit and it exited 0).
   * Pause points that end no step are answered at once; one that ends a later step than
   * this one means the checkout does not follow stackbus's phase model: the script is
   * stopped and the step fails naming both.
   */
  async advance(step: StepId, progress: (what: Activity) => void): Promise<boolean> {
    const boundary = boundaryOf(this.kind, step);
    const order = stepsOf(this.kind).map((s) => s.id);
    const poll = setInterval(() => this.#readJournal(progress), 250);
    try {
      for (;;) {
        const next = await this.#next();
        this.#readJournal(progress);
        if (next === "exit") return "exit" in boundary && this.#exit?.code === 0 && this.#killReason === undefined;
        if (!("exit" in boundary) && matches(boundary, next)) {
          this.held = next;
          return true;
        }
        const ends = stepEndedBy(this.kind, next.script, next.event, next.fields);
        if (ends !== undefined && order.indexOf(ends) > order.indexOf(step)) {
          this.#mismatch = `${next.script} reached the end of ${findStep(this.kind, ends)?.label ?? ends} while stackbus expected ${describeBoundary(boundary, this.kind)} first: this checkout's scripts do not follow stackbus's phase model`;
          next.stop(this.#mismatch);
          await this.#waitExit();
          return false;
        }
        next.go();
      }
    } finally {
      clearInterval(poll);
    }
  }

  async #next(): Promise<ScriptEvent | "exit"> {
    for (;;) {
      const event = this.#events.shift();
      if (event) return event;
      if (this.#exit) return "exit";
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = undefined;
    }
  }

  async #waitExit(): Promise<void> {
    while (!this.#exit) await new Promise<void>((resolve) => (this.#wake = resolve));
  }

  #readJournal(progress: (what: Activity) => void): void {
    for (const record of this.#journal.read()) {
      this.#records.push(record);
      if (record.type === "summary") {
        this.#summary = record.text;
        progress({ hook: this.script, activity: record.text });
      } else if (record.type === "hook-start") {
        progress({ hook: record.hook, ...(this.#summary ? { activity: this.#summary } : {}) });
      }
    }
  }

  async runStep(ctx: StepContext): Promise<StepResult> {
    const { cmd, step } = ctx;
    this.#records = [];
    writeOwned(join(this.#dir, "facts.sh"), `${factsDeclaration(cmd.facts)}\n`, this.#runAs);
    const held = this.held;
    this.held = null;
    ctx.progress({ hook: this.script, ...(this.#summary ? { activity: this.#summary } : {}) });
    held?.go();
    const reached = await this.advance(step.id, ctx.progress);
    if (!reached) return this.failedResult(cmd, step.id, ctx.startedAt);
    const origin = originOf(cmd, this.#host);
    const hooks = hookResults(this.#records, this.#exit);
    const warnings = step.errexit ? [] : hooks.filter((h) => h.exitCode !== 0 && h.exitCode !== null).map((h) => `${h.hook} returned status ${h.exitCode} (${this.script} goes on past it, as DevStack does)`);
    return stepResult(origin, ctx.startedAt, {
      hooks,
      warnings,
      facts: readFacts(join(this.#dir, "exports")),
      devstack: this.info(this.#exit !== null),
    });
  }

  /** The result of a step the script did not get through. */
  failedResult(cmd: PhaseCommand, step: StepId, startedAt: number): StepResult {
    const origin = { ...originOf(cmd, this.#host), step };
    const failure = describeScriptFailure({
      script: this.script,
      stepLabel: findStep(this.kind, step)?.label ?? step,
      exit: this.#exit,
      killReason: this.#killReason,
      mismatch: this.#mismatch,
      records: this.#records,
      outputTail: this.#out.tail(this.script),
      logFile: this.logFile,
      topDir: this.#topDir,
    });
    const result = failedResult(origin, startedAt, failure, this.#killReason ?? "failed");
    return { ...result, hooks: hookResults(this.#records, this.#exit), devstack: this.info(true) };
  }

  /** What the result carries of DevStack's own: its log, its last summary line, its timings at the end. */
  info(atEnd: boolean): NonNullable<StepResult["devstack"]> {
    return {
      script: this.script,
      logFile: this.logFile,
      summary: this.#summary,
      timeTotals: atEnd ? parseTimeTotals(this.#out.tail(this.script)) : {},
    };
  }

  kill(reason: "timeout" | "canceled"): void {
    this.#killReason = reason;
    killGroup(this.pgid);
  }

  close(reason: string): void {
    if (this.#closing !== undefined) return;
    this.#closing = reason;
    if (this.#exit) {
      this.#cleanup();
      return;
    }
    for (const event of this.#events.splice(0)) event.stop(reason);
    if (this.held) {
      this.held.stop(reason);
      this.held = null;
      setTimeout(() => killGroup(this.pgid, "SIGKILL"), STOP_GRACE_MS).unref();
    } else {
      killGroup(this.pgid);
    }
  }

  #cleanup(): void {
    this.#channel.close();
    try {
      copyFileSync(join(this.#dir, "journal"), this.#keep);
    } catch {
      // nothing to keep
    }
    try {
      rmSync(this.#dir, { recursive: true, force: true });
    } catch (err) {
      this.#log.warn({ err, dir: this.#dir }, "could not remove the DevStack control directory");
    }
  }
}

function matches(b: Exclude<Boundary, { exit: true }>, event: ScriptEvent): boolean {
  return b.script === event.script && b.event === event.event && (b.phase === undefined || b.phase === phaseOf(event));
}

function phaseOf(event: ScriptEvent): string | undefined {
  if (event.event !== "phase") return undefined;
  const [mode = "", sub = ""] = event.fields;
  return sub ? `${mode} ${sub}` : mode;
}

/** SIGTERM to a whole process group, SIGKILL after a grace period (or at once). */
function killGroup(pgid: number, signal: NodeJS.Signals = "SIGTERM"): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    return;
  }
  if (signal !== "SIGKILL") {
    setTimeout(() => {
      try {
        process.kill(-pgid, "SIGKILL");
      } catch {
        // gone
      }
    }, 5_000).unref();
  }
}

/** The agent's proxy settings, handed to DevStack's scripts (sudo would drop them). */
function proxyEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of ["http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"]) {
    const value = process.env[name];
    if (value) out[name] = value;
  }
  return out;
}

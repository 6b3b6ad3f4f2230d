import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { execa } from "execa";
import { ErrorCode, StackbusError } from "@stackbus/protocol";
import type { Logger } from "@stackbus/bus";
import { MARKER, parseControlRecord, RS, US } from "./control.js";

/** How a hook is invoked in the session. */
export type HookKind = "source" | "noargs" | "call" | "hv-load" | "hv-call" | "devstack";

/** One hook of a batch, as the session runs it. */
export interface HookSpec {
  /** Name shown to people and in results, e.g. `extras.d/50-template.sh`. */
  name: string;
  kind: HookKind;
  /** File to source, or function to call. */
  target: string;
  args: readonly string[];
}

export interface HookRun {
  spec: HookSpec;
  /** The name the session reported (a hypervisor plugin names its file at run time). */
  name: string;
  /** `pending` until the session reports the hook. */
  status: "pending" | "ok" | "failed" | "skipped" | "timeout" | "canceled";
  skipReason?: string;
  exitCode: number | null;
  signal: string | null;
  /** The hook ended by calling die. */
  died: boolean;
  /** The command that ended the hook under errexit, and where (`file:function:line`). */
  command?: string;
  location?: string;
  startedAt: number;
  durationMs: number;
}

export type OutputStream = "stdout" | "stderr";

/** Receives every line the session prints, with the index of the hook that printed it (null between hooks). */
export type OutputSink = (stream: OutputStream, hook: number | null, text: string) => void;

export interface SessionOptions {
  cwd: string;
  env: Record<string, string>;
  /** Files sourced once at start, in order (control functions, helper library, ...). */
  preamble: readonly string[];
  logger: Logger;
  onOutput: OutputSink;
  /** Called when the session shell exits, with its exit code or signal. */
  onExit?: (code: number | null, signal: string | null) => void;
}

const SESSION_SCRIPT = new URL("../bash/session.sh", import.meta.url).pathname;

/** A line of hook output longer than this many characters is cut (OutputLog cuts further, by bytes). */
const MAX_LINE = 64 * 1024;

/** Path of the session control functions, sourced first in every session. */
export function sessionScriptPath(): string {
  return SESSION_SCRIPT;
}

/** Quotes a string for bash: safe for any content, newlines included. */
export function shq(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** What the session is doing for the agent now: one request at a time, each waiting for its records. */
type Pending =
  | { kind: "eval"; status: number; reported: Record<string, string>; resolve: (value: { status: number; reported: Record<string, string> }) => void; reject: (err: Error) => void }
  | { kind: "plugins"; plugins: string[][]; resolve: (value: string[][]) => void; reject: (err: Error) => void }
  | { kind: "batch"; runs: HookRun[]; controlDone: boolean; resolve: (value: HookRun[]) => void; reject: (err: Error) => void };

/** A request before its resolver is attached. */
type Request = DistributiveOmit<Pending, "resolve" | "reject">;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
type Outcome<P extends Pending["kind"]> = Parameters<Extract<Pending, { kind: P }>["resolve"]>[0];

/**
 * One persistent bash process for a run on a host. Hooks are sourced into it one batch at
 * a time; results come back on file descriptor 3, which hooks cannot write to; output is
 * split per hook by markers on stdout and stderr. The shell keeps every variable and
 * function across batches, as one stack.sh process does.
 */
export class BashSession {
  readonly pid: number;
  readonly #child: BashProcess;
  readonly #nonce = randomBytes(8).toString("hex");
  readonly #options: SessionOptions;
  #pending: Pending | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #control = "";
  #streams: Record<OutputStream, { buffer: string; hook: number | null; ended: boolean; skipping: boolean; carry: string }> = {
    stdout: { buffer: "", hook: null, ended: false, skipping: false, carry: "" },
    stderr: { buffer: "", hook: null, ended: false, skipping: false, carry: "" },
  };
  #exited = false;
  #exitCode: number | null = null;
  #exitSignal: string | null = null;
  #killReason: "timeout" | "canceled" | undefined;
  #currentHook: number | null = null;
  #sink: OutputSink;
  /** Leftover processes already looked at: not waited for again. */
  readonly #settledStrays = new Set<number>();
  /** Scripts go as counted reads (`__sb_read`), from when the preamble has defined it. */
  #counted = false;

  private constructor(child: BashProcess, options: SessionOptions) {
    this.#child = child;
    this.#options = options;
    this.#sink = options.onOutput;
    if (child.pid === undefined) throw new StackbusError(ErrorCode.SessionEnded, "bash did not start");
    this.pid = child.pid;
    child.stdout?.setEncoding("utf8");
    child.stderr?.setEncoding("utf8");
    child.stdout?.on("data", (chunk: string) => this.#onStream("stdout", chunk));
    child.stderr?.on("data", (chunk: string) => this.#onStream("stderr", chunk));
    const control = child.stdio[3] as NodeJS.ReadableStream | undefined;
    control?.setEncoding("utf8");
    control?.on("data", (chunk: string) => this.#onControl(chunk));
    child.stdin?.on("error", () => undefined);
    // The shell's last control records (the start of a hook that then exited the shell)
    // can still be in the pipe when the exit is seen: read them first.
    const controlEnded = new Promise<void>((resolve) => {
      if (!control) return resolve();
      control.once("end", resolve);
      control.once("close", resolve);
      control.once("error", () => resolve());
    });
    child.on("exit", (code, signal) => {
      const late = setTimeout(() => this.#onExit(code, signal), 500);
      void controlEnded.then(() => {
        clearTimeout(late);
        this.#onExit(code, signal);
      });
    });
  }

  /** Starts bash, sources the preamble files, and waits until the shell answers. */
  static async open(options: SessionOptions): Promise<BashSession> {
    const child = startBash(options.cwd, options.env);
    const session = new BashSession(child, options);
    const lines = [`__SB_NONCE=${shq(session.#nonce)}`, ...options.preamble.map((f) => `source ${shq(f)}`)];
    const status = await session.eval(lines.join("\n"));
    if (status !== 0) {
      session.kill("SIGKILL");
      throw new StackbusError(ErrorCode.SessionEnded, `the session preamble failed with status ${status}`, { status });
    }
    session.#counted = true;
    return session;
  }

  /** Sends the session's output from now on to `sink` (a session opened ahead of its run). */
  redirectOutput(sink: OutputSink): void {
    this.#sink = sink;
  }

  get ended(): boolean {
    return this.#exited;
  }

  get exitCode(): number | null {
    return this.#exitCode;
  }

  /** Index of the hook running now in the current batch, if any. */
  get currentHook(): number | null {
    return this.#currentHook;
  }

  /** Told the index of each hook of a batch as the shell starts it. */
  onHookStart: ((index: number) => void) | undefined;

  /**
   * Runs agent code in the session (not a hook) and returns its exit status. The code
   * runs with stdin from /dev/null; its output goes to the output sink as between-hooks output.
   */
  async eval(code: string): Promise<number> {
    return (await this.#evaluate(code)).status;
  }

  /**
   * Runs agent code that calls `__sb_report NAME VALUE`, and returns the reported values.
   */
  async query(code: string): Promise<Record<string, string>> {
    return (await this.#evaluate(code)).reported;
  }

  #evaluate(code: string): Promise<Outcome<"eval">> {
    return this.#enqueue<"eval">({ kind: "eval", status: 1, reported: {} }, `{\n${code}\n} </dev/null\n__sb_eval_done $?\n`);
  }

  /** The plugins registered with enable_plugin, in registration order: [name, url, ref, dir]. */
  listPlugins(): Promise<string[][]> {
    return this.#enqueue<"plugins">({ kind: "plugins", plugins: [] }, "__sb_list_plugins\n");
  }

  /**
   * Runs hooks in order. With `errexit`, the first failing hook ends the batch and the
   * rest are reported skipped. Resolves when every hook has reported and all their output
   * has been read. `prelude` is session code run first, in the same write (no round trip).
   */
  runBatch(hooks: readonly HookSpec[], errexit: boolean, prelude?: string): Promise<HookRun[]> {
    const lines = [...(prelude ? [prelude] : []), `__sb_batch ${errexit ? 1 : 0}`];
    hooks.forEach((h, i) => {
      const args = h.args.map(shq).join(" ");
      if (h.kind === "hv-load") lines.push(`__sb_hv_load ${i}`);
      else if (h.kind === "hv-call") lines.push(`__sb_hv_call ${i} ${shq(h.target)} ${args}`);
      else lines.push(`__sb_hook ${i} ${h.kind} ${shq(h.name)} ${shq(h.target)} ${args}`);
    });
    lines.push("__sb_batch_end");
    return this.#enqueue<"batch">({ kind: "batch", runs: hooks.map((spec) => emptyRun(spec)), controlDone: false }, lines.join("\n") + "\n");
  }

  #enqueue<K extends Pending["kind"]>(request: Extract<Request, { kind: K }>, script: string): Promise<Outcome<K>> {
    const run = () =>
      new Promise<Outcome<K>>((resolve, reject) => {
        if (this.#exited) {
          reject(this.#endedError());
          return;
        }
        if (script.includes("\0")) {
          // bash drops NUL bytes: the script would not be what was sent, nor its length.
          reject(new StackbusError(ErrorCode.InvalidArgument, "a script for the hook session contains a NUL byte, which bash cannot carry"));
          return;
        }
        this.#pending = { ...request, resolve, reject } as Pending;
        if (request.kind === "batch") {
          this.#streams.stdout.ended = false;
          this.#streams.stderr.ended = false;
        }
        // Bash reads commands from a pipe one byte at a time; once the session functions are
        // loaded, a script goes as one counted read: one system call instead of one per byte
        // (over a kilobyte for a batch).
        this.#child.stdin?.write(this.#counted ? `__sb_read ${Buffer.byteLength(script)}; eval "$__sb_script"\n${script}` : script);
      });
    const next = this.#queue.then(run, run);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  #onControl(chunk: string): void {
    this.#control += chunk;
    let end: number;
    while ((end = this.#control.indexOf(RS)) >= 0) {
      const record = this.#control.slice(0, end).split(US);
      this.#control = this.#control.slice(end + 1);
      this.#handleRecord(record);
    }
  }

  #handleRecord(fields: string[]): void {
    const p = this.#pending;
    const record = parseControlRecord(fields);
    if (!record) {
      this.#options.logger.warn({ record: fields }, "unknown control record");
      return;
    }
    if (!p) {
      this.#options.logger.warn({ record: fields }, "control record with nothing pending");
      return;
    }
    if (p.kind === "eval") {
      if (record.type === "report") p.reported[record.name] = record.value;
      else if (record.type === "value") {
        p.status = record.status;
        this.#finish();
      }
      return;
    }
    if (p.kind === "plugins") {
      if (record.type === "plugin") p.plugins.push([record.name, record.url, record.ref, record.dir]);
      else if (record.type === "plugins-end") this.#finish();
      return;
    }
    if (record.type === "batch-end") {
      p.controlDone = true;
      this.#maybeFinishBatch();
      return;
    }
    if (record.type !== "hook-start" && record.type !== "hook-end" && record.type !== "hook-skip") return;
    const run = p.runs[record.index];
    if (!run) return;
    if (record.type === "hook-skip") {
      run.status = "skipped";
      run.skipReason = record.reason;
    } else if (record.type === "hook-start") {
      run.startedAt = record.at;
      run.name = record.name || run.name;
      this.#currentHook = record.index;
      this.onHookStart?.(record.index);
    } else {
      run.exitCode = record.status;
      run.died = record.died;
      run.status = record.status === 0 ? "ok" : "failed";
      run.durationMs = Math.max(0, record.at - run.startedAt);
      if (record.location) {
        run.command = record.command;
        run.location = record.location;
      }
      this.#currentHook = null;
    }
  }

  #finish(): void {
    const p = this.#pending;
    if (!p) return;
    this.#pending = undefined;
    if (p.kind === "eval") p.resolve({ status: p.status, reported: p.reported });
    else if (p.kind === "plugins") p.resolve(p.plugins);
    else p.resolve(p.runs);
  }

  #batchGrace: NodeJS.Timeout | undefined;

  #maybeFinishBatch(): void {
    const p = this.#pending;
    if (!p || p.kind !== "batch" || !p.controlDone) return;
    if (this.#streams.stdout.ended && this.#streams.stderr.ended) {
      clearTimeout(this.#batchGrace);
      this.#batchGrace = undefined;
      this.#finish();
      return;
    }
    // A hook that redirected the shell's stdout (exec >file) hides the end marker: do not wait forever.
    this.#batchGrace ??= setTimeout(() => {
      this.#batchGrace = undefined;
      this.#options.logger.warn("the end-of-batch marker did not arrive on stdout/stderr; a hook may have redirected the shell's output");
      this.#finish();
    }, 2_000);
  }

  /**
   * Splits a stream into lines. Each chunk is looked at once (output without newlines
   * costs linear time, not quadratic), and a line longer than MAX_LINE characters is
   * passed on cut, the rest of it dropped up to its newline or the next marker.
   */
  #onStream(stream: OutputStream, input: string): void {
    const state = this.#streams[stream];
    let chunk = input;
    let start = 0;
    if (state.skipping) {
      // Inside a cut line: drop up to its newline, or up to a marker (which may straddle chunks).
      const prefix = `${RS}SB${this.#nonce}:`;
      const probe = state.carry + chunk;
      const nl = probe.indexOf("\n");
      const marker = probe.indexOf(prefix);
      const resume = marker >= 0 && (nl < 0 || marker < nl) ? marker : nl >= 0 ? nl + 1 : -1;
      if (resume < 0) {
        state.carry = probe.slice(-prefix.length);
        return;
      }
      state.skipping = false;
      state.carry = "";
      chunk = probe;
      start = resume;
    }
    for (;;) {
      const nl = chunk.indexOf("\n", start);
      if (nl < 0) break;
      const line = state.buffer + chunk.slice(start, nl);
      state.buffer = "";
      start = nl + 1;
      this.#onLine(stream, line);
    }
    state.buffer += chunk.slice(start);
    if (state.buffer.length > MAX_LINE && !state.buffer.includes(`${RS}SB${this.#nonce}:`)) {
      this.#onLine(stream, `${state.buffer.slice(0, MAX_LINE)}… [the rest of this line, up to its newline, is not kept]`);
      state.buffer = "";
      state.skipping = true;
    }
  }

  #onLine(stream: OutputStream, line: string): void {
    const state = this.#streams[stream];
    const marker = `${RS}SB${this.#nonce}:`;
    const at = line.indexOf(marker);
    if (at < 0) {
      this.#sink(stream, state.hook, line);
      return;
    }
    if (at > 0) this.#sink(stream, state.hook, line.slice(0, at));
    const rest = line.slice(at + marker.length);
    const end = rest.indexOf(RS);
    const tag = end < 0 ? rest : rest.slice(0, end);
    if (tag === MARKER.end) {
      state.ended = true;
      state.hook = null;
      this.#maybeFinishBatch();
    } else if (tag.startsWith(MARKER.hook)) state.hook = Number(tag.slice(MARKER.hook.length));
  }

  #onExit(code: number | null, signal: string | null): void {
    if (this.#exited) return;
    this.#exited = true;
    this.#exitCode = code;
    this.#exitSignal = signal;
    for (const stream of ["stdout", "stderr"] as const) {
      const state = this.#streams[stream];
      if (state.buffer.length > 0) this.#sink(stream, state.hook, state.buffer);
      state.buffer = "";
    }
    const p = this.#pending;
    this.#pending = undefined;
    if (p) {
      if (p.kind === "batch") {
        // The hook running when the shell ended carries the shell's exit.
        const reason = this.#killReason;
        for (const run of p.runs) {
          if (run.startedAt > 0 && run.status === "pending") {
            run.status = reason ?? "failed";
            run.exitCode = code;
            run.signal = signal;
            run.durationMs = Date.now() - run.startedAt;
          } else if (run.status === "pending") {
            run.status = "skipped";
            run.skipReason = "session ended";
          }
        }
        p.resolve(p.runs);
      } else {
        p.reject(this.#endedError());
      }
    }
    this.#options.onExit?.(code, signal);
  }

  #endedError(): StackbusError {
    return new StackbusError(
      ErrorCode.SessionEnded,
      `the hook session has ended (${this.#exitSignal ? `signal ${this.#exitSignal}` : `exit status ${this.#exitCode}`})`,
      { exitCode: this.#exitCode, signal: this.#exitSignal },
    );
  }

  /**
   * Kills the session's whole process group (the shell and every child a hook started
   * in it): SIGTERM, then SIGKILL after `graceMs`.
   */
  kill(signal: NodeJS.Signals = "SIGTERM", reason?: "timeout" | "canceled", graceMs = 2_000): void {
    if (reason) this.#killReason = reason;
    try {
      process.kill(-this.pid, signal);
    } catch {
      return;
    }
    if (signal !== "SIGKILL") {
      setTimeout(() => {
        try {
          process.kill(-this.pid, "SIGKILL");
        } catch {
          // gone
        }
      }, graceMs).unref();
    }
  }

  /**
   * Ends the shell without touching what hooks started (services a stack leaves running).
   */
  close(): void {
    if (this.#exited) return;
    this.#child.stdin?.end("exit 0\n");
    for (const s of [this.#child.stdout, this.#child.stderr, this.#child.stdio[3]]) {
      (s as NodeJS.ReadableStream & { unref?: () => void } | null)?.unref?.();
    }
  }

  /**
   * Processes still in the session's process group besides the shell: hooks' leftovers.
   * A process just forked by `cmd &` shows the shell's own command line until it execs
   * (and none while it execs), so one seen that way for the first time is looked at
   * again for up to half a second.
   */
  async strayProcesses(): Promise<Array<{ pid: number; command: string }>> {
    const shell = readCommand(this.pid);
    let list = processGroupMembers(this.pid).filter((p) => p.pid !== this.pid);
    for (let i = 0; i < 50 && list.some((p) => (p.command === shell || p.command === "") && !this.#settledStrays.has(p.pid)); i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      list = processGroupMembers(this.pid).filter((p) => p.pid !== this.pid);
    }
    for (const p of list) this.#settledStrays.add(p.pid);
    return list;
  }
}

/** bash in its own process group, with a fourth pipe (fd 3) for control records. */
function startBash(cwd: string, env: Record<string, string>) {
  return execa("bash", ["--noprofile", "--norc"], {
    cwd,
    env,
    extendEnv: false,
    stdio: ["pipe", "pipe", "pipe", "pipe"],
    detached: true,
    buffer: false,
    reject: false,
    cleanup: true,
  });
}
type BashProcess = ReturnType<typeof startBash>;

function emptyRun(spec: HookSpec): HookRun {
  return {
    spec,
    name: spec.name,
    status: "pending",
    exitCode: null,
    signal: null,
    died: false,
    startedAt: 0,
    durationMs: 0,
  };
}


/**
 * The live processes of a process group that descend from its leader (the session's
 * shell), read from /proc: the shell's children, their children, and so on. Walking the
 * tree instead of every process on the machine keeps this cheap after every step.
 */
export function processGroupMembers(pgid: number): Array<{ pid: number; command: string }> {
  const out: Array<{ pid: number; command: string }> = [];
  const seen = new Set<number>();
  const queue = [pgid];
  while (queue.length > 0) {
    const pid = queue.shift() as number;
    if (seen.has(pid)) continue;
    seen.add(pid);
    const info = readStat(pid);
    if (!info) continue;
    if (info.pgrp === pgid && info.state !== "Z") out.push({ pid, command: readCommand(pid) });
    queue.push(...childrenOf(pid));
  }
  return out;
}

function readStat(pid: number): { state: string; pgrp: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { state: fields[0] ?? "", pgrp: Number(fields[2]) };
  } catch {
    return undefined;
  }
}

function readCommand(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean).join(" ");
  } catch {
    return "";
  }
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    try {
      for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").trim().split(/\s+/)) if (c) out.push(Number(c));
    } catch {
      // the task ended
    }
  }
  return out;
}

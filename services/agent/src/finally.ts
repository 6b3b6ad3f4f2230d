import { execa } from "execa";
import type { Failure, HookResult, StepResult } from "@stackbus/protocol";
import { LineSplitter, type OutputLog } from "./output.js";
import { stepResult, type StepOrigin } from "./results.js";
import type { Activity } from "./runner.js";
import { asUser, type RunAs } from "./devstack/user.js";

/**
 * The lab's `finally` commands on this host, in order, after every host finished the
 * run's last step: each a `bash -c` in TOP_DIR (as DevStack's user in DevStack mode),
 * its output part of the run; the first that fails ends the step.
 */
export async function runFinally(options: {
  origin: StepOrigin;
  startedAt: number;
  commands: readonly string[];
  topDir: string;
  runAs: RunAs | null;
  out: OutputLog;
  timeoutMs: number;
  progress: (what: Activity) => void;
  track: (pgid: number) => void;
  untrack: (pgid: number) => void;
}): Promise<StepResult> {
  const hooks: HookResult[] = [];
  const failures: Failure[] = [];
  for (const command of options.commands) {
    const name = `finally: ${command}`;
    options.progress({ hook: name });
    const t0 = Date.now();
    const argv = ["bash", "-c", command];
    const env = { STACKBUS_HOST: options.origin.host, STACKBUS_LAB: options.origin.lab, STACKBUS_RUN: options.origin.runId };
    const { file, args, env: own } = options.runAs ? asUser(options.runAs, env, argv) : { file: "bash", args: argv.slice(1), env };
    const child = execa(file, args, {
      cwd: options.topDir,
      ...(own ? { env: own } : {}),
      stdin: "ignore",
      detached: true,
      buffer: false,
      reject: false,
      cleanup: false,
    });
    const pgid = child.pid;
    if (pgid !== undefined) options.track(pgid);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (pgid !== undefined) killQuietly(-pgid);
    }, options.timeoutMs);
    for (const stream of ["stdout", "stderr"] as const) {
      const lines = new LineSplitter((line) => options.out.line(name, stream, line));
      child[stream]?.setEncoding("utf8");
      child[stream]?.on("data", (chunk: string) => lines.push(chunk));
      child[stream]?.on("end", () => lines.end());
    }
    const result = await child;
    clearTimeout(timer);
    if (pgid !== undefined) options.untrack(pgid);
    const exitCode = result.exitCode ?? null;
    const signal = result.signal ?? null;
    const ok = exitCode === 0 && !timedOut;
    hooks.push({ hook: name, command, status: ok ? "ok" : timedOut ? "timeout" : "failed", durationMs: Date.now() - t0, exitCode, signal });
    if (!ok) {
      failures.push({
        host: options.origin.host,
        step: "finally",
        reason: timedOut ? "timeout" : "hook",
        hook: name,
        exitCode,
        signal,
        message: timedOut ? `${command} ran past the step timeout on ${options.origin.host}` : `${command} failed on ${options.origin.host} with ${signal ? `signal ${signal}` : `exit status ${exitCode}`}`,
        outputTail: options.out.tail(name),
        command,
      });
      break;
    }
  }
  await options.out.flush();
  return stepResult(options.origin, options.startedAt, { status: failures.length === 0 ? "ok" : failures[0]?.reason === "timeout" ? "timeout" : "failed", hooks, failures });
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // gone
  }
}

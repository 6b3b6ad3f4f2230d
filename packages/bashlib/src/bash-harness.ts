import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bashlibEntry } from "./paths.js";

/** What a bash run printed and how it ended. */
export interface BashRun {
  stdout: string;
  stderr: string;
  status: number | null;
}

/** Options of a bash run. */
export interface BashOptions {
  cwd?: string;
  /** Added to a minimal environment (PATH, HOME, LANG); nothing else leaks in from the test process. */
  env?: Record<string, string>;
  /** Bash run before the library is sourced (shell options, traps). */
  prelude?: string;
  /** Source this file instead of functions.sh; "" sources nothing. */
  library?: string;
  stdin?: string;
}

/** Quotes a string as one bash word. */
export function q(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/**
 * Runs `script` in a fresh non-interactive bash after sourcing the library. The prelude
 * and the library are loaded through BASH_ENV (a temporary startup file), so the script's
 * own lines are numbered from 1, as in a hook file.
 */
export function bash(script: string, options: BashOptions = {}): Promise<BashRun> {
  const library = options.library ?? bashlibEntry();
  const startupDir = mkdtempSync(join(tmpdir(), "sb-bash-"));
  const startup = join(startupDir, "startup.sh");
  writeFileSync(startup, [options.prelude ?? "", library === "" ? "" : `source ${q(library)}`, ""].join("\n"));
  const env: Record<string, string> = {
    PATH: process.env["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin",
    HOME: process.env["HOME"] ?? "/root",
    LANG: "C.UTF-8",
    ...options.env,
    BASH_ENV: startup,
  };
  return new Promise((resolve, reject) => {
    const child = spawn("bash", ["--noprofile", "--norc", "-c", script], {
      cwd: options.cwd,
      env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const cleanup = () => rmSync(startupDir, { recursive: true, force: true });
    child.on("error", (err) => {
      cleanup();
      reject(err);
    });
    child.on("close", (status) => {
      cleanup();
      resolve({ stdout, stderr, status });
    });
    // A script may exit before reading its stdin: that is not an error of the test.
    child.stdin.on("error", () => undefined);
    child.stdin.end(options.stdin ?? "");
  });
}

/** Runs `script` and returns its stdout with trailing newlines removed, as `$(...)` would; fails on a non-zero status. */
export async function bashOut(script: string, options: BashOptions = {}): Promise<string> {
  const run = await bash(script, options);
  if (run.status !== 0) {
    throw new Error(`bash exited ${run.status}\n--- script\n${script}\n--- stderr\n${run.stderr}\n--- stdout\n${run.stdout}`);
  }
  return run.stdout.replace(/\n+$/, "");
}

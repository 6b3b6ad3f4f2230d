import { spawn } from "node:child_process";

export interface BashScriptOptions {
  /** The whole environment of the shell (PATH is added when missing). @default process.env */
  env?: Record<string, string>;
  /** The shell's working directory. @default process.cwd() */
  cwd?: string;
  /** The shell is killed after this long. @default 60000 */
  timeoutMs?: number;
}

/**
 * Runs `script` in a one-off `bash --noprofile --norc` (the script is read from a pipe and
 * eval'd, so it may be of any size) and returns what it wrote to file descriptor 3.
 * Rejects when bash cannot be started or ends with a status other than 0, naming its stderr.
 */
export function bashFd3(script: string, options: BashScriptOptions = {}): Promise<string> {
  const env = options.env ? { PATH: process.env["PATH"] ?? "/usr/bin:/bin", ...options.env } : { ...process.env };
  return new Promise<string>((resolve, reject) => {
    const child = spawn("bash", ["--noprofile", "--norc", "-c", `__stackbus_x_script=$(cat <&4); exec 4<&-; eval "$__stackbus_x_script"`], {
      cwd: options.cwd ?? process.cwd(),
      env,
      stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"],
    });
    const chunks: Buffer[] = [];
    let stderr = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
    child.stdio[3]?.on("data", (c: Buffer) => chunks.push(c));
    child.stderr?.on("data", (c: Buffer) => {
      stderr = (stderr + c.toString()).slice(-4000);
    });
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run bash: ${err.message}`, { cause: err }));
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) {
        reject(new Error(`bash ended with ${signal ?? `status ${code}`}: ${stderr.trim()}`));
        return;
      }
      resolve(Buffer.concat(chunks).toString("utf8"));
    });
    const input = child.stdio[4] as NodeJS.WritableStream | null;
    input?.end(script);
  });
}

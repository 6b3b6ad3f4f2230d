import { closeSync, openSync, readSync } from "node:fs";

/** What the pause points note while a DevStack script runs (see bash/devstack-hook.sh). */
export type JournalRecord =
  | { type: "hook-start"; at: number; hook: string }
  | { type: "hook-end"; at: number; hook: string; status: number }
  /** The command that ended the script under errexit, while a hook ran. */
  | { type: "error"; at: number; status: number; location: string; command: string }
  /** An `echo_summary` line. */
  | { type: "summary"; at: number; text: string }
  /** How the script exited: status, last command, innermost source file, call stack. */
  | { type: "exit"; at: number; status: number; command: string; source: string; stack: string; xtrace: boolean };

/** Reads the journal file as it grows. */
export class JournalReader {
  readonly #file: string;
  #offset = 0;
  #rest = "";

  constructor(file: string) {
    this.#file = file;
  }

  /** The records written since the last call. */
  read(): JournalRecord[] {
    let fd: number;
    try {
      fd = openSync(this.#file, "r");
    } catch {
      return [];
    }
    const chunks: Buffer[] = [];
    try {
      const buf = Buffer.alloc(64 * 1024);
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, this.#offset);
        if (n <= 0) break;
        this.#offset += n;
        chunks.push(Buffer.from(buf.subarray(0, n)));
      }
    } finally {
      closeSync(fd);
    }
    const text = this.#rest + Buffer.concat(chunks).toString("utf8");
    const lines = text.split("\n");
    this.#rest = lines.pop() ?? "";
    return lines.flatMap((line) => parseRecord(line) ?? []);
  }
}

const usToMs = (value: string | undefined): number => Math.floor(Number(value ?? 0) / 1000);

/** One journal line, or undefined when it is not one. */
export function parseRecord(line: string): JournalRecord | undefined {
  const [type, ...f] = line.split("\x1f");
  switch (type) {
    case "H":
      if (f[0] === "start") return { type: "hook-start", at: usToMs(f[1]), hook: f[2] ?? "" };
      if (f[0] === "end") return { type: "hook-end", at: usToMs(f[1]), hook: f[2] ?? "", status: Number(f[3] ?? 0) };
      return undefined;
    case "E":
      return { type: "error", at: usToMs(f[0]), status: Number(f[1] ?? 1), location: f[2] ?? "", command: f.slice(3).join(" ") };
    case "S":
      return { type: "summary", at: usToMs(f[0]), text: f.slice(1).join(" ") };
    case "X":
      return { type: "exit", at: usToMs(f[0]), status: Number(f[1] ?? 0), command: f[2] ?? "", source: f[3] ?? "", stack: (f[4] ?? "").trim(), xtrace: (f[5] ?? "").includes("x") };
    default:
      return undefined;
  }
}

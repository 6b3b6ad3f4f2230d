import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import { StepResultSchema, type StepId, type StepResult } from "@stackbus/protocol";

/** What the agent remembers about one step of one attempt of a run. */
export type StepRecord =
  | { state: "running"; startedAt: number; instance: string }
  | { state: "done"; result: StepResult };

/**
 * The agent's durable memory, in its state dir: one append-only journal per run, a line
 * per change of a step's record. A step is recorded as running before it is
 * acknowledged and as done with its result before the result is published, so a
 * redelivered command never runs a hook twice and a result survives a restart of the
 * agent. A torn last line (the agent died while writing it) is ignored.
 */
export class StateStore {
  readonly #dir: string;
  readonly #runs = new Map<string, { fd: number; records: Map<string, StepRecord>; sessions: Map<number, string> }>();

  constructor(stateDir: string) {
    this.#dir = join(stateDir, "runs");
    mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
    chmodSync(this.#dir, 0o700);
  }

  runDir(runId: string): string {
    return join(this.#dir, runId);
  }

  #open(runId: string): { fd: number; records: Map<string, StepRecord>; sessions: Map<number, string> } {
    let run = this.#runs.get(runId);
    if (run) return run;
    const dir = join(this.#dir, runId);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const file = join(dir, "journal.jsonl");
    const records = new Map<string, StepRecord>();
    const sessions = new Map<number, string>();
    let text = "";
    if (existsSync(file)) {
      try {
        text = readFileSync(file, "utf8");
      } catch {
        // unreadable: start afresh
      }
    }
    for (const line of text.split("\n")) {
      if (!line) continue;
      try {
        const raw = JSON.parse(line) as {
          key?: string;
          record?: { state?: string; result?: unknown; startedAt?: number; instance?: string };
          session?: { pgid: number; startTime: string };
          closed?: number;
        };
        if (raw.session) sessions.set(raw.session.pgid, raw.session.startTime);
        if (raw.closed !== undefined) sessions.delete(raw.closed);
        const r = raw.record;
        if (!raw.key || !r) continue;
        if (r.state === "done") records.set(raw.key, { state: "done", result: StepResultSchema.parse(r.result) });
        else if (r.state === "running") records.set(raw.key, { state: "running", startedAt: r.startedAt ?? 0, instance: r.instance ?? "" });
      } catch {
        // a torn or foreign line: skip it
      }
    }
    run = { fd: openSync(file, "a", 0o600), records, sessions };
    this.#runs.set(runId, run);
    // Keep few runs open: a closed one is read again from its journal when needed.
    if (this.#runs.size > 8) {
      const [oldest, value] = this.#runs.entries().next().value as [string, { fd: number }];
      closeSync(value.fd);
      this.#runs.delete(oldest);
    }
    return run;
  }

  get(runId: string, attempt: number, step: StepId): StepRecord | undefined {
    return this.#open(runId).records.get(`${attempt}.${step}`);
  }

  put(runId: string, attempt: number, step: StepId, record: StepRecord): void {
    const run = this.#open(runId);
    const key = `${attempt}.${step}`;
    writeSync(run.fd, `${JSON.stringify({ key, record })}\n`);
    run.records.set(key, record);
  }

  /**
   * Notes a session shell this agent started for a run (its process group and the
   * kernel start time of the shell), so that a later instance can end what a killed one
   * left running; `sessionClosed` forgets it.
   */
  sessionOpened(runId: string, pgid: number): void {
    const startTime = processStartTime(pgid);
    if (startTime === undefined) return;
    const run = this.#open(runId);
    writeSync(run.fd, `${JSON.stringify({ session: { pgid, startTime } })}\n`);
    run.sessions.set(pgid, startTime);
  }

  sessionClosed(runId: string, pgid: number): void {
    const run = this.#open(runId);
    if (!run.sessions.has(pgid)) return;
    writeSync(run.fd, `${JSON.stringify({ closed: pgid })}\n`);
    run.sessions.delete(pgid);
  }

  /**
   * Kills the process groups of sessions a previous instance left open in the recent
   * runs (only when the shell is still the same process: same pid and start time).
   */
  reapSessions(recentRuns = 5): Array<{ pgid: number; runId: string }> {
    const ended: Array<{ pgid: number; runId: string }> = [];
    let names: string[];
    try {
      names = readdirSync(this.#dir)
        .map((name) => ({ name, mtime: statSync(join(this.#dir, name)).mtimeMs }))
        .sort((a, b) => b.mtime - a.mtime)
        .slice(0, recentRuns)
        .map((r) => r.name);
    } catch {
      return ended;
    }
    for (const runId of names) {
      const run = this.#open(runId);
      for (const [pgid, startTime] of [...run.sessions]) {
        if (processStartTime(pgid) === startTime) {
          try {
            process.kill(-pgid, "SIGKILL");
            ended.push({ pgid, runId });
          } catch {
            // already gone
          }
        }
        this.sessionClosed(runId, pgid);
      }
    }
    return ended;
  }

  /** Removes all but the newest `keep` runs. */
  prune(keep = 50): void {
    let runs: Array<{ name: string; mtime: number }>;
    try {
      runs = readdirSync(this.#dir).map((name) => ({ name, mtime: statSync(join(this.#dir, name)).mtimeMs }));
    } catch {
      return;
    }
    runs.sort((a, b) => b.mtime - a.mtime);
    for (const old of runs.slice(keep)) rmSync(join(this.#dir, old.name), { recursive: true, force: true });
  }
}

/** Field 22 of /proc/<pid>/stat: when the process started, in clock ticks since boot. */
function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

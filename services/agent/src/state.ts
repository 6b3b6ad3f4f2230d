import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { StepResultSchema, type StepId, type StepResult } from "@stackbus/protocol";

/** What the agent remembers about one step of one attempt of a run. */
export type StepRecord =
  | { state: "running"; startedAt: number; instance: string }
  | { state: "done"; result: StepResult };

/**
 * The agent's durable memory, in its state dir: one small file per (run, attempt, step).
 * A step is recorded as running before it is acknowledged and as done with its result
 * before the result is published, so a redelivered command never runs a hook twice and a
 * result survives a restart of the agent.
 */
export class StateStore {
  readonly #dir: string;

  constructor(stateDir: string) {
    this.#dir = join(stateDir, "runs");
    mkdirSync(this.#dir, { recursive: true });
  }

  runDir(runId: string): string {
    return join(this.#dir, runId);
  }

  #file(runId: string, attempt: number, step: StepId): string {
    return join(this.#dir, runId, `${attempt}.${step}.json`);
  }

  get(runId: string, attempt: number, step: StepId): StepRecord | undefined {
    let text: string;
    try {
      text = readFileSync(this.#file(runId, attempt, step), "utf8");
    } catch {
      return undefined;
    }
    try {
      const raw = JSON.parse(text) as { state?: string; result?: unknown; startedAt?: number; instance?: string };
      if (raw.state === "done") return { state: "done", result: StepResultSchema.parse(raw.result) };
      if (raw.state === "running") return { state: "running", startedAt: raw.startedAt ?? 0, instance: raw.instance ?? "" };
    } catch {
      // A torn or foreign file: treat as absent.
    }
    return undefined;
  }

  put(runId: string, attempt: number, step: StepId, record: StepRecord): void {
    const file = this.#file(runId, attempt, step);
    mkdirSync(join(this.#dir, runId), { recursive: true });
    const tmp = `${file}.tmp`;
    writeFileSync(tmp, JSON.stringify(record));
    renameSync(tmp, file);
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

/** A session shell this agent started: its process group and the kernel start time of the shell. */
export interface SessionRecord {
  pgid: number;
  startTime: string;
  runId: string;
}

/**
 * The sessions an agent has open, kept in its state dir, so that the next instance can
 * end what a killed instance left running (hooks would otherwise go on in orphaned shells).
 */
export class SessionRegistry {
  readonly #file: string;

  constructor(stateDir: string) {
    this.#file = join(stateDir, "sessions.json");
  }

  #read(): SessionRecord[] {
    try {
      return JSON.parse(readFileSync(this.#file, "utf8")) as SessionRecord[];
    } catch {
      return [];
    }
  }

  #write(records: SessionRecord[]): void {
    const tmp = `${this.#file}.tmp`;
    writeFileSync(tmp, JSON.stringify(records));
    renameSync(tmp, this.#file);
  }

  add(pgid: number, runId: string): void {
    const startTime = processStartTime(pgid);
    if (startTime === undefined) return;
    this.#write([...this.#read().filter((r) => r.pgid !== pgid), { pgid, startTime, runId }]);
  }

  remove(pgid: number): void {
    this.#write(this.#read().filter((r) => r.pgid !== pgid));
  }

  /**
   * Kills the process groups of sessions a previous instance left behind (only when the
   * shell is still the same process: same pid and start time). Returns what it ended.
   */
  reap(): SessionRecord[] {
    const ended: SessionRecord[] = [];
    for (const r of this.#read()) {
      if (processStartTime(r.pgid) !== r.startTime) continue;
      try {
        process.kill(-r.pgid, "SIGKILL");
        ended.push(r);
      } catch {
        // already gone
      }
    }
    this.#write([]);
    return ended;
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

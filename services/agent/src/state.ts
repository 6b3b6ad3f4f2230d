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

#!/usr/bin/env node
/**
 * `npm run bench`: stackbus against its floor and DevStack's own cost at N = 1 to 1000
 * hosts, with the messages and bytes through nats-server and the CPU of every process per
 * host and step; the cost of signed commands; what waves per step cost a 3-host lab;
 * plugin fan-out against clones and the disk's own limit; DevStack mode against plain
 * ./stack.sh; memory. One invocation on one machine. Writes the figures to
 * test/bench-results/<timestamp>.json and the table into docs/benchmarks.md.
 *
 * Options: --n 1,10,50,100,200,500,1000  --reps 5  --large-reps 3  --huge-reps 2  --fanout-reps 3  --k 10  --idle-ms 1200
 *          --agent-node-flags="--max-semi-space-size=1 --lite-mode" (the agents' Node flags; default: the agent's own)
 *          --no-fanout  --no-devstack-mode  --no-waves  --no-signing  --no-docs
 *
 * Between two timed runs the hosts sit idle for --idle-ms, as they do between real runs
 * (an agent opens the next run's shell in that time, a second after a run ends).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { cpus, totalmem } from "node:os";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { bashlibEntry } from "@stackbus/bashlib";
import { AGENT_NODE_FLAGS } from "@stackbus/agent/node-flags";
import { Bus, silentLogger } from "@stackbus/bus";
import { freePort, startNats, tempDir, track, untrack } from "@stackbus/testkit";
import { devstackOnce } from "./devstack.js";
import { benchDevstackMode } from "./devstack-mode.js";
import { median, writeNoopHooks } from "./hooks.js";
import { describeRow, measureStack, type StackContext, type StackRow } from "./stack-row.js";
import { measureSigning } from "./signing-row.js";
import { measureWaves } from "./waves.js";
import { renderMarkdown, TARGETS, type BenchResults, type FanoutRow } from "./report.js";

const REPO_ROOT = new URL("../../../", import.meta.url).pathname;
const CLI = join(REPO_ROOT, "packages/cli/bin/stackbus.js");
const FANOUT = join(REPO_ROOT, "services/fetcher/dist/bench/fanout.js");

const { values } = parseArgs({
  options: {
    n: { type: "string", default: "1,10,50,100,200,500,1000" },
    reps: { type: "string", default: "5" },
    "large-reps": { type: "string", default: "3" },
    "huge-reps": { type: "string", default: "2" },
    k: { type: "string", default: "10" },
    "idle-ms": { type: "string", default: "1200" },
    "fanout-hosts": { type: "string", default: "50" },
    "fanout-reps": { type: "string", default: "3" },
    "signing-hosts": { type: "string", default: "50" },
    "no-fanout": { type: "boolean", default: false },
    "no-devstack-mode": { type: "boolean", default: false },
    "devstack-reps": { type: "string", default: "3" },
    "no-waves": { type: "boolean", default: false },
    "no-signing": { type: "boolean", default: false },
    "no-docs": { type: "boolean", default: false },
    "agent-node-flags": { type: "string" },
  },
  strict: true,
});
const sizes = values.n.split(",").map(Number);
const reps = Number(values.reps);
/**
 * From MID hosts on, runs are repeated --large-reps times (medians of 3 by default) and
 * warmed up once; from LARGE on not warmed up (a median of three leaves a cold first run
 * out; the agents' spare sessions are let settle first); from HUGE on --huge-reps times
 * (2: their mean), each run taking most of a minute on a small machine. Below MID, --reps
 * times after a warm-up run.
 */
const MID = 100;
const LARGE = 500;
const HUGE = 1000;
const repsFor = (hosts: number) => (hosts >= HUGE ? Number(values["huge-reps"]) : hosts >= MID ? Number(values["large-reps"]) : reps);
const k = Number(values.k);
const fanoutHosts = values["no-fanout"] ? [] : values["fanout-hosts"].split(",").map(Number);

const began = Date.now();
/** Progress lines carry the time since the benchmark started ([m:ss]); the closing tables do not. */
let stamped = true;
const stamp = () => {
  const s = Math.round((Date.now() - began) / 1000);
  return `[${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}] `;
};
const say = (line: string) => process.stdout.write(`${stamped && line !== "" && !line.startsWith(" ") ? stamp() : ""}${line}\n`);
const agentNodeFlags: readonly string[] = values["agent-node-flags"]?.split(/\s+/).filter(Boolean) ?? AGENT_NODE_FLAGS;

/** The bench's services: config, fetcher and coordinator, each a `stackbus serve` process. */
class Services {
  readonly #children = new Map<string, ChildProcess>();
  constructor(
    readonly natsUrl: string,
    readonly cacheDir: string,
  ) {}

  pid(name: string): number {
    return this.#children.get(name)?.pid as number;
  }

  /** Starts a service; resolves when it logs that it is ready. Its warnings and errors go to this process's stderr. */
  start(name: "config" | "fetcher" | "coordinator", extra: string[] = []): Promise<void> {
    const args = [CLI, "serve", name, "--nats", this.natsUrl, ...extra];
    if (name === "fetcher") args.push("--cache-dir", this.cacheDir);
    const child = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, STACKBUS_LOG_LEVEL: "info" } });
    track(child);
    this.#children.set(name, child);
    return new Promise<void>((resolve, reject) => {
      createInterface({ input: child.stderr as NodeJS.ReadableStream }).on("line", (line) => {
        let entry: { level?: number; msg?: string } = {};
        try {
          entry = JSON.parse(line) as typeof entry;
        } catch {
          process.stderr.write(`${name}: ${line}\n`);
          return;
        }
        if (entry.msg?.endsWith(" ready")) resolve();
        else if ((entry.level ?? 0) >= 40) process.stderr.write(`${name}: ${line}\n`);
      });
      child.once("exit", (code) => reject(new Error(`the ${name} service exited with ${code} before it was ready`)));
    });
  }

  async stop(name: string): Promise<void> {
    const child = this.#children.get(name);
    if (!child) return;
    this.#children.delete(name);
    child.kill("SIGTERM");
    await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(undefined) : child.once("exit", r)));
    untrack(child);
  }

  async stopAll(): Promise<void> {
    for (const name of [...this.#children.keys()]) await this.stop(name);
  }
}

async function main(): Promise<void> {
  const work = tempDir("sb-bench-");
  const monitorPort = await freePort();
  const nats = await startNats({ args: ["-m", String(monitorPort)] });
  const monitor = `http://127.0.0.1:${monitorPort}`;
  const logger = silentLogger();
  const bus = await Bus.connect({ servers: nats.url, name: "bench-driver", logger });
  const services = new Services(nats.url, join(work.path, "fetcher-cache"));
  try {
    await Promise.all((["config", "fetcher", "coordinator"] as const).map((name) => services.start(name)));

    const library = bashlibEntry();
    const hooksDir = join(work.path, "floor-top");
    const hooks = writeNoopHooks(hooksDir, k);
    say(`stackbus benchmark: ${cpus().length} CPUs (${cpus()[0]?.model ?? "?"}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; K=${k} no-op extras.d hooks per host; ${reps} repetitions (${values["large-reps"]} from N=${MID}), medians`);

    const devstackMs: number[] = [];
    await devstackOnce(hooksDir, hooks, library);
    for (let i = 0; i < Math.max(reps, 20); i++) devstackMs.push(await devstackOnce(hooksDir, hooks, library));
    const devstack = median(devstackMs);
    say(`DevStack's own cost (one bash: library + 7 steps x ${k} hooks): median ${devstack.toFixed(1)} ms`);

    // DevStack mode first, on the machine before the many-host rows load it: its target is the tightest ratio.
    const devstackMode = values["no-devstack-mode"]
      ? undefined
      : await benchDevstackMode({ bus, url: nats.url, root: join(work.path, "devstack-mode"), reps: Number(values["devstack-reps"]), nodeFlags: agentNodeFlags, say });

    const ctx: StackContext = { bus, url: nats.url, monitor, natsPid: nats.pid as number, coordinatorPid: services.pid("coordinator"), root: work.path, hooks, library, k, idleMs: Number(values["idle-ms"]), nodeFlags: agentNodeFlags, say };
    const { rows, memory } = await stackRows(ctx, devstack);

    const signing = values["no-signing"] ? undefined : await signingRow(ctx, services, rows, work.path);
    const waves = values["no-waves"] ? undefined : await measureWaves({ bus, url: nats.url, root: join(work.path, "waves"), reps: 2, nodeFlags: agentNodeFlags, say });

    const fanout: FanoutRow[] = [];
    for (const h of fanoutHosts) {
      const result = await runFanout(h, Number(values["fanout-reps"]));
      fanout.push(result);
      say(
        `fan-out to ${h} hosts (5 MB plugin, archive ${(result.archiveBytes / 2 ** 20).toFixed(1)} MiB): stackbus ${result.medianStackbusMs.toFixed(0)} ms, ${h} clones ${result.medianClonesMs.toFixed(0)} ms, ` +
          `x${result.speedup.toFixed(2)} faster; of stackbus's, the fetcher ${median(result.fetcherMs).toFixed(0)} ms; the transport's limit (${h} reads of the archive at once) ${median(result.transferMs).toFixed(0)} ms; ` +
          `the disk's limit (${h} copies of the archive's bytes written) ${result.medianDiskMs.toFixed(0)} ms`,
      );
    }



    const results: BenchResults = {
      at: new Date(began).toISOString(),
      machine: { cpus: cpus().length, model: cpus()[0]?.model ?? "", memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
      k,
      repetitions: reps,
      largeRepetitions: Number(values["large-reps"]),
      hugeRepetitions: Number(values["huge-reps"]),
      devstack: { runsMs: devstackMs, medianMs: devstack },
      stack: rows,
      ...(signing ? { signing } : {}),
      ...(waves ? { waves } : {}),
      fanout,
      ...(devstackMode ? { devstackMode } : {}),
      memory,
      durationS: (Date.now() - began) / 1000,
      targets: TARGETS,
    };
    writeResults(results);
  } finally {
    await bus.drain().catch(() => undefined);
    await services.stopAll();
    await nats.stop();
    work.remove();
  }
}

/** The stack rows, N by N, and the memory figures they give. */
async function stackRows(ctx: StackContext, devstack: number): Promise<{ rows: StackRow[]; memory: BenchResults["memory"] }> {
  const rows: StackRow[] = [];
  const memory: BenchResults["memory"] = { agentIdleMiB: Number.NaN, agentRunMiB: Number.NaN, coordinatorMiB: Number.NaN, coordinatorHosts: 0 };
  for (const hosts of sizes) {
    const { row, memory: m } = await measureStack(ctx, hosts, repsFor(hosts), hosts >= LARGE ? 0 : 1);
    if (m.agentIdleMiB !== undefined) memory.agentIdleMiB = m.agentIdleMiB;
    if (m.agentRunMiB !== undefined) memory.agentRunMiB = m.agentRunMiB;
    if (hosts >= memory.coordinatorHosts) Object.assign(memory, { coordinatorHosts: hosts, coordinatorMiB: m.coordinatorPeakMiB });
    rows.push(row);
    say(
      `N=${String(hosts).padStart(4)} (${row.processes} agent process${row.processes === 1 ? "" : "es"}${hosts > row.processes ? `, ${Math.ceil(hosts / row.processes)} agents each` : ""}): ` +
        `floor ${row.medianFloorMs.toFixed(0)} ms, stackbus ${row.medianStackbusMs.toFixed(0)} ms, x${(row.medianStackbusMs / row.medianFloorMs).toFixed(2)} floor, x${(row.medianStackbusMs / devstack).toFixed(1)} DevStack  ` +
        `[stackbus ${row.stackbusMs.map((v) => v.toFixed(0)).join(", ")}] [floor ${row.floorMs.map((v) => v.toFixed(0)).join(", ")}]`,
    );
    say(`      steps (ms since start, median): ${row.stepsMs.map((s) => `${s.step} ${s.finishedAtMs.toFixed(0)}`).join(", ")}`);
    say(describeRow(row));
  }
  say(`memory: agent idle ${memory.agentIdleMiB.toFixed(1)} MiB, during a run ${memory.agentRunMiB.toFixed(1)} MiB; coordinator peak at N=${memory.coordinatorHosts} ${memory.coordinatorMiB.toFixed(1)} MiB`);
  return { rows, memory };
}

/** Signed commands: the coordinator started with a signing key, the agents with its public key. */
async function signingRow(ctx: StackContext, services: Services, rows: StackRow[], dir: string): Promise<BenchResults["signing"]> {
  const hosts = Number(values["signing-hosts"]);
  const unsigned = rows.find((r) => r.hosts === hosts);
  await services.stop("coordinator");
  try {
    return await measureSigning({
      ctx,
      hosts,
      reps: Number(values["large-reps"]),
      dir,
      unsigned,
      startCoordinator: async (keyFile) => {
        await services.start("coordinator", ["--signing-key", keyFile]);
        return services.pid("coordinator");
      },
      stopCoordinator: () => services.stop("coordinator"),
    });
  } finally {
    await services.stop("coordinator");
    await services.start("coordinator");
  }
}

function writeResults(results: BenchResults): void {
  stamped = false;
  const outDir = join(REPO_ROOT, "test/bench-results");
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, `${results.at.replace(/[:.]/g, "-")}.json`);
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  const table = renderMarkdown(results);
  say("");
  say(table);
  say(`figures: ${file}`);
  if (!values["no-docs"]) {
    const docs = join(REPO_ROOT, "docs/benchmarks.md");
    const text = readFileSync(docs, "utf8");
    const start = "<!-- bench:results:start -->";
    const end = "<!-- bench:results:end -->";
    const a = text.indexOf(start);
    const b = text.indexOf(end);
    if (a < 0 || b < a) throw new Error(`docs/benchmarks.md has no ${start} ... ${end} section`);
    writeFileSync(docs, `${text.slice(0, a + start.length)}\n${table}\n${text.slice(b)}`);
    say("table written into docs/benchmarks.md");
  }
  say(`benchmark took ${results.durationS.toFixed(0)} s`);
}

async function runFanout(hosts: number, repetitions: number): Promise<FanoutRow> {
  const clones = String(Math.min(repetitions, 2));
  const child = spawn(process.execPath, [FANOUT, "--hosts", String(hosts), "--size-mb", "5", "--repetitions", String(repetitions), "--clone-repetitions", clones, "--json"], { stdio: ["ignore", "pipe", "inherit"] });
  track(child);
  let out = "";
  child.stdout.on("data", (c: Buffer) => (out += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  untrack(child);
  if (code !== 0) throw new Error(`the fan-out benchmark for ${hosts} hosts exited ${code}`);
  return JSON.parse(out.trim().split("\n").pop() as string) as FanoutRow;
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`benchmark failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);

#!/usr/bin/env node
/**
 * `npm run bench`: stackbus against its floor and DevStack's own cost, plugin fan-out
 * against clones, and memory, in one invocation on one machine. Writes the figures to
 * test/bench-results/<timestamp>.json and the table into docs/benchmarks.md.
 *
 * Options: --n 1,10,50,100,200  --reps 5  --k 10  --idle-ms 1500  --no-fanout  --no-docs
 *
 * Between two timed runs the hosts sit idle for --idle-ms, as they do between real runs
 * (an agent opens the next run's shell in that time, a second after a run ends).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { cpus, totalmem } from "node:os";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { bashlibEntry } from "@stackbus/bashlib";
import { AGENT_NODE_FLAGS } from "@stackbus/agent/node-flags";
import { Bus, silentLogger } from "@stackbus/bus";
import { startNats, tempDir, track, untrack, waitFor } from "@stackbus/testkit";
import { LabListRequestSchema, LabListSchema, subjects } from "@stackbus/protocol";
import { devstackOnce } from "./devstack.js";
import { benchDevstackMode } from "./devstack-mode.js";
import { startFloor } from "./floor.js";
import { median, writeNoopHooks } from "./hooks.js";
import { rssMiB, sampleRss } from "./rss.js";
import { startStackbusSide, type StackTiming } from "./stackbus.js";
import { renderMarkdown, TARGETS, type BenchResults, type FanoutRow, type StackRow } from "./report.js";

const REPO_ROOT = new URL("../../../", import.meta.url).pathname;
const CLI = join(REPO_ROOT, "packages/cli/bin/stackbus.js");
const FANOUT = join(REPO_ROOT, "services/fetcher/dist/bench/fanout.js");

const { values } = parseArgs({
  options: {
    n: { type: "string", default: "1,10,50,100,200" },
    reps: { type: "string", default: "5" },
    k: { type: "string", default: "10" },
    "idle-ms": { type: "string", default: "1500" },
    "fanout-hosts": { type: "string", default: "10,50" },
    "no-fanout": { type: "boolean", default: false },
    "no-devstack-mode": { type: "boolean", default: false },
    "devstack-reps": { type: "string", default: "3" },
    "no-docs": { type: "boolean", default: false },
  },
  strict: true,
});
const sizes = values.n.split(",").map(Number);
const reps = Number(values.reps);
const k = Number(values.k);
const idleMs = Number(values["idle-ms"]);
const idle = () => new Promise((resolve) => setTimeout(resolve, idleMs));
const fanoutHosts = values["no-fanout"] ? [] : values["fanout-hosts"].split(",").map(Number);

/** Agent (and floor) processes for N hosts: one per host up to 10, then 10 shared. */
export function processesFor(hosts: number): number {
  return Math.min(hosts, 10);
}

const say = (line: string) => process.stdout.write(`${line}\n`);

async function main(): Promise<void> {
  const began = Date.now();
  const work = tempDir("sb-bench-");
  const nats = await startNats();
  const logger = silentLogger();
  const bus = await Bus.connect({ servers: nats.url, name: "bench-driver", logger });
  const services = new Map<string, ChildProcess>();
  try {
    for (const name of ["config", "fetcher", "coordinator"] as const) {
      const args = [CLI, "serve", name, "--nats", nats.url];
      if (name === "fetcher") args.push("--cache-dir", join(work.path, "fetcher-cache"));
      const child = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, STACKBUS_LOG_LEVEL: "warn" } });
      track(child);
      services.set(name, child);
    }
    await waitFor("the config service", () => bus.request(subjects.labList(), LabListRequestSchema, {}, LabListSchema, { timeoutMs: 1_000 }).catch(() => undefined), 30_000, 100);

    const library = bashlibEntry();
    const hooksDir = join(work.path, "floor-top");
    const hooks = writeNoopHooks(hooksDir, k);
    say(`stackbus benchmark: ${cpus().length} CPUs (${cpus()[0]?.model ?? "?"}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; K=${k} no-op extras.d hooks per host; ${reps} repetitions, medians`);

    const devstackMs: number[] = [];
    await devstackOnce(hooksDir, hooks, library);
    for (let i = 0; i < Math.max(reps, 20); i++) devstackMs.push(await devstackOnce(hooksDir, hooks, library));
    const devstack = median(devstackMs);
    say(`DevStack's own cost (one bash: library + 7 steps x ${k} hooks): median ${devstack.toFixed(1)} ms`);

    const rows: StackRow[] = [];
    let agentIdleMiB = Number.NaN;
    let agentRunMiB = Number.NaN;
    let coordinatorMiB = Number.NaN;
    let coordinatorHosts = 0;
    const coordinatorPid = services.get("coordinator")?.pid as number;
    for (const hosts of sizes) {
      const processes = processesFor(hosts);
      const floor = await startFloor(nats.url, hosts, processes, hooks, library);
      const side = await startStackbusSide({ bus, url: nats.url, lab: `bench${hosts}`, root: join(work.path, `n${hosts}`), hosts, processes, k, nodeFlags: AGENT_NODE_FLAGS });
      try {
        await floor.run();
        await side.run();
        await idle();
        await side.run();
        if (hosts === 1) {
          await new Promise((r) => setTimeout(r, 1_000));
          agentIdleMiB = rssMiB(side.pids[0] as number);
        }
        const coordinator = sampleRss(coordinatorPid);
        const agent = hosts === 1 ? sampleRss(side.pids[0] as number, 5) : undefined;
        const floorMs: number[] = [];
        const stackMs: number[] = [];
        const timings: StackTiming[] = [];
        for (let i = 0; i < reps; i++) {
          await idle();
          floorMs.push(await floor.run());
          await idle();
          const t = await side.run();
          timings.push(t);
          stackMs.push(t.totalMs);
        }
        const coordPeak = coordinator.stop();
        if (agent) agentRunMiB = agent.stop();
        if (hosts >= coordinatorHosts) {
          coordinatorHosts = hosts;
          coordinatorMiB = coordPeak;
        }
        const row: StackRow = {
          hosts,
          processes,
          floorMs,
          stackbusMs: stackMs,
          medianFloorMs: median(floorMs),
          medianStackbusMs: median(stackMs),
          stepsMs: medianSteps(timings),
        };
        rows.push(row);
        say(
          `N=${String(hosts).padStart(3)} (${processes} process${processes === 1 ? "" : "es"}): floor ${row.medianFloorMs.toFixed(0)} ms, stackbus ${row.medianStackbusMs.toFixed(0)} ms, ` +
            `x${(row.medianStackbusMs / row.medianFloorMs).toFixed(2)} floor, x${(row.medianStackbusMs / devstack).toFixed(1)} DevStack  ` +
            `[stackbus ${stackMs.map((v) => v.toFixed(0)).join(", ")}] [floor ${floorMs.map((v) => v.toFixed(0)).join(", ")}]`,
        );
        say(`      steps (ms since start, median): ${row.stepsMs.map((s) => `${s.step} ${s.finishedAtMs.toFixed(0)}`).join(", ")}`);
      } finally {
        await side.stop();
        await floor.stop();
      }
    }
    say(`memory: agent idle ${agentIdleMiB.toFixed(1)} MiB, during a run ${agentRunMiB.toFixed(1)} MiB; coordinator peak at N=${coordinatorHosts} ${coordinatorMiB.toFixed(1)} MiB`);

    const fanout = [];
    for (const h of fanoutHosts) {
      const result = await runFanout(h, reps);
      fanout.push(result);
      say(`fan-out to ${h} hosts (5 MB plugin): stackbus ${result.medianStackbusMs.toFixed(0)} ms, ${h} clones ${result.medianClonesMs.toFixed(0)} ms, x${result.speedup.toFixed(2)} faster`);
    }

    const devstackMode = values["no-devstack-mode"]
      ? undefined
      : await benchDevstackMode({ bus, url: nats.url, root: join(work.path, "devstack-mode"), reps: Number(values["devstack-reps"]), nodeFlags: AGENT_NODE_FLAGS, say });

    const results: BenchResults = {
      at: new Date(began).toISOString(),
      machine: { cpus: cpus().length, model: cpus()[0]?.model ?? "", memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
      k,
      repetitions: reps,
      devstack: { runsMs: devstackMs, medianMs: devstack },
      stack: rows,
      fanout,
      ...(devstackMode ? { devstackMode } : {}),
      memory: { agentIdleMiB, agentRunMiB, coordinatorMiB, coordinatorHosts },
      durationS: (Date.now() - began) / 1000,
      targets: TARGETS,
    };
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
  } finally {
    await bus.drain().catch(() => undefined);
    for (const child of services.values()) {
      child.kill("SIGTERM");
      await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once("exit", r)));
      untrack(child);
    }
    await nats.stop();
    work.remove();
  }
}

function medianSteps(timings: StackTiming[]): Array<{ step: string; finishedAtMs: number }> {
  const first = timings[0]?.steps ?? [];
  return first.map((s, i) => ({ step: s.step, finishedAtMs: median(timings.map((t) => t.steps[i]?.finishedAtMs ?? Number.NaN)) }));
}

async function runFanout(hosts: number, repetitions: number): Promise<FanoutRow> {
  const child = spawn(process.execPath, [FANOUT, "--hosts", String(hosts), "--size-mb", "5", "--repetitions", String(repetitions), "--json"], { stdio: ["ignore", "pipe", "inherit"] });
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

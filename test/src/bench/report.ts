import type { FanoutBenchResult } from "@stackbus/fetcher-service/bench/fanout";
import type { DevstackModeRow } from "./devstack-mode.js";
import type { SigningRow } from "./signing-row.js";
import { describeLatency, type StackRow } from "./stack-row.js";
import type { WavesRow } from "./waves.js";
import { median } from "./hooks.js";

export type { StackRow } from "./stack-row.js";

/** The targets of issue 16, as ratios and limits from the same run. */
export const TARGETS = {
  /** stackbus / floor at every N from 50 to 1000, at most. */
  floorRatio: 2,
  floorFromHosts: 50,
  /** stackbus at N = 1 / DevStack's own cost, at most. */
  devstackRatio: 3,
  /** Messages into nats-server per host for a quiet step, at most. */
  quietStepInMsgs: 3,
  /** clones / stackbus for 50 hosts, at least. */
  fanoutSpeedup: 5,
  fanoutHosts: 50,
  agentIdleMiB: 60,
  coordinatorMiB: 300,
  coordinatorHosts: 1000,
  /** DevStack mode on one host / plain ./stack.sh, at most. */
  devstackModeRatio: 1.05,
} as const;

/** One fan-out measurement, as the fetcher's fan-out benchmark reports it. */
export type FanoutRow = FanoutBenchResult;

export interface BenchResults {
  at: string;
  machine: { cpus: number; model: string; memoryGiB: number; node: string };
  k: number;
  repetitions: number;
  /** Repetitions from N = 500 on. */
  largeRepetitions: number;
  /** From N = 1000. */
  hugeRepetitions?: number;
  devstack: { runsMs: number[]; medianMs: number };
  stack: StackRow[];
  signing?: SigningRow;
  waves?: WavesRow;
  fanout: FanoutRow[];
  /** Absent where the real DevStack cannot run. */
  devstackMode?: DevstackModeRow;
  memory: { agentIdleMiB: number; agentRunMiB: number; coordinatorMiB: number; coordinatorHosts: number };
  durationS: number;
  targets: typeof TARGETS;
}

const ms = (v: number) => (v >= 100 ? v.toFixed(0) : v.toFixed(1));
const x = (v: number) => `${v.toFixed(2)}×`;
const n2 = (v: number) => v.toFixed(2);
const bytes = (v: number) => (v >= 10 ? v.toFixed(0) : v.toFixed(1));
const verdict = (ok: boolean) => (ok ? "met" : "**not met**");

/** Where one step's time goes at N = 1 (from the run stream), when measured. */
function latencyLine(r: BenchResults): string[] {
  const l = r.stack.find((s) => s.hosts === 1)?.latency;
  return l ? ["", `Where one step's time goes at N = 1 (median of the last run's seven steps, in ms, from the run stream's store times and the agent's clock): ${describeLatency(l)}.`] : [];
}

/** The results as the Markdown tables docs/benchmarks.md carries. */
export function renderMarkdown(r: BenchResults): string {
  const lines: string[] = [];
  const dev = r.devstack.medianMs;
  lines.push(
    `Run of ${r.at} on ${r.machine.cpus} × ${r.machine.model}, ${r.machine.memoryGiB} GiB, Node ${r.machine.node}; ` +
      `K = ${r.k} no-op extras.d hooks per host; medians of ${r.repetitions} repetitions (${r.largeRepetitions} from N = 100, warmed up once below N = 500 and not from there; ${r.hugeRepetitions ?? r.largeRepetitions} at N = 1000; fan-out: ${r.fanout[0]?.stackbusMs.length ?? 0}; DevStack's own cost: ${r.devstack.runsMs.length}); the whole benchmark took ${r.durationS.toFixed(0)} s. ` +
      "Up to 10 hosts each agent is its own `stackbus agent` process; above 10 the agents share 10 processes (column *processes*), as the floor's shells do.",
    "",
    `DevStack's own cost (one bash sourcing the helper library, then the 7 steps' hooks): **${ms(dev)} ms**.`,
    ...latencyLine(r),
    "",
    ...stackTable(r),
    "",
    ...trafficTable(r),
    "",
    ...cpuTable(r),
  );
  if (r.signing) lines.push("", ...signingTable(r.signing));
  if (r.waves) lines.push("", ...wavesTable(r.waves));
  if (r.fanout.length > 0) lines.push("", ...fanoutTable(r.fanout));
  if (r.devstackMode) {
    const d = r.devstackMode;
    lines.push(
      "",
      "| DevStack mode, one host (real stack.sh) | plain ./stack.sh (ms) | stackbus (ms) | stackbus / plain | target |",
      "| --- | ---: | ---: | ---: | --- |",
      `| medians of ${d.repetitions}, alternated | ${ms(d.medianPlainMs)} | ${ms(d.medianStackbusMs)} | ${d.ratio.toFixed(3)}× | ≤ ${TARGETS.devstackModeRatio}×: ${verdict(d.ratio <= TARGETS.devstackModeRatio)} |`,
    );
  }
  const m = r.memory;
  lines.push(
    "",
    "| memory (RSS) | MiB | target |",
    "| --- | ---: | --- |",
    `| agent process (\`stackbus agent\`), idle | ${m.agentIdleMiB.toFixed(1)} | ≤ ${TARGETS.agentIdleMiB}: ${verdict(m.agentIdleMiB <= TARGETS.agentIdleMiB)} |`,
    `| agent process (\`stackbus agent\`), peak during a run | ${m.agentRunMiB.toFixed(1)} | |`,
    `| coordinator, peak during runs at N = ${m.coordinatorHosts} | ${m.coordinatorMiB.toFixed(1)} | ${m.coordinatorHosts === TARGETS.coordinatorHosts ? `≤ ${TARGETS.coordinatorMiB}: ${verdict(m.coordinatorMiB <= TARGETS.coordinatorMiB)}` : ""} |`,
  );
  return lines.join("\n");
}

function stackTable(r: BenchResults): string[] {
  const dev = r.devstack.medianMs;
  const lines = ["| N hosts | processes | floor (ms) | stackbus (ms) | stackbus / floor | stackbus / DevStack | target |", "| ---: | ---: | ---: | ---: | ---: | ---: | --- |"];
  for (const row of r.stack) {
    const toFloor = row.medianStackbusMs / row.medianFloorMs;
    const toDev = row.medianStackbusMs / dev;
    let target = "";
    if (row.hosts >= TARGETS.floorFromHosts) target = `≤ ${TARGETS.floorRatio}× floor: ${verdict(toFloor <= TARGETS.floorRatio)}`;
    if (row.hosts === 1) target = `≤ ${TARGETS.devstackRatio}× DevStack: ${verdict(toDev <= TARGETS.devstackRatio)}`;
    lines.push(`| ${row.hosts} | ${row.processes} | ${ms(row.medianFloorMs)} | ${ms(row.medianStackbusMs)} | ${x(toFloor)} | ${x(toDev)} | ${target} |`);
  }
  return lines;
}

function trafficTable(r: BenchResults): string[] {
  const lines = [
    "Messages and bytes into and out of nats-server (its monitoring endpoint), per host and step (whole runs: prepare and the seven steps, every connection); a quiet step is the median window from one step's start to the next's; idle is per host per second with no run. What a run keeps: the run stream's bytes per host and step, and the run record's bytes per host.",
    "",
    "| N | in msgs | in B | out msgs | out B | quiet step in / out msgs | floor in / out msgs | idle in msgs/s | run stream B (msgs) | logs B | run record B per host | target |",
    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
  ];
  for (const row of r.stack) {
    const t = row.traffic;
    const s = row.storage;
    lines.push(
      `| ${row.hosts} | ${n2(t.stackbus.inMsgs)} | ${bytes(t.stackbus.inBytes)} | ${n2(t.stackbus.outMsgs)} | ${bytes(t.stackbus.outBytes)} | ${n2(t.quietStep.inMsgs)} / ${n2(t.quietStep.outMsgs)} | ${n2(t.floor.inMsgs)} / ${n2(t.floor.outMsgs)} | ${n2(row.idle.inMsgs)} | ${bytes(s.runStreamBytes)} (${n2(s.runStreamMsgs)}) | ${bytes(s.logStreamBytes)} | ${bytes(s.recordBytes)} | ≤ ${TARGETS.quietStepInMsgs} in: ${verdict(t.quietStep.inMsgs <= TARGETS.quietStepInMsgs)} |`,
    );
  }
  return lines;
}

function cpuTable(r: BenchResults): string[] {
  const lines = [
    "CPU milliseconds per host and step (/proc), during the timed runs: the agents' Node processes, the hook shells (bash), the coordinator, nats-server; the floor's Node workers and shells.",
    "",
    "| N | agents | shells | coordinator | nats-server | stackbus total | floor workers | floor shells | floor nats-server | floor total |",
    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const row of r.stack) {
    const c = row.cpu.stackbus;
    const f = row.cpu.floor;
    lines.push(
      `| ${row.hosts} | ${n2(c.agentsMs)} | ${n2(c.shellsMs)} | ${n2(c.coordinatorMs)} | ${n2(c.natsMs)} | ${n2(c.agentsMs + c.shellsMs + c.coordinatorMs + c.natsMs)} | ${n2(f.workersMs)} | ${n2(f.shellsMs)} | ${n2(f.natsMs)} | ${n2(f.workersMs + f.shellsMs + f.natsMs)} |`,
    );
  }
  return lines;
}

function signingTable(s: SigningRow): string[] {
  return [
    `| signed commands, N = ${s.hosts} | unsigned (ms) | signed (ms) | signed / unsigned | agents CPU ms per host and step | coordinator CPU ms per host and step | one signature / one check (ms) |`,
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    `| medians of ${s.repetitions} | ${s.medianUnsignedMs === null ? "—" : ms(s.medianUnsignedMs)} | ${ms(s.medianSignedMs)} | ${s.medianUnsignedMs === null ? "—" : x(s.medianSignedMs / s.medianUnsignedMs)} | ${n2(s.cpu.agentsMs)} | ${n2(s.cpu.coordinatorMs)} | ${s.signMs.toFixed(3)} / ${s.verifyMs.toFixed(3)} |`,
  ];
}

function wavesTable(w: WavesRow): string[] {
  const base = w.cases[0]?.medianMs ?? Number.NaN;
  const lines = [
    `| waves per step: controller (wave 1) + 2 computes (wave 2), hooks sleeping ${w.controllerS.toFixed(2)} s / ${w.computeS.toFixed(2)} s | stack (s) | against wave order in every step |`,
    "| --- | ---: | ---: |",
  ];
  for (const c of w.cases) lines.push(`| ${c.name} | ${(c.medianMs / 1000).toFixed(2)} | ${x(c.medianMs / base)} |`);
  return lines;
}

function fanoutTable(rows: FanoutRow[]): string[] {
  const lines = [
    "| plugin fan-out | archive | stackbus (ms) | of which the fetcher: clone, archive, upload (ms) | N clones (ms) | clones / stackbus | the transport's limit: N reads of the archive at once (ms) | the disk's limit: N archives' bytes written (ms) | stackbus / disk limit | target |",
    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
  ];
  for (const f of rows) {
    const target = f.hosts === TARGETS.fanoutHosts ? `≥ ${TARGETS.fanoutSpeedup}×: ${verdict(f.speedup >= TARGETS.fanoutSpeedup)}` : "";
    lines.push(`| ${f.hosts} hosts, ${f.sizeMB} MB | ${(f.archiveBytes / 2 ** 20).toFixed(1)} MiB | ${ms(f.medianStackbusMs)} | ${ms(median(f.fetcherMs))} | ${ms(f.medianClonesMs)} | ${x(f.speedup)} | ${ms(median(f.transferMs))} | ${ms(f.medianDiskMs)} | ${x(f.medianStackbusMs / f.medianDiskMs)} | ${target} |`);
  }
  return lines;
}

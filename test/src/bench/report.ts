import type { FanoutBenchResult } from "@stackbus/fetcher-service/bench/fanout";
import type { DevstackModeRow } from "./devstack-mode.js";

/** The targets of issue 9, as ratios and limits from the same run. */
export const TARGETS = {
  /** stackbus / floor at N = 50 and 100, at most. */
  floorRatio: 1.5,
  floorHosts: [50, 100],
  /** stackbus at N = 1 / DevStack's own cost, at most. */
  devstackRatio: 3,
  /** clones / stackbus for 50 hosts, at least. */
  fanoutSpeedup: 5,
  fanoutHosts: 50,
  agentIdleMiB: 60,
  coordinatorMiB: 200,
  coordinatorHosts: 200,
  /** DevStack mode on one host / plain ./stack.sh, at most. */
  devstackModeRatio: 1.05,
} as const;

export interface StackRow {
  hosts: number;
  /** Processes the agents (and the floor's shells) were spread over. */
  processes: number;
  floorMs: number[];
  stackbusMs: number[];
  medianFloorMs: number;
  medianStackbusMs: number;
  /** Median time from the start request to each step's end. */
  stepsMs: Array<{ step: string; finishedAtMs: number }>;
}

/** One fan-out measurement, as the fetcher's fan-out benchmark reports it. */
export type FanoutRow = FanoutBenchResult;

export interface BenchResults {
  at: string;
  machine: { cpus: number; model: string; memoryGiB: number; node: string };
  k: number;
  repetitions: number;
  devstack: { runsMs: number[]; medianMs: number };
  stack: StackRow[];
  fanout: FanoutRow[];
  /** Absent where the real DevStack cannot run. */
  devstackMode?: DevstackModeRow;
  memory: { agentIdleMiB: number; agentRunMiB: number; coordinatorMiB: number; coordinatorHosts: number };
  durationS: number;
  targets: typeof TARGETS;
}

const ms = (v: number) => (v >= 100 ? v.toFixed(0) : v.toFixed(1));
const x = (v: number) => `${v.toFixed(2)}×`;
const verdict = (ok: boolean) => (ok ? "met" : "**not met**");

/** The results as the Markdown tables docs/benchmarks.md carries. */
export function renderMarkdown(r: BenchResults): string {
  const lines: string[] = [];
  const dev = r.devstack.medianMs;
  lines.push(
    `Run of ${r.at} on ${r.machine.cpus} × ${r.machine.model}, ${r.machine.memoryGiB} GiB, Node ${r.machine.node}; ` +
      `K = ${r.k} no-op extras.d hooks per host; medians of ${r.repetitions} repetitions (DevStack's own cost: ${r.devstack.runsMs.length}); the whole benchmark took ${r.durationS.toFixed(0)} s.`,
    "",
    `DevStack's own cost (one bash sourcing the helper library, then the 7 steps' hooks): **${ms(dev)} ms**.`,
    "",
    "| N hosts | processes | floor (ms) | stackbus (ms) | stackbus / floor | stackbus / DevStack | target |",
    "| ---: | ---: | ---: | ---: | ---: | ---: | --- |",
  );
  for (const row of r.stack) {
    const toFloor = row.medianStackbusMs / row.medianFloorMs;
    const toDev = row.medianStackbusMs / dev;
    let target = "";
    if ((TARGETS.floorHosts as readonly number[]).includes(row.hosts)) target = `≤ ${TARGETS.floorRatio}× floor: ${verdict(toFloor <= TARGETS.floorRatio)}`;
    if (row.hosts === 1) target = `≤ ${TARGETS.devstackRatio}× DevStack: ${verdict(toDev <= TARGETS.devstackRatio)}`;
    lines.push(`| ${row.hosts} | ${row.processes} | ${ms(row.medianFloorMs)} | ${ms(row.medianStackbusMs)} | ${x(toFloor)} | ${x(toDev)} | ${target} |`);
  }
  if (r.fanout.length > 0) {
    lines.push(
      "",
      "| plugin fan-out | archive | stackbus (ms) | N clones (ms) | clones / stackbus | target |",
      "| ---: | ---: | ---: | ---: | ---: | --- |",
    );
    for (const f of r.fanout) {
      const target = f.hosts === TARGETS.fanoutHosts ? `≥ ${TARGETS.fanoutSpeedup}×: ${verdict(f.speedup >= TARGETS.fanoutSpeedup)}` : "";
      lines.push(`| ${f.hosts} hosts, ${f.sizeMB} MB | ${(f.archiveBytes / 2 ** 20).toFixed(1)} MiB | ${ms(f.medianStackbusMs)} | ${ms(f.medianClonesMs)} | ${x(f.speedup)} | ${target} |`);
    }
  }
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

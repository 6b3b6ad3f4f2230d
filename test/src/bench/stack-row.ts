import { join } from "node:path";
import type { Bus } from "@stackbus/bus";
import { BUCKETS, keys, STREAMS } from "@stackbus/protocol";
import { startFloor } from "./floor.js";
import { hostName, median, STACK_PHASES } from "./hooks.js";
import { stepLatency, type StepLatency } from "./latency.js";
import { addCpu, cpuDelta, cpuSnapshot, NO_TRAFFIC, addTraffic, scaleTraffic, serverTraffic, subTraffic, trafficByRole, type CpuSnapshot, type Role, type Traffic } from "./meter.js";
import { rssMiB, sampleRss } from "./rss.js";
import { startStackbusSide, type StackTiming } from "./stackbus.js";

/** Steps of one stack run: prepare, then the seven stack steps. */
export const STEPS_PER_RUN = STACK_PHASES.length + 1;

/** The steps whose windows (from their start to the next step's start) are quiet steps: no output, no-op hooks. */
const QUIET_STEPS = ["override_defaults", "source", "pre-install", "install", "post-config", "extra"];

/** CPU milliseconds per host and step. */
export interface StackCpu {
  /** The agents' Node processes. */
  agentsMs: number;
  /** The hook sessions' bash (and anything they start). */
  shellsMs: number;
  coordinatorMs: number;
  natsMs: number;
}

export interface FloorCpu {
  /** The floor's Node processes (NATS connections, no stackbus code). */
  workersMs: number;
  shellsMs: number;
  natsMs: number;
}

export interface StackRow {
  hosts: number;
  /** Processes the agents (and the floor's shells) were spread over. */
  processes: number;
  repetitions: number;
  floorMs: number[];
  stackbusMs: number[];
  medianFloorMs: number;
  medianStackbusMs: number;
  /** Median time from the start request to each step's end. */
  stepsMs: Array<{ step: string; finishedAtMs: number }>;
  /** Messages and bytes into and out of nats-server per host and step (monitoring endpoint). */
  traffic: {
    /** Whole stack runs (prepare and seven steps), all connections. */
    stackbus: Traffic;
    /** A quiet step: the median, over the quiet steps of every run, of a step's window, per host. */
    quietStep: Traffic;
    /** Whole runs by who sent or received: agents, coordinator, config service, ... */
    byRole: Partial<Record<Role, Traffic>>;
    floor: Traffic;
  };
  /** CPU ms per host and step, from /proc. */
  cpu: { stackbus: StackCpu; floor: FloorCpu };
  /** With no run: messages and bytes per host per second. */
  idle: Traffic;
  /** What a run keeps: the run stream's and the log stream's bytes per host and step, and the run record's bytes per host. */
  storage: { runStreamBytes: number; runStreamMsgs: number; logStreamBytes: number; recordBytes: number };
  /** N = 1: where a step's time goes (the last run's steps, from the run stream). */
  latency?: StepLatency | undefined;
}

export interface StackContext {
  bus: Bus;
  url: string;
  /** nats-server's monitoring endpoint (http://host:port). */
  monitor: string;
  natsPid: number;
  coordinatorPid: number;
  root: string;
  hooks: string[];
  library: string;
  k: number;
  idleMs: number;
  nodeFlags: readonly string[];
  say: (line: string) => void;
}

export interface MemoryFigures {
  /** Only for N = 1. */
  agentIdleMiB?: number;
  agentRunMiB?: number;
  coordinatorPeakMiB: number;
}

/** Agent (and floor) processes for N hosts: one per host up to 10, then 10 shared. */
export function processesFor(hosts: number): number {
  return Math.min(hosts, 10);
}

/**
 * One N of the stack benchmark: the floor and the stackbus side started side by side,
 * warmed up, then alternated `reps` times with the hosts idle in between. Traffic and CPU
 * are summed over the timed runs; the idle traffic is taken after them.
 */
export async function measureStack(ctx: StackContext, hosts: number, reps: number, warmups: number): Promise<{ row: StackRow; memory: MemoryFigures }> {
  const idle = () => new Promise((resolve) => setTimeout(resolve, ctx.idleMs));
  const processes = processesFor(hosts);
  const t0 = performance.now();
  const floor = await startFloor(ctx.url, hosts, processes, ctx.hooks, ctx.library);
  const t1 = performance.now();
  const side = await startStackbusSide({ bus: ctx.bus, url: ctx.url, lab: `bench${hosts}`, root: join(ctx.root, `n${hosts}`), hosts, processes, k: ctx.k, nodeFlags: ctx.nodeFlags });
  const t2 = performance.now();
  // Without a warm-up run, the agents' spare sessions (opened as they start) are ready before the first timed run.
  const settledMs = warmups === 0 ? await settle(side.pids) : 0;
  ctx.say(
    `      N=${hosts}: the floor's shells started in ${((t1 - t0) / 1000).toFixed(1)} s, the agents in ${((t2 - t1) / 1000).toFixed(1)} s` +
      (warmups === 0 ? `, and were idle ${(settledMs / 1000).toFixed(1)} s later` : ""),
  );
  const memory: MemoryFigures = { coordinatorPeakMiB: Number.NaN };
  try {
    await floor.run();
    for (let i = 0; i < warmups; i++) {
      if (i > 0) await idle();
      await side.run();
    }
    if (hosts === 1) {
      await new Promise((r) => setTimeout(r, 1_000));
      memory.agentIdleMiB = rssMiB(side.pids[0] as number);
    }
    const coordinator = sampleRss(ctx.coordinatorPid);
    const agent = hosts === 1 ? sampleRss(side.pids[0] as number, 5) : undefined;
    const stackGroups = { agents: side.pids, coordinator: [ctx.coordinatorPid], nats: [ctx.natsPid] };
    const floorGroups = { floor: floor.pids, nats: [ctx.natsPid] };
    const floorMs: number[] = [];
    const stackMs: number[] = [];
    const timings: StackTiming[] = [];
    let stackTraffic = NO_TRAFFIC;
    let floorTraffic = NO_TRAFFIC;
    const byRole: Partial<Record<Role, Traffic>> = {};
    const quiet: Traffic[] = [];
    let stored = { runBytes: 0, runMsgs: 0, logBytes: 0 };
    let stackCpu: CpuSnapshot = {};
    let floorCpu: CpuSnapshot = {};
    for (let i = 0; i < reps; i++) {
      await idle();
      const f0 = await serverTraffic(ctx.monitor);
      const fc0 = cpuSnapshot(floorGroups);
      floorMs.push(await floor.run());
      floorCpu = addCpu(floorCpu, cpuDelta(cpuSnapshot(floorGroups), fc0));
      floorTraffic = addTraffic(floorTraffic, subTraffic(await serverTraffic(ctx.monitor), f0));
      await idle();
      const streams0 = await streamSizes(ctx.bus);
      const roles0 = await trafficByRole(ctx.monitor);
      const s0 = await serverTraffic(ctx.monitor);
      const sc0 = cpuSnapshot(stackGroups);
      const windows: Array<{ step: string; at: Promise<Traffic> }> = [];
      const t = await side.run((step) => windows.push({ step, at: serverTraffic(ctx.monitor) }));
      stackCpu = addCpu(stackCpu, cpuDelta(cpuSnapshot(stackGroups), sc0));
      const s1 = await serverTraffic(ctx.monitor);
      const roles1 = await trafficByRole(ctx.monitor);
      stackTraffic = addTraffic(stackTraffic, subTraffic(s1, s0));
      const streams1 = await streamSizes(ctx.bus);
      stored = { runBytes: stored.runBytes + streams1.runBytes - streams0.runBytes, runMsgs: stored.runMsgs + streams1.runMsgs - streams0.runMsgs, logBytes: stored.logBytes + streams1.logBytes - streams0.logBytes };
      for (const [role, after] of Object.entries(roles1) as Array<[Role, Traffic]>) byRole[role] = addTraffic(byRole[role] ?? NO_TRAFFIC, subTraffic(after, roles0[role] ?? NO_TRAFFIC));
      const marks = await Promise.all(windows.map(async (w) => ({ step: w.step, at: await w.at })));
      marks.forEach((m, j) => {
        const next = marks[j + 1];
        if (next && QUIET_STEPS.includes(m.step)) quiet.push(scaleTraffic(subTraffic(next.at, m.at), hosts));
      });
      timings.push(t);
      stackMs.push(t.totalMs);
    }
    memory.coordinatorPeakMiB = coordinator.stop();
    const last = timings[timings.length - 1];
    const record = last ? await (await ctx.bus.kv(BUCKETS.runs)).get(keys.run(`bench${hosts}`, last.runId)) : null;
    if (agent) memory.agentRunMiB = agent.stop();
    const latency = hosts === 1 && last ? await stepLatency(ctx.bus, `bench${hosts}`, last.runId, hostName(0)) : undefined;

    await new Promise((r) => setTimeout(r, 1_000));
    const idleSeconds = 3;
    const i0 = await serverTraffic(ctx.monitor);
    await new Promise((r) => setTimeout(r, idleSeconds * 1_000));
    const idleTraffic = scaleTraffic(subTraffic(await serverTraffic(ctx.monitor), i0), hosts * idleSeconds);

    const hostSteps = hosts * STEPS_PER_RUN * reps;
    const per = (v: { selfMs: number; childrenMs: number } | undefined, which: "selfMs" | "childrenMs") => (v?.[which] ?? 0) / hostSteps;
    const row: StackRow = {
      hosts,
      processes,
      repetitions: reps,
      floorMs,
      stackbusMs: stackMs,
      medianFloorMs: median(floorMs),
      medianStackbusMs: median(stackMs),
      stepsMs: medianSteps(timings),
      traffic: {
        stackbus: scaleTraffic(stackTraffic, hostSteps),
        quietStep: medianTraffic(quiet),
        byRole: Object.fromEntries(Object.entries(byRole).map(([role, v]) => [role, scaleTraffic(v, hostSteps)])),
        floor: scaleTraffic(floorTraffic, hostSteps),
      },
      cpu: {
        stackbus: {
          agentsMs: per(stackCpu["agents"], "selfMs"),
          shellsMs: per(stackCpu["agents"], "childrenMs"),
          coordinatorMs: per(stackCpu["coordinator"], "selfMs"),
          natsMs: per(stackCpu["nats"], "selfMs"),
        },
        floor: { workersMs: per(floorCpu["floor"], "selfMs"), shellsMs: per(floorCpu["floor"], "childrenMs"), natsMs: per(floorCpu["nats"], "selfMs") },
      },
      idle: idleTraffic,
      storage: { runStreamBytes: stored.runBytes / hostSteps, runStreamMsgs: stored.runMsgs / hostSteps, logStreamBytes: stored.logBytes / hostSteps, recordBytes: (record?.length ?? Number.NaN) / hosts },
      latency,
    };
    return { row, memory };
  } finally {
    await side.stop();
    await floor.stop();
  }
}

/** Waits, at most 30 s, until the processes and their shells use under a tenth of a core; how long it waited. */
async function settle(pids: readonly number[]): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < 30; i++) {
    const before = cpuSnapshot({ side: pids });
    await new Promise((r) => setTimeout(r, 1_000));
    const used = cpuDelta(cpuSnapshot({ side: pids }), before)["side"];
    if (used && used.selfMs + used.childrenMs < 100) break;
  }
  return performance.now() - t0;
}

async function streamSizes(bus: Bus): Promise<{ runBytes: number; runMsgs: number; logBytes: number }> {
  const jsm = await bus.jsm();
  const runs = await jsm.streams.info(STREAMS.runs);
  const logs = await jsm.streams.info(STREAMS.logs);
  return { runBytes: runs.state.bytes, runMsgs: runs.state.messages, logBytes: logs.state.bytes };
}

function medianSteps(timings: StackTiming[]): Array<{ step: string; finishedAtMs: number }> {
  const first = timings[0]?.steps ?? [];
  return first.map((s, i) => ({ step: s.step, finishedAtMs: median(timings.map((t) => t.steps[i]?.finishedAtMs ?? Number.NaN)) }));
}

function medianTraffic(list: Traffic[]): Traffic {
  if (list.length === 0) return { inMsgs: Number.NaN, outMsgs: Number.NaN, inBytes: Number.NaN, outBytes: Number.NaN };
  return { inMsgs: median(list.map((t) => t.inMsgs)), outMsgs: median(list.map((t) => t.outMsgs)), inBytes: median(list.map((t) => t.inBytes)), outBytes: median(list.map((t) => t.outBytes)) };
}

/** One line of the row's traffic and CPU, for the console. */
export function describeRow(row: StackRow): string {
  const t = row.traffic;
  const c = row.cpu.stackbus;
  const f = row.cpu.floor;
  const n = (v: number) => v.toFixed(2);
  return (
    `      per host and step: in ${n(t.stackbus.inMsgs)} msgs ${t.stackbus.inBytes.toFixed(0)} B, out ${n(t.stackbus.outMsgs)} msgs ${t.stackbus.outBytes.toFixed(0)} B ` +
    `(quiet step: in ${n(t.quietStep.inMsgs)}, out ${n(t.quietStep.outMsgs)}; floor: in ${n(t.floor.inMsgs)}, out ${n(t.floor.outMsgs)}); ` +
    `CPU ms: agents ${n(c.agentsMs)}, shells ${n(c.shellsMs)}, coordinator ${n(c.coordinatorMs)}, nats-server ${n(c.natsMs)} ` +
    `(floor: workers ${n(f.workersMs)}, shells ${n(f.shellsMs)}, nats-server ${n(f.natsMs)}); idle per host per s: in ${n(row.idle.inMsgs)}, out ${n(row.idle.outMsgs)} msgs\n` +
    `      kept per host and step: run stream ${row.storage.runStreamBytes.toFixed(0)} B in ${n(row.storage.runStreamMsgs)} msgs, logs ${row.storage.logStreamBytes.toFixed(0)} B; run record ${row.storage.recordBytes.toFixed(0)} B per host\n` +
    `      by role (in/out msgs per host and step): ${Object.entries(t.byRole)
      .filter(([, v]) => v.inMsgs + v.outMsgs > 0)
      .map(([role, v]) => `${role} ${n(v.inMsgs)}/${n(v.outMsgs)}`)
      .join(", ")}` +
    (row.latency ? `\n      one step, median (ms): ${describeLatency(row.latency)}` : "")
  );
}

/** A step's time, in the order it is spent. */
export function describeLatency(l: StepLatency): string {
  const n = (v: number) => v.toFixed(1);
  return (
    `step.started stored to the agent's start ${n(l.toAgentMs)}; on the agent ${n(l.onAgentMs)} (its hooks ${n(l.hooksMs)}); ` +
    `result stored ${n(l.resultStoredMs)}; step.finished stored ${n(l.toStepFinishedMs)}; the next step.started stored ${n(l.toNextStepMs)}`
  );
}

import { readdirSync, readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";

/** Messages and bytes into and out of nats-server. */
export interface Traffic {
  inMsgs: number;
  outMsgs: number;
  inBytes: number;
  outBytes: number;
}

export const NO_TRAFFIC: Traffic = { inMsgs: 0, outMsgs: 0, inBytes: 0, outBytes: 0 };

export function addTraffic(a: Traffic, b: Traffic): Traffic {
  return { inMsgs: a.inMsgs + b.inMsgs, outMsgs: a.outMsgs + b.outMsgs, inBytes: a.inBytes + b.inBytes, outBytes: a.outBytes + b.outBytes };
}

export function subTraffic(a: Traffic, b: Traffic): Traffic {
  return { inMsgs: a.inMsgs - b.inMsgs, outMsgs: a.outMsgs - b.outMsgs, inBytes: a.inBytes - b.inBytes, outBytes: a.outBytes - b.outBytes };
}

export function scaleTraffic(t: Traffic, by: number): Traffic {
  return { inMsgs: t.inMsgs / by, outMsgs: t.outMsgs / by, inBytes: t.inBytes / by, outBytes: t.outBytes / by };
}

interface Counts {
  in_msgs: number;
  out_msgs: number;
  in_bytes: number;
  out_bytes: number;
}

const traffic = (c: Counts): Traffic => ({ inMsgs: c.in_msgs, outMsgs: c.out_msgs, inBytes: c.in_bytes, outBytes: c.out_bytes });

/** The server's totals, from its monitoring endpoint (`nats-server -m PORT`, `/varz`). */
export async function serverTraffic(monitor: string): Promise<Traffic> {
  const res = await fetch(`${monitor}/varz`);
  return traffic((await res.json()) as Counts);
}

/** Who a connection is, from the name its client gave. */
export type Role = "agents" | "coordinator" | "config" | "fetcher" | "driver" | "floor" | "other";

export function roleOf(name: string): Role {
  if (name.startsWith("stackbus-agent/") || name.startsWith("bench-agent-")) return "agents";
  if (name === "stackbus-coordinator") return "coordinator";
  if (name === "stackbus-config") return "config";
  if (name === "stackbus-fetcher") return "fetcher";
  if (name === "bench-driver") return "driver";
  if (name.startsWith("bench-floor")) return "floor";
  return "other";
}

/** Each role's traffic, summed over its open connections (`/connz`). */
export async function trafficByRole(monitor: string): Promise<Record<Role, Traffic>> {
  const out = {} as Record<Role, Traffic>;
  for (let offset = 0; ; offset += 1024) {
    const res = await fetch(`${monitor}/connz?limit=1024&offset=${offset}`);
    const page = (await res.json()) as { connections: Array<Counts & { name?: string }>; total: number };
    for (const c of page.connections) {
      const role = roleOf(c.name ?? "");
      out[role] = addTraffic(out[role] ?? NO_TRAFFIC, traffic(c));
    }
    if (offset + page.connections.length >= page.total || page.connections.length === 0) break;
  }
  return out;
}

const TICK_MS = 1000 / Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim() || 100);

/** CPU a process used, in ms: its own, and that of its children it has waited for. */
export interface ProcessCpu {
  selfMs: number;
  reapedMs: number;
}

function stat(pid: number): { ppid: number; selfMs: number; reapedMs: number; command: string } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    const close = text.lastIndexOf(")");
    const command = text.slice(text.indexOf("(") + 1, close);
    const f = text.slice(close + 2).split(" ");
    // fields after the command: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
    return { ppid: Number(f[1]), selfMs: (Number(f[11]) + Number(f[12])) * TICK_MS, reapedMs: (Number(f[13]) + Number(f[14])) * TICK_MS, command };
  } catch {
    return undefined;
  }
}

/**
 * CPU of a group of processes (`roots`), in ms: the processes themselves (`selfMs`), and
 * their descendants, live ones read from /proc and ended ones as their parents' waited-for
 * children (`childrenMs`: the hook shells, for agents).
 */
export function cpuOf(roots: readonly number[]): { selfMs: number; childrenMs: number } {
  const byParent = new Map<number, number[]>();
  const stats = new Map<number, NonNullable<ReturnType<typeof stat>>>();
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    const s = stat(pid);
    if (!s) continue;
    stats.set(pid, s);
    let list = byParent.get(s.ppid);
    if (!list) byParent.set(s.ppid, (list = []));
    list.push(pid);
  }
  let selfMs = 0;
  let childrenMs = 0;
  for (const root of roots) {
    const s = stats.get(root);
    if (!s) continue;
    selfMs += s.selfMs;
    childrenMs += s.reapedMs;
    const queue = [...(byParent.get(root) ?? [])];
    while (queue.length > 0) {
      const pid = queue.pop() as number;
      const c = stats.get(pid);
      if (!c) continue;
      childrenMs += c.selfMs + c.reapedMs;
      queue.push(...(byParent.get(pid) ?? []));
    }
  }
  return { selfMs, childrenMs };
}

/** CPU of each named group of processes, in ms. */
export type CpuSnapshot = Record<string, { selfMs: number; childrenMs: number }>;

export function cpuSnapshot(groups: Record<string, readonly number[]>): CpuSnapshot {
  const out: CpuSnapshot = {};
  for (const [name, pids] of Object.entries(groups)) out[name] = cpuOf(pids);
  return out;
}

export function cpuDelta(after: CpuSnapshot, before: CpuSnapshot): CpuSnapshot {
  const out: CpuSnapshot = {};
  for (const [name, a] of Object.entries(after)) {
    const b = before[name] ?? { selfMs: 0, childrenMs: 0 };
    out[name] = { selfMs: a.selfMs - b.selfMs, childrenMs: a.childrenMs - b.childrenMs };
  }
  return out;
}

export function addCpu(a: CpuSnapshot, b: CpuSnapshot): CpuSnapshot {
  const out: CpuSnapshot = { ...a };
  for (const [name, v] of Object.entries(b)) {
    const x = out[name] ?? { selfMs: 0, childrenMs: 0 };
    out[name] = { selfMs: x.selfMs + v.selfMs, childrenMs: x.childrenMs + v.childrenMs };
  }
  return out;
}

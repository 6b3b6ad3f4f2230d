/**
 * Shared by the DevStack-mode tests (devstack*.test.ts): labs whose hosts are clones of
 * the real DevStack (../shared/mirrors), each with its own DEST, run by the agent's
 * devstack runner; a timeline plugin that records when each phase ran on each host.
 */
import assert from "node:assert/strict";
import { chmodSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { StepResultSchema, STREAMS, subjects, type StepResult } from "@stackbus/protocol";
import { decode } from "@stackbus/bus";
import { devstackEnvironment, DevstackUnavailable, giveTo, offlineLocalrc, waitFor, type GitServer } from "@stackbus/testkit";
import { Lab, type HostSpec } from "./harness.js";

/** Whether the real DevStack can run here; when not, why (the tests say so and skip). */
export function unavailable(): string | undefined {
  try {
    devstackEnvironment();
    return undefined;
  } catch (err) {
    if (err instanceof DevstackUnavailable) return err.message;
    throw err;
  }
}

export const STACK_PHASES = ["override_defaults", "source", "stack pre-install", "stack install", "stack post-config", "stack extra", "stack test-config"];
export const STACK_STEPS = ["override_defaults", "source", "pre-install", "install", "post-config", "extra", "test-config"];

/** A plugin that records `<host> <what> <args> <epoch-µs>` in the shared file from every file DevStack sources. */
export function timelinePlugin(shared: string, extra = ""): Record<string, string> {
  const record = (what: string) => `echo "$STACKBUS_HOST ${what} $* \${EPOCHREALTIME/./}" >> ${shared}\n`;
  return {
    "devstack/override-defaults": record("override-defaults"),
    "devstack/settings": record("settings"),
    "devstack/plugin.sh": `${record("start")}sleep 0.$(( RANDOM % 3 ))\n${extra}${record("end")}`,
  };
}

export interface Line {
  host: string;
  what: string;
  phase: string;
  at: number;
}

export function timeline(shared: string): Line[] {
  return readFileSync(shared, "utf8")
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => {
      const parts = l.split(" ");
      return { host: parts[0] as string, what: parts[1] as string, phase: parts.slice(2, -1).join(" "), at: Number(parts[parts.length - 1]) };
    });
}

/** The step results the hosts stored for a run. */
export async function results(lab: Lab, runId: string): Promise<StepResult[]> {
  const stored = await lab.bus.readStream(STREAMS.runs, subjects.runAll(lab.name, runId), 0);
  return stored.filter((m) => m.subject.includes(".result.")).map((m) => decode(m.subject, StepResultSchema, m.data));
}

export function runIdOf(out: string): string {
  const m = /\brun ([A-Za-z0-9_-]+)/.exec(out);
  assert.ok(m, `no run id in:\n${out}`);
  return m[1] as string;
}

/**
 * The command prefix that starts an agent as DevStack's user, with that user's HOME and
 * without this machine's own pip settings (they would override the user's pip.conf).
 */
export function runAsUser(env: { user: string; home: string }): string[] {
  const pip = Object.keys(process.env).filter((k) => k.startsWith("PIP_")).flatMap((k) => ["-u", k]);
  return ["runuser", "-u", env.user, "--", "env", ...pip, `HOME=${env.home}`, `USER=${env.user}`, `LOGNAME=${env.user}`];
}

/** A lab of DevStack hosts: controller in wave 1, computes in wave 2. */
export async function devstackLab(options: {
  hosts: string[];
  git: GitServer;
  plugins: (host: string) => string;
  /** Manifest lines after `defaults:`'s own, given the shared timeline file. */
  manifestExtra?: (shared: string) => string;
  branch?: string;
  /** Hosts whose agent runs as DevStack's user itself (not root): it runs the scripts as itself. */
  agentsAsUser?: string[];
}): Promise<Lab> {
  const env = devstackEnvironment();
  const specs: HostSpec[] = options.hosts.map((name, i) => ({ name, wave: i === 0 ? 1 : 2, devstack: options.branch ? { branch: options.branch } : {} }));
  const asUser = new Set(options.agentsAsUser ?? []);
  const lab = new Lab({ hosts: specs, heartbeatMs: 500, agentPrefix: (host) => (asUser.has(host) ? runAsUser(env) : []) });
  lab.options.manifestExtra = [`defaults:`, `  runner: devstack`, `  devstackUser: ${env.user}`, options.manifestExtra?.(lab.shared) ?? ""].join("\n");
  for (const h of specs) {
    h.localConf = offlineLocalrc(lab.dest(h.name), options.plugins(h.name));
    h.files = { "extras.d/50-stackbus-record.sh": `echo "$STACKBUS_HOST extras $* \${EPOCHREALTIME/./}" >> ${lab.shared}\n` };
  }
  // An agent running as DevStack's user keeps its state in the host's directory.
  lab.options.agents = false;
  await lab.start();
  chmodSync(lab.shared, 0o666);
  for (const host of asUser) giveTo(lab.hostDir(host), env);
  for (const h of specs) lab.startAgent(h.name);
  await lab.waitForAgents(specs.map((h) => h.name));
  return lab;
}


/** The processes whose working directory is in `dir` (a host's DevStack scripts and what they started there), with their command lines. */
export function processesIn(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cwd = readlinkSync(`/proc/${entry}/cwd`);
      if (cwd === dir || cwd.startsWith(`${dir}/`)) out.push(`${entry} ${readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").join(" ").trim()}`);
    } catch {
      // gone, or not ours to read
    }
  }
  return out;
}

/** Waits until no process runs in `dir`; the timeout names the ones left. */
export async function noProcessesIn(dir: string, timeoutMs: number): Promise<void> {
  await waitFor(`no process left in ${dir}`, () => {
    const left = processesIn(dir);
    if (left.length > 0) throw new Error(`still running: ${left.join("; ")}`);
    return true;
  }, timeoutMs, 250);
}

import type { Command } from "commander";
import pc from "picocolors";
import {
  formatDuration,
  LabShowRequestSchema,
  LabShowSchema,
  PingReplySchema,
  PingRequestSchema,
  subjects,
  type LabShow,
  type PingReply,
} from "@stackbus/protocol";
import type { Bus } from "@stackbus/bus";
import { EXIT, exitWith, withBusOptions, withLabOption, type BusFlags } from "../common.js";
import { CLI_TIMEOUT_MS } from "../timeouts.js";
import { withLab } from "../lab-name.js";
import { table, terminalWidth } from "../table.js";

/** One host of the lab and its agent, as `stackbus agents` shows it. */
export interface HostAgent {
  host: string;
  wave: number;
  runner: string;
  /** The agent's answer to a ping; undefined when none answered. */
  agent?: PingReply;
}

/** Pings every host's agent of the lab at once. */
export async function labAgents(bus: Bus, lab: string, timeoutMs = CLI_TIMEOUT_MS.agentPing): Promise<{ show: LabShow; hosts: HostAgent[] }> {
  const show = await bus.request(subjects.configShow(lab), LabShowRequestSchema, {}, LabShowSchema, { timeoutMs: CLI_TIMEOUT_MS.labShow });
  const sorted = [...show.hosts].sort((a, b) => a.wave - b.wave || a.name.localeCompare(b.name));
  const hosts = await Promise.all(
    sorted.map(async (h): Promise<HostAgent> => {
      const agent = await bus.request(subjects.hostPing(lab, h.name), PingRequestSchema, {}, PingReplySchema, { timeoutMs }).catch(() => undefined);
      return { host: h.name, wave: h.wave, runner: h.runner, ...(agent ? { agent } : {}) };
    }),
  );
  return { show, hosts };
}

function doing(a: PingReply): string {
  if (!a.busy) return "idle";
  return `busy: ${a.busy.runId} ${a.busy.step}${a.hook ? ` ${a.hook}` : ""}`;
}

/** The table of `stackbus agents`. */
export function renderAgents(show: LabShow, hosts: HostAgent[], now: number, width?: number): string {
  const live = hosts.filter((h) => h.agent).length;
  const head = `lab ${show.lab} (revision ${show.revision}): ${live} of ${hosts.length} host${hosts.length === 1 ? "" : "s"} ${live === 1 ? "has an agent" : "have agents"}`;
  const rows = hosts.map((h) => {
    const a = h.agent;
    if (!a) return [h.host, String(h.wave), h.runner, pc.red("none"), "-", "-", "-", "-", pc.red("no agent answers: start `stackbus agent --host " + h.host + "` there")];
    const beat = a.heartbeatAt ? `${formatDuration(Math.max(0, now - a.heartbeatAt))} ago` : "-";
    return [h.host, String(h.wave), h.runner, pc.green("connected"), a.version, `${a.pid}@${a.hostname}`, formatDuration(Math.max(0, now - a.startedAt)), beat, a.busy ? pc.cyan(doing(a)) : doing(a)];
  });
  return `${head}\n${table(["host", "wave", "runner", "agent", "version", "pid@machine", "up", "heartbeat", "doing"], rows, { width, right: [1, 6, 7] })}`;
}

export function registerAgentsCommand(program: Command): void {
  const cmd = program
    .command("agents")
    .description("List every host of the lab with its agent: connected or not, version, process, uptime, last heartbeat, busy or idle. Exit 0 when every host has an agent, 1 when some have none.")
    .option("--json", "one JSON object per host per line")
    .addHelpText("after", "\nExamples:\n  stackbus agents\n  stackbus agents --json | jq -r 'select(.agent == null) | .host'");
  withLabOption(withBusOptions(cmd)).action(
    exitWith(async (flags: BusFlags & { json?: boolean }) => {
      return withLab(flags, async (bus, lab) => {
        const { show, hosts } = await labAgents(bus, lab);
        if (flags.json) for (const h of hosts) process.stdout.write(`${JSON.stringify({ lab, ...h, agent: h.agent ?? null })}\n`);
        else process.stdout.write(`${renderAgents(show, hosts, Date.now(), terminalWidth())}\n`);
        return hosts.every((h) => h.agent) ? EXIT.ok : EXIT.failed;
      });
    }),
  );
}

import {
  ErrorCode,
  PingReplySchema,
  PingRequestSchema,
  StackbusError,
  STACKBUS_VERSION,
  subjects,
  versionsCompatible,
  type PingReply,
} from "@stackbus/protocol";
import type { Bus } from "@stackbus/bus";

/** A host of a run, as the presence check names it. */
export interface RunHostRef {
  name: string;
  wave: number;
}

/**
 * Asks every host's agent at once whether it is there, before a run (or a resumed attempt)
 * starts: a host without a live agent would otherwise fail only after the ack timeout, and
 * one at a time. Refuses naming every host with no agent (by wave), and every agent of
 * another minor version than the coordinator's.
 */
export async function requireAgents(bus: Bus, lab: string, hosts: readonly RunHostRef[], timeoutMs: number): Promise<Map<string, PingReply>> {
  const replies = await Promise.all(
    hosts.map((h) =>
      bus.request(subjects.hostPing(lab, h.name), PingRequestSchema, {}, PingReplySchema, { timeoutMs }).then(
        (reply) => [h, reply] as const,
        () => [h, undefined] as const,
      ),
    ),
  );
  const live = new Map<string, PingReply>();
  const missing: RunHostRef[] = [];
  const skewed: Array<{ host: string; version: string }> = [];
  for (const [h, reply] of replies) {
    if (!reply) missing.push(h);
    else {
      live.set(h.name, reply);
      if (!versionsCompatible(reply.version, STACKBUS_VERSION)) skewed.push({ host: h.name, version: reply.version });
    }
  }
  const problems: string[] = [];
  if (missing.length > 0) {
    const waves = [...new Set(missing.map((h) => h.wave))].sort((a, b) => a - b);
    const named = waves.map((w) => `${missing.filter((h) => h.wave === w).map((h) => h.name).join(", ")} (wave ${w})`).join("; ");
    problems.push(
      `${missing.length === 1 ? "1 host has" : `${missing.length} hosts have`} no running agent: ${named}. ` +
        `Start \`stackbus agent --host NAME --lab ${lab}\` on each (\`stackbus agents\` lists the lab's hosts and their agents)`,
    );
  }
  if (skewed.length > 0) {
    problems.push(
      `${skewed.map((s) => `${s.host} runs agent version ${s.version}`).join(", ")}, and the coordinator ${STACKBUS_VERSION}: ` +
        "agents and the coordinator of a lab must share major and minor version (upgrade them together, see deploy/README.md)",
    );
  }
  if (problems.length > 0) {
    throw new StackbusError(ErrorCode.Unavailable, `cannot start the run in lab ${lab}: ${problems.join("; ")}`, {
      missing: missing.map((h) => h.name),
      versions: skewed,
    });
  }
  return live;
}

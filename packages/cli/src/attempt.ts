import pc from "picocolors";
import { SESSION_STEPS, type RunStartReply, type RunStartRequest, type StepId } from "@stackbus/protocol";

const short = (commit: string | null) => (commit ? commit.slice(0, 7) : "none");

/**
 * What a start or resume tells the operator before anything runs: the lab revision it uses,
 * what changed against the failed attempt (revision, plugin commits), and which steps run
 * again on which hosts and which are carried.
 */
export function describeStart(kind: RunStartRequest["kind"], req: RunStartRequest, reply: RunStartReply): string[] {
  const hosts = reply.hosts.map((h) => h.name);
  const lines = [`${req.resume ? "resumed" : "started"} ${kind} run ${reply.runId} (attempt ${reply.attempt}) on ${hosts.join(", ")}`];
  const c = reply.changes;
  if (!req.resume || !c) {
    if (reply.configRevision) lines.push(`  lab revision ${reply.configRevision}`);
    return lines;
  }
  if (c.sameConfig) lines.push(`  lab revision ${c.revision.from} and the plugin commits of attempt ${reply.attempt - 1} kept (--same-config)`);
  else if (c.revision.from !== c.revision.to) lines.push(`  lab revision ${c.revision.from} ${pc.bold("→")} ${c.revision.to} (the lab's current one; --same-config keeps ${c.revision.from})`);
  else lines.push(`  lab revision ${c.revision.to} (unchanged)`);
  for (const p of c.plugins) {
    const what = p.before === p.after ? `${short(p.after)} (unchanged)` : `${short(p.before)} ${pc.bold("→")} ${short(p.after)}`;
    lines.push(`  plugin ${p.name} (${p.ref}): ${what}`);
  }
  for (const w of c.warnings) lines.push(`  ${pc.yellow("warning")} ${w}`);
  lines.push(...describeSteps(reply, hosts));
  return lines;
}

/** Per run of steps with the same hosts: who runs them and who is carried. */
function describeSteps(reply: RunStartReply, hosts: string[]): string[] {
  const carried = reply.carried ?? {};
  const groups: Array<{ steps: StepId[]; runs: string[]; kept: string[] }> = [];
  for (const step of reply.steps) {
    const kept = carried[step] ?? [];
    const runs = hosts.filter((h) => !kept.includes(h));
    const last = groups[groups.length - 1];
    if (last && last.runs.join() === runs.join() && last.kept.join() === kept.join()) last.steps.push(step);
    else groups.push({ steps: [step], runs, kept });
  }
  const lines = [`  from ${reply.from ?? reply.steps[0] ?? "prepare"}:`];
  for (const g of groups) {
    const session = g.steps.every((s) => SESSION_STEPS.includes(s)) ? " (a new session, as a new stack.sh would)" : "";
    const who = g.kept.length === 0 ? `run on every host${session}` : g.runs.length === 0 ? `carried on every host (finished in an earlier attempt)` : `run on ${g.runs.join(", ")}; carried on ${g.kept.join(", ")}`;
    lines.push(`    ${g.steps.join(", ")}: ${who}`);
  }
  return lines;
}

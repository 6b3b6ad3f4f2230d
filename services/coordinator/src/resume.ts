import {
  ErrorCode,
  LabShowRequestSchema,
  LabShowSchema,
  PluginPinReplySchema,
  PluginPinRequestSchema,
  StackbusError,
  subjects,
  toStackbusError,
  type AttemptChanges,
  type LabShow,
  type PluginPinRequest,
  type RunRecord,
} from "@stackbus/protocol";
import type { Bus } from "@stackbus/bus";
import type { RunMachine } from "@stackbus/engine";

/** What a resumed attempt runs: a lab revision, the pin its plugin refs resolve under, and what changed. */
export interface AttemptConfig {
  configRevision: number;
  pin: string;
  changes: AttemptChanges;
}

/** The pin of attempt `attempt` of a run: the run id for the first, `<run>-a<N>` for one that resolved again. */
export function pinFor(runId: string, attempt: number): string {
  return attempt <= 1 ? runId : `${runId}-a${attempt}`;
}

/**
 * Refuses to resume a run when a later unstack or clean run touched any of its hosts: what
 * the run left on them is gone, so going on from its failed step would build on nothing.
 */
export function refuseUndone(record: RunRecord, others: readonly RunRecord[]): void {
  const mine = new Set(record.spec.hosts.map((h) => h.name));
  const later = others
    .filter((r) => r.spec.lab === record.spec.lab && r.spec.runId !== record.spec.runId && r.spec.createdAt > record.spec.createdAt)
    .filter((r) => r.spec.kind === "unstack" || r.spec.kind === "clean")
    .sort((a, b) => a.spec.createdAt - b.spec.createdAt);
  for (const r of later) {
    const touched = r.spec.hosts.map((h) => h.name).filter((h) => mine.has(h));
    if (touched.length === 0) continue;
    throw new StackbusError(
      ErrorCode.Conflict,
      `run ${record.spec.runId} (${record.spec.kind}, started ${new Date(record.spec.createdAt).toISOString()}) is older than ${r.spec.kind} run ${r.spec.runId} ` +
        `(started ${new Date(r.spec.createdAt).toISOString()}) on ${touched.join(", ")}: what it did there was undone since, so it cannot be resumed; start a new ${record.spec.kind} run`,
      { runId: record.spec.runId, other: r.spec.runId },
    );
  }
}

/** The hosts of the run that the lab's revision no longer has as the run has them (gone, another wave or runner). */
function hostChanges(machine: RunMachine, show: LabShow): string[] {
  const problems: string[] = [];
  for (const h of machine.spec.hosts) {
    const now = show.hosts.find((x) => x.name === h.name);
    if (!now) problems.push(`${h.name} is no longer in the lab`);
    else if (now.wave !== h.wave) problems.push(`${h.name} moved from wave ${h.wave} to wave ${now.wave}`);
    else if (now.runner !== h.runner) problems.push(`${h.name} changed from the ${h.runner} runner to ${now.runner}`);
  }
  return problems;
}

/** Each plugin of the run's hosts in `show` (name and ref), with its ref in the revision the attempt before ran. */
function pluginsOf(machine: RunMachine, show: LabShow, before: LabShow | undefined): PluginPinRequest["plugins"] {
  const inRun = new Set(machine.spec.hosts.map((h) => h.name));
  const out = new Map<string, PluginPinRequest["plugins"][number]>();
  for (const h of show.hosts.filter((x) => inRun.has(x.name))) {
    for (const p of h.plugins) {
      const previousRef = before?.hosts.find((x) => x.name === h.name)?.plugins.find((x) => x.name === p.name)?.ref;
      const key = `${p.name}\n${p.ref}`;
      if (!out.has(key)) out.set(key, { name: p.name, ref: p.ref, ...(previousRef !== undefined && previousRef !== p.ref ? { previousRef } : {}) });
    }
  }
  return [...out.values()];
}

/**
 * The config of a resumed attempt. With `sameConfig`, the attempt before's revision and pin.
 * Otherwise the lab's current revision (refused, with the reason, when it changed the run's
 * hosts), and every moving plugin ref resolved again by the fetcher under a new pin.
 */
export async function attemptConfig(
  bus: Bus,
  lab: string,
  machine: RunMachine,
  attempt: number,
  options: { sameConfig: boolean; configMs: number; pinMs: number },
): Promise<AttemptConfig> {
  const from = machine.configRevision;
  if (options.sameConfig) {
    return { configRevision: from, pin: machine.pin, changes: { revision: { from, to: from }, sameConfig: true, plugins: [], warnings: [] } };
  }
  const ask = (revision?: number) => bus.request(subjects.configShow(lab), LabShowRequestSchema, revision ? { revision } : {}, LabShowSchema, { timeoutMs: options.configMs });
  const show = await ask();
  const before = show.revision === from ? show : await ask(from).catch(() => undefined);
  const problems = hostChanges(machine, show);
  if (problems.length > 0) {
    throw new StackbusError(
      ErrorCode.Conflict,
      `lab ${lab} revision ${show.revision} changes the hosts of run ${machine.spec.runId}: ${problems.join("; ")}. Start a new run, or resume with --same-config to keep revision ${from}`,
      { runId: machine.spec.runId, lab, revision: show.revision },
    );
  }
  const plugins = pluginsOf(machine, show, before);
  const pin = pinFor(machine.spec.runId, attempt);
  const changes: AttemptChanges = { revision: { from, to: show.revision }, sameConfig: false, plugins: [], warnings: [] };
  if (plugins.length > 0) {
    const request: PluginPinRequest = { runId: machine.spec.runId, pin, previous: machine.pin, revision: show.revision, plugins };
    const reply = await bus.request(subjects.pluginsPin(lab), PluginPinRequestSchema, request, PluginPinReplySchema, { timeoutMs: options.pinMs }).catch((err: unknown) => {
      const e = toStackbusError(err);
      if (e.code !== ErrorCode.Unavailable && e.code !== ErrorCode.Timeout) throw e;
      throw new StackbusError(e.code, `the plugin fetcher of lab ${lab} did not resolve the plugins again (${e.message}): start it, or resume with --same-config to keep the commits of attempt ${machine.attempt}`);
    });
    changes.plugins = reply.plugins;
    changes.warnings = reply.warnings;
  }
  return { configRevision: show.revision, pin, changes };
}

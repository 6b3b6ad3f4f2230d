import { Option, type Command } from "commander";
import {
  findStep,
  parseDuration,
  ProgressSchema,
  senderMismatch,
  RunCancelReplySchema,
  RunCancelRequestSchema,
  RunStartReplySchema,
  RunStartRequestSchema,
  STEP_IDS,
  subjects,
  type MaxFail,
  type RunKind,
  type RunStartRequest,
} from "@stackbus/protocol";
import type { Bus } from "@stackbus/bus";
import { connectClient, EXIT, parseHostList, UsageError, withBusOptions, withLabOption, type BusFlags, exitWith } from "../common.js";
import { applyManifest } from "./lab.js";
import { CLI_TIMEOUT_MS } from "../timeouts.js";
import { withLab } from "../lab-name.js";
import { followRun, plainLine } from "../follow.js";
import { describeStart } from "../attempt.js";

interface RunFlags extends BusFlags {
  hosts?: string;
  failurePolicy?: "abort" | "continue";
  maxFail?: string;
  phaseTimeout?: string;
  ackTimeout?: string;
  heartbeatTimeout?: string;
  waveSteps?: string;
  wait?: boolean;
  json?: boolean;
  resume?: string;
  from?: string;
  sameConfig?: boolean;
  labFile?: string;
}

/** Parses `--max-fail`: a count (`2`) or a percentage (`25%`). */
export function parseMaxFail(value: string): MaxFail {
  const m = /^(\d+(?:\.\d+)?)(%?)$/.exec(value.trim());
  if (!m) throw new UsageError(`--max-fail ${JSON.stringify(value)} is neither a count (2) nor a percentage (25%)`);
  const n = Number(m[1]);
  if (m[2] === "%") {
    if (n > 100) throw new UsageError(`--max-fail ${value} is more than 100%`);
    return { percent: n };
  }
  if (!Number.isInteger(n)) throw new UsageError(`--max-fail ${value} must be a whole number of hosts`);
  return { count: n };
}

/** The run's timeout flags, each a duration (parseDuration): the flag, its option, and the request field it sets. */
const TIMEOUT_FLAGS = [
  ["phaseTimeout", "--phase-timeout", "phaseTimeoutMs"],
  ["ackTimeout", "--ack-timeout", "ackTimeoutMs"],
  ["heartbeatTimeout", "--heartbeat-timeout", "heartbeatTimeoutMs"],
] as const;

export function runRequest(kind: RunKind, flags: RunFlags): RunStartRequest {
  const req: RunStartRequest = { kind };
  if (flags.hosts) req.hosts = parseHostList(flags.hosts);
  if (flags.failurePolicy) req.failurePolicy = flags.failurePolicy;
  if (flags.maxFail) req.maxFail = parseMaxFail(flags.maxFail);
  for (const [flag, option, field] of TIMEOUT_FLAGS) {
    const value = flags[flag];
    if (value) req[field] = parseDuration(value, option);
  }
  if (flags.resume) req.resume = flags.resume;
  if (flags.sameConfig) {
    if (!flags.resume) throw new UsageError("--same-config goes with --resume RUN");
    req.sameConfig = true;
  }
  if (flags.waveSteps !== undefined) req.waveSteps = parseWaveSteps(kind, flags.waveSteps);
  if (flags.from) {
    if (!flags.resume) throw new UsageError("--from goes with --resume RUN");
    if (!findStep(kind, flags.from)) throw new UsageError(`a ${kind} run has no step ${JSON.stringify(flags.from)}; its steps are ${STEP_IDS.filter((s) => findStep(kind, s)).join(", ")}`);
    req.from = flags.from as RunStartRequest["from"];
  }
  return req;
}

/** `--wave-steps`: `every`, `none`, or a comma-separated list of the kind's steps. */
export function parseWaveSteps(kind: RunKind, text: string): RunStartRequest["waveSteps"] {
  if (text === "every") return null;
  if (text === "none" || text === "") return [];
  const steps = text.split(",").map((s) => s.trim()).filter(Boolean);
  const unknown = steps.filter((s) => !findStep(kind, s));
  if (unknown.length > 0) throw new UsageError(`--wave-steps: a ${kind} run has no step ${unknown.map((s) => JSON.stringify(s)).join(", ")}; its steps are ${STEP_IDS.filter((s) => findStep(kind, s)).join(", ")}`);
  return steps as NonNullable<RunStartRequest["waveSteps"]>;
}

/** Starts a run (or resumes one) and, with `wait`, follows it to the end. Returns the exit code. */
export async function startRun(bus: Bus, lab: string, req: RunStartRequest, options: { wait: boolean; json: boolean; out?: (line: string) => void }): Promise<number> {
  const out = options.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const reply = await bus.request(subjects.runStart(lab), RunStartRequestSchema, req, RunStartReplySchema, { timeoutMs: CLI_TIMEOUT_MS.runStart });
  if (options.json && !options.wait) {
    out(JSON.stringify({ lab, ...reply }));
    return EXIT.ok;
  }
  if (!options.json) for (const line of describeStart(req.kind, req, reply)) out(line);
  if (!options.wait) return EXIT.ok;
  let status = "failed";
  // What each host says it is doing (DevStack's echo_summary lines), printed as it changes.
  const said = new Map<string, string>();
  const activity = options.json
    ? undefined
    : bus.subscribe(subjects.runProgressAll(lab, reply.runId), ProgressSchema, (p, subject) => {
        if (senderMismatch(subject, p)) return;
        if (p.attempt !== reply.attempt || !p.activity || said.get(p.host) === p.activity) return;
        said.set(p.host, p.activity);
        out(`${new Date(p.at).toISOString().slice(11, 19)}   ${p.host} ${p.step}: ${p.activity}`);
      });
  try {
    status = await followToEnd(bus, lab, reply, options, out);
  } finally {
    activity?.unsubscribe();
  }
  if (!options.json && (status === "failed" || status === "canceled")) out(`resume with: stackbus ${req.kind} --resume ${reply.runId} --lab ${lab} --wait`);
  return status === "succeeded" ? EXIT.ok : EXIT.failed;
}

async function followToEnd(bus: Bus, lab: string, reply: { runId: string; attempt: number }, options: { json: boolean }, out: (line: string) => void): Promise<string> {
  let status = "failed";
  for await (const item of followRun(bus, lab, reply.runId, { untilAttempt: reply.attempt })) {
    if (options.json) out(JSON.stringify(item.kind === "event" ? { kind: "event", ...item.event } : { kind: "result", ...item.result }));
    else {
      // A resumed run replays its earlier attempts first: print only this attempt.
      const attempt = item.kind === "result" ? item.result.attempt : "attempt" in item.event ? item.event.attempt : reply.attempt;
      const line = attempt >= reply.attempt ? plainLine(item) : undefined;
      if (line) out(line);
    }
    if (item.kind === "event" && item.event.type === "run.finished" && item.event.attempt >= reply.attempt) status = item.event.status;
  }
  return status;
}

/** `--lab-file`: applies the manifest (a new revision only when it changed), then starts the run in its lab. */
async function applyThenRun(flags: RunFlags, file: string, req: RunStartRequest, options: { wait: boolean; json: boolean }): Promise<number> {
  const bus = await connectClient(flags);
  try {
    const say = options.json ? (line: string) => process.stderr.write(`${line}\n`) : (line: string) => process.stdout.write(`${line}\n`);
    const applied = await applyManifest(bus, file, say);
    if (flags.lab && flags.lab !== applied.lab) throw new UsageError(`--lab ${flags.lab} does not match ${file}, which defines lab ${applied.lab}`);
    return await startRun(bus, applied.lab, req, options);
  } finally {
    await bus.drain();
  }
}

export function registerRunCommands(program: Command): void {
  for (const kind of ["stack", "unstack", "clean"] as const) {
    const what = { stack: "stack every host of the lab, phase by phase, in lockstep", unstack: "run the unstack hooks on every host", clean: "run unstack, then the clean hooks, on every host" }[kind];
    const cmd = program
      .command(kind)
      .description(`Start a ${kind} run: ${what}.`)
      .option("--hosts <h1,h2>", "only these hosts (default: every host of the lab)")
      .addOption(new Option("--failure-policy <policy>", "abort: stop after the failing phase; continue: go on without the failed hosts").choices(["abort", "continue"]))
      .option("--max-fail <N|P%>", "abort only when more than N hosts (or P% of them) have failed")
      .option("--phase-timeout <duration>", "kill a phase's hooks after this long (e.g. 15m)")
      .option("--ack-timeout <duration>", "a host that does not acknowledge a phase within this fails as lost")
      .option("--heartbeat-timeout <duration>", "a host silent this long during a phase fails as lost")
      .option("--wave-steps <steps>", "keep wave order only in these steps (comma-separated), `every` (the default) or `none`")
      .option("--resume <run>", "continue a failed run from its failed step")
      .option("--from <step>", "with --resume: start from this step")
      .option("--same-config", "with --resume: keep the failed attempt's lab revision and plugin commits (by default a resume uses the lab's current revision and resolves moving plugin refs again)")
      .option("--lab-file <file>", "apply this manifest (and its local.conf files) first, when it changed, and run that lab")
      .option("--wait", "follow the run and exit 0 when it succeeded, 1 when it failed")
      .option("--json", "machine output: one JSON object per line")
      .addHelpText(
        "after",
        `\nExamples:\n  stackbus ${kind} --wait\n  stackbus ${kind} --lab-file lab.yaml --wait\n  stackbus ${kind} --hosts controller,compute1 --failure-policy continue --wait\n  stackbus ${kind} --max-fail 25% --phase-timeout 30m\n  stackbus ${kind} --resume r20261125T061234-8f3a --wait\n  stackbus ${kind} --resume r20261125T061234-8f3a --same-config --wait`,
      );
    withLabOption(withBusOptions(cmd)).action(exitWith(async (flags: RunFlags) => {
      const req = runRequest(kind, flags);
      const options = { wait: Boolean(flags.wait), json: Boolean(flags.json) };
      if (flags.labFile) return applyThenRun(flags, flags.labFile, req, options);
      return withLab(flags, (bus, lab) => startRun(bus, lab, req, options));
    }));
  }

  const cancel = program
    .command("cancel")
    .description("Cancel a run: the step in flight is killed on every host and the run ends canceled.")
    .argument("<run>", "the run id")
    .option("--reason <text>", "why, recorded in the run's events")
    .addHelpText("after", "\nExample:\n  stackbus cancel r20261125T061234-8f3a --reason 'wrong branch'");
  withLabOption(withBusOptions(cancel)).action(exitWith(async (runId: string, flags: BusFlags & { reason?: string }) => {
    return withLab(flags, async (bus, lab) => {
    const reply = await bus.request(subjects.runCancel(lab), RunCancelRequestSchema, { runId, ...(flags.reason ? { reason: flags.reason } : {}) }, RunCancelReplySchema);
    process.stdout.write(reply.canceled ? `canceling run ${runId}\n` : `run ${runId} is not running (${reply.status})\n`);
    return EXIT.ok;
    });
  }));
}

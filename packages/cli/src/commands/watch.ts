import { type Command } from "commander";
import pc from "picocolors";
import {
  BUCKETS,
  ErrorCode,
  formatDuration,
  LogBatchSchema,
  ProgressSchema,
  senderMismatch,
  readRunRecord,
  StackbusError,
  STREAMS,
  subjects,
  type LogBatch,
  type RunRecord,
} from "@stackbus/protocol";
import { decode, type Bus } from "@stackbus/bus";
import { EXIT, exitWith, interactive, UsageError, withBusOptions, withLabOption, type BusFlags } from "../common.js";
import { withLab } from "../lab-name.js";
import { describeFailure, followRun, plainLine } from "../follow.js";
import { RunView } from "../watch/model.js";
import { table, terminalWidth } from "../table.js";

/** Every run record of a lab, newest first. */
export async function listRuns(bus: Bus, lab: string): Promise<RunRecord[]> {
  const kv = await bus.kv(BUCKETS.runs);
  const keys: string[] = [];
  for await (const k of await kv.keys(`${lab}.>`)) keys.push(k);
  const records: RunRecord[] = [];
  for (const k of keys) {
    const e = await kv.get(k);
    if (!e || e.operation !== "PUT") continue;
    const parsed = readRunRecord(e.value);
    if (parsed.success) records.push(parsed.data);
  }
  return records.sort((a, b) => b.spec.createdAt - a.spec.createdAt || b.spec.runId.localeCompare(a.spec.runId));
}

/** The run a command means: the one named, or the latest of the lab. */
export async function resolveRun(bus: Bus, lab: string, runId: string | undefined): Promise<RunRecord> {
  const runs = await listRuns(bus, lab);
  if (!runId) {
    const latest = runs[0];
    if (!latest) throw new StackbusError(ErrorCode.NotFound, `lab ${lab} has no runs yet: start one with stackbus stack`);
    return latest;
  }
  const found = runs.find((r) => r.spec.runId === runId);
  if (!found) throw new StackbusError(ErrorCode.NotFound, `no run ${runId} in lab ${lab} (stackbus runs lists them)`, { runId });
  return found;
}

/** Replays a run's stored events into a view. */
async function replay(bus: Bus, lab: string, runId: string): Promise<RunView> {
  const view = new RunView();
  for await (const item of followRun(bus, lab, runId, { stopAtEnd: true })) {
    view.apply(item);
    // Everything stored so far is in the view (a finished run, or a running one as it stands now).
    if (item.pending === 0) break;
  }
  return view;
}

export async function watch(bus: Bus, lab: string, runId: string, options: { json: boolean; host?: string }): Promise<number> {
  const view = new RunView();
  const tty = interactive() && !options.json;
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const tail: string[] = [];
  const subs = [];
  if (tty) {
    subs.push(bus.subscribe(subjects.runProgressAll(lab, runId), ProgressSchema, (p, subject) => {
      if (!senderMismatch(subject, p)) view.applyProgress(p);
    }));
    subs.push(
      bus.subscribe(subjects.runLogAll(lab, runId), LogBatchSchema, (batch, subject) => {
        // Output another host's identity wrote is not that host's output.
        if (senderMismatch(subject, batch)) return;
        view.applyLog(batch);
        if (batch.host !== options.host) return;
        for (const l of batch.lines) tail.push(l.text);
        tail.splice(0, Math.max(0, tail.length - 50));
      }),
    );
  }
  if (tty) {
    // A watcher that attaches mid-run sees each host's last line at once, not only after the next one.
    for (const m of await bus.readLastPerSubject(STREAMS.logs, subjects.runLogAll(lab, runId)).catch(() => [])) {
      const batch = decode(m.subject, LogBatchSchema, m.data);
      if (!senderMismatch(m.subject, batch)) view.applyLog(batch);
    }
  }
  const { renderMatrix, renderSummary, resumeCommand } = await import("../watch/render.js");
  const logUpdate = tty ? (await import("log-update")).default : undefined;
  const draw = () => logUpdate?.(renderMatrix(view, Date.now(), { width: terminalWidth(), ...(options.host ? { tail, tailHost: options.host } : {}) }));
  const timer = tty ? setInterval(draw, 250) : undefined;
  try {
    for await (const item of followRun(bus, lab, runId, { stopAtEnd: true })) {
      view.apply(item);
      if (options.json) out(JSON.stringify(item.kind === "event" ? { kind: "event", ...item.event } : { kind: "result", ...item.result }));
      else if (!tty) {
        const line = plainLine(item);
        if (line) out(line);
      }
    }
  } finally {
    clearInterval(timer);
    for (const s of subs) s.unsubscribe();
  }
  if (tty) {
    draw();
    logUpdate?.done();
    out("");
    out(renderSummary(view, terminalWidth()));
  } else if (!options.json) {
    const resume = resumeCommand(view);
    if (resume) out(`resume with: ${resume}`);
  }
  return view.status === "succeeded" ? EXIT.ok : EXIT.failed;
}

export function registerWatchCommands(program: Command): void {
  const watchCmd = program
    .command("watch")
    .description("Watch a run live: hosts x steps with a legend (a line per host on a narrow terminal), what each running host does now (its hook, the hook's time, its last output line), who waits for an earlier wave, failures with the failing command and output, and the command that resumes a failed run; a summary with wall times at the end. Exits with the run's status.")
    .argument("[run]", "run id (default: the latest run)")
    .option("--host <name>", "also show the last output lines of this host")
    .option("--json", "one JSON object per event per line (see docs/events.md)")
    .addHelpText("after", "\nLines are cut to the terminal's width. When stdout is not a terminal, prints one plain line per event.\n\nExamples:\n  stackbus watch\n  stackbus watch r20261125T061234-8f3a --host compute1\n  stackbus watch --json | jq .type");
  withLabOption(withBusOptions(watchCmd)).action(
    exitWith(async (runId: string | undefined, flags: BusFlags & { json?: boolean; host?: string }) => {
      return withLab(flags, async (bus, lab) => {
      const run = await resolveRun(bus, lab, runId);
      return await watch(bus, lab, run.spec.runId, { json: Boolean(flags.json), ...(flags.host ? { host: flags.host } : {}) });
      });
    }),
  );

  const status = program
    .command("status")
    .description("Show where a run is (or how it ended): each host's state per step, and every failure with host, step, hook, exit status, the failing command and its file:function:line, and output.")
    .argument("[run]", "run id (default: the latest run)")
    .option("--json", "the run record as JSON")
    .addHelpText("after", "\nExamples:\n  stackbus status\n  stackbus status r20261125T061234-8f3a --json");
  withLabOption(withBusOptions(status)).action(
    exitWith(async (runId: string | undefined, flags: BusFlags & { json?: boolean }) => {
      return withLab(flags, async (bus, lab) => {
      const record = await resolveRun(bus, lab, runId);
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(record)}\n`);
      } else {
        const view = await replay(bus, lab, record.spec.runId);
        const { renderMatrix } = await import("../watch/render.js");
        process.stdout.write(`${renderMatrix(view, Date.now(), { width: terminalWidth() })}\n`);
        const failures = view.finished ? view.failures : record.failures;
        if (failures.length > 0 && view.failures.length === 0) for (const f of failures) process.stdout.write(`${describeFailure(f)}\n`);
      }
      return record.status === "failed" || record.status === "canceled" ? EXIT.failed : EXIT.ok;
      });
    }),
  );

  const runs = program
    .command("runs")
    .description("List the lab's runs, newest first: id, kind, outcome, duration.")
    .option("--json", "one JSON object per run per line")
    .option("--limit <n>", "at most this many", "50")
    .addHelpText("after", "\nExamples:\n  stackbus runs\n  stackbus runs --json --limit 5 | jq -r .runId");
  withLabOption(withBusOptions(runs)).action(
    exitWith(async (flags: BusFlags & { json?: boolean; limit: string }) => {
      return withLab(flags, async (bus, lab) => {
      const list = (await listRuns(bus, lab)).slice(0, Number(flags.limit));
      if (flags.json) {
        for (const r of list) {
          process.stdout.write(`${JSON.stringify({ runId: r.spec.runId, kind: r.spec.kind, status: r.status, attempt: r.attempt, hosts: r.spec.hosts.length, startedAt: r.startedAt, finishedAt: r.finishedAt, durationMs: r.finishedAt ? r.finishedAt - r.startedAt : null, failures: r.failures.length })}\n`);
        }
      } else if (list.length === 0) {
        process.stdout.write(`lab ${lab} has no runs yet\n`);
      } else {
        const rows = list.map((r) => {
          const outcome = r.status === "succeeded" ? pc.green(r.status) : r.status === "running" ? pc.cyan(r.status) : pc.red(r.status);
          return [r.spec.runId, r.spec.kind, outcome, String(r.attempt), new Date(r.startedAt).toISOString().replace("T", " ").slice(0, 19), r.finishedAt ? formatDuration(r.finishedAt - r.startedAt) : "-", String(r.spec.hosts.length), String(r.failures.length)];
        });
        process.stdout.write(`${table(["run", "kind", "outcome", "attempt", "started", "duration", "hosts", "failures"], rows, { width: terminalWidth(), right: [3, 5, 6, 7] })}\n`);
      }
      return EXIT.ok;
      });
    }),
  );

  const logs = program
    .command("logs")
    .description("Print what the hooks of a run printed, from the bus, in the order printed: for one host, step, hook or attempt, or all, with a label line naming the attempt, host, step and hook wherever they change.")
    .argument("[run]", "run id (default: the latest run)")
    .option("--host <name>", "only this host")
    .option("--step <step>", "only this step (e.g. install, post-config)")
    .option("--hook <name>", "only this hook (e.g. extras.d/50-template.sh)")
    .option("--attempt <n>", "only this attempt of the run (a resume is attempt 2, ...)")
    .option("--follow", "keep printing new output until the run finishes")
    .addHelpText("after", "\nLabels name only what the filters leave open: with --host, --step and --hook (and one attempt), the hook's text alone.\n\nExamples:\n  stackbus logs\n  stackbus logs r20261125T061234-8f3a --host compute1 --step install\n  stackbus logs r20261125T061234-8f3a --attempt 2 --host compute1\n  stackbus logs r20261125T061234-8f3a --hook demo-plugin/devstack/plugin.sh --follow");
  withLabOption(withBusOptions(logs)).action(
    exitWith(async (runId: string | undefined, flags: BusFlags & LogFilter & { follow?: boolean }) => {
      return withLab(flags, async (bus, lab) => {
        const record = await resolveRun(bus, lab, runId);
        const attempt = flags.attempt !== undefined ? Number(flags.attempt) : undefined;
        if (attempt !== undefined && (!Number.isInteger(attempt) || attempt < 1 || attempt > record.attempt)) {
          throw new UsageError(`--attempt ${flags.attempt}: run ${record.spec.runId} has attempt${record.attempt > 1 ? "s 1 to" : ""} ${record.attempt}`);
        }
        return printLogs(bus, lab, record, { ...flags, ...(attempt !== undefined ? { attempt } : {}) }, Boolean(flags.follow));
      });
    }),
  );
}

interface LogFilter {
  host?: string;
  step?: string;
  hook?: string;
  attempt?: number | string;
}

/** The label of a log line: the parts the filters leave open (attempt only when the run has several). */
function labeller(record: RunRecord, filter: LogFilter): (attempt: number, host: string, step: string, hook: string) => string {
  const parts = (attempt: number, host: string, step: string, hook: string) =>
    [
      filter.attempt === undefined && record.attempt > 1 ? `attempt ${attempt}` : "",
      filter.host ? "" : host,
      filter.step ? "" : step,
      filter.hook ? "" : hook,
    ].filter(Boolean);
  return (...args) => parts(...args).join(" · ");
}

/** Prints a run's output: grouped by attempt and host when the run is read back, as it comes with --follow. */
async function printLogs(bus: Bus, lab: string, record: RunRecord, filter: LogFilter, follow: boolean): Promise<number> {
  const runId = record.spec.runId;
  const subject = filter.host ? subjects.runLog(lab, runId, filter.host) : subjects.runLogAll(lab, runId);
  const label = labeller(record, filter);
  let shown = "";
  const print = (batch: LogBatch) => {
    for (const l of batch.lines) {
      if (filter.hook && l.hook !== filter.hook) continue;
      const now = label(batch.attempt, batch.host, batch.step, l.hook);
      if (now !== shown && now !== "") process.stdout.write(`${pc.dim(`── ${now}`)}\n`);
      shown = now;
      process.stdout.write(`${l.text}\n`);
    }
  };
  const keep = (batch: LogBatch) => (!filter.step || batch.step === filter.step) && (filter.attempt === undefined || batch.attempt === filter.attempt);
  if (!follow) {
    // Output another host's identity wrote is not that host's output.
    const batches = (await bus.readStream(STREAMS.logs, subject))
      .map((m) => ({ m, batch: decode(m.subject, LogBatchSchema, m.data) }))
      .filter(({ m, batch }) => !senderMismatch(m.subject, batch) && keep(batch))
      .map(({ batch }) => batch);
    const order = (b: LogBatch) => `${String(b.attempt).padStart(6, "0")}\0${String(record.spec.hosts.findIndex((h) => h.name === b.host)).padStart(6, "0")}`;
    const sorted = batches.map((b, i) => ({ b, i })).sort((x, y) => (order(x.b) < order(y.b) ? -1 : order(x.b) > order(y.b) ? 1 : x.i - y.i));
    for (const { b } of sorted) print(b);
    return EXIT.ok;
  }
  const abort = new AbortController();
  // One look at the run at a time; the last is awaited before the connection closes
  // (a listing cut off by the close leaves the client's heartbeat timer running).
  let looking: Promise<void> = Promise.resolve();
  const poll = setInterval(() => {
    looking = looking.then(() =>
      resolveRun(bus, lab, runId).then(
        (r) => {
          if (r.status !== "running") setTimeout(() => abort.abort(), 500);
        },
        () => undefined,
      ),
    );
  }, 1_000);
  try {
    for await (const m of bus.followStream(STREAMS.logs, subject, { signal: abort.signal })) {
      const batch = decode(m.subject, LogBatchSchema, m.data);
      if (!senderMismatch(m.subject, batch) && keep(batch)) print(batch);
    }
  } finally {
    clearInterval(poll);
    await looking;
  }
  return EXIT.ok;
}

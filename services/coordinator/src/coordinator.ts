import {
  BUCKETS,
  CancelReplySchema,
  CancelRequestSchema,
  CommandAckSchema,
  ErrorCode,
  FINALLY_STEP,
  HeartbeatSchema,
  keys,
  LabShowRequestSchema,
  LabShowSchema,
  newRunId,
  parseSubject,
  senderMismatch,
  PhaseCommandSchema,
  QUEUES,
  RunCancelReplySchema,
  RunCancelRequestSchema,
  RunEventSchema,
  decodeRunRecord,
  encodeRunRecord,
  readRunRecord,
  RunStartReplySchema,
  RunStartRequestSchema,
  StackbusError,
  StepResultSchema,
  stepsOf,
  STREAMS,
  subjects,
  toStackbusError,
  wildcards,
  type CommandAck,
  type LabShow,
  type PhaseCommand,
  type RunEvent,
  type RunRecord,
  type RunSpec,
  type RunStartReply,
  type RunStartRequest,
  type StepId,
  type StepResult,
} from "@stackbus/protocol";
import { decode, withRetry, type Bus, type CommandSigner, type KV, type Logger, type ReplyInbox, type ReplyOutcome, type Subscription } from "@stackbus/bus";
import { planAttempt, RunMachine, type Decision, type EventDraft } from "@stackbus/engine";
import { requireAgents } from "./presence.js";
import { attemptConfig, refuseUndone } from "./resume.js";
import { compileCoordinatorOptions, type CoordinatorOptions, type CoordinatorTimings } from "./options.js";

export interface CoordinatorHandle {
  stop(): Promise<void>;
  /** Runs this coordinator is driving now, by id. */
  activeRuns(): string[];
}

/** The coordinator: creates runs, drives each through the engine, keeps its state on the bus. */
export async function startCoordinator(input: CoordinatorOptions): Promise<CoordinatorHandle> {
  const options = compileCoordinatorOptions(input);
  const { bus, timings } = options;
  const sign = signingWith(options.signer);
  const log = options.logger;
  await bus.ensureStackbusStreams();
  const runsKv = await bus.kv(BUCKETS.runs);
  const drivers = new Map<string, RunDriver>();
  const subs: Subscription[] = [];

  const startDriver = (machine: RunMachine): RunDriver => {
    const driver = new RunDriver(bus, runsKv, machine, timings, sign, log.child({ lab: machine.spec.lab, runId: machine.spec.runId }), () => {
      drivers.delete(machine.spec.runId);
    });
    drivers.set(machine.spec.runId, driver);
    return driver;
  };

  // Results and heartbeats first, so nothing that arrives during recovery is missed.
  subs.push(...listenToHosts(bus, log, drivers));

  await continueRuns(bus, runsKv, log, startDriver);

  subs.push(
    bus.serve(
      wildcards.runStart,
      RunStartRequestSchema,
      RunStartReplySchema,
      async (req, subject): Promise<RunStartReply> => {
        const lab = labOf(subject);
        if (req.resume) return resume(lab, req);
        const busy = await busyRun(lab);
        if (busy) {
          throw new StackbusError(ErrorCode.Conflict, `run ${busy.machine.spec.runId} (${busy.machine.spec.kind}) is still running in lab ${lab}: wait for it or cancel it with "stackbus cancel ${busy.machine.spec.runId}"`, { runId: busy.machine.spec.runId });
        }
        const show = await bus.request(subjects.configShow(lab), LabShowRequestSchema, {}, LabShowSchema, { timeoutMs: timings.configMs }).catch((err: unknown) => {
          const e = toStackbusError(err);
          if (e.code === ErrorCode.Unavailable) throw new StackbusError(ErrorCode.Unavailable, `the config service does not answer for lab ${lab}: is it running?`);
          throw e;
        });
        const spec = newSpec(lab, req, show);
        await requireAgents(bus, lab, spec.hosts, timings.agentPingMs);
        const machine = new RunMachine(spec);
        const driver = startDriver(machine);
        const created = await driver.publish({ type: "run.created", spec } as EventDraft);
        machine.firstSeq = created;
        const plan = planAttempt(undefined, spec);
        await driver.publish({ type: "run.attempt", attempt: 1, steps: plan.steps, reason: "start", from: plan.from, carried: {} });
        await driver.save();
        log.info({ runId: spec.runId, lab, kind: spec.kind, hosts: spec.hosts.length }, "run started");
        driver.pump();
        return { runId: spec.runId, attempt: 1, steps: plan.steps, hosts: spec.hosts, configRevision: spec.configRevision, from: plan.from, carried: {} };
      },
      { queue: QUEUES.coordinator },
    ),
  );

  /**
   * The run still going in a lab, if any. A run whose end was just published (a client may
   * already have seen run.finished) gets a moment to wind up before it counts as busy.
   */
  async function busyRun(lab: string): Promise<RunDriver | undefined> {
    const find = () => [...drivers.values()].find((d) => d.machine.spec.lab === lab && !d.machine.finished);
    for (let waited = 0; waited < timings.finishingGraceMs; waited += 50) {
      const busy = find();
      if (!busy || !busy.finishing) return busy;
      await new Promise((r) => setTimeout(r, 50));
    }
    return find();
  }

  async function resume(lab: string, req: RunStartRequest): Promise<RunStartReply> {
    const runId = req.resume as string;
    if (drivers.has(runId)) throw new StackbusError(ErrorCode.Conflict, `run ${runId} is still running; there is nothing to resume yet`);
    const entry = await runsKv.get(keys.run(lab, runId));
    if (!entry || entry.operation !== "PUT") throw new StackbusError(ErrorCode.NotFound, `no run ${runId} in lab ${lab}`, { runId });
    const record = decodeRunRecord(entry.key, entry.value);
    if (record.status === "succeeded") throw new StackbusError(ErrorCode.Conflict, `run ${runId} succeeded; there is nothing to resume`);
    if (record.spec.kind !== req.kind) throw new StackbusError(ErrorCode.InvalidArgument, `run ${runId} is a ${record.spec.kind} run, not ${req.kind}`);
    refuseUndone(record, await listRecords(runsKv));
    const busy = await busyRun(lab);
    if (busy) throw new StackbusError(ErrorCode.Conflict, `run ${busy.machine.spec.runId} is still running in lab ${lab}`);
    const machine = await rebuild(bus, record);
    await requireAgents(bus, lab, machine.spec.hosts, timings.agentPingMs);
    if (req.from && !machine.spec.hosts.length) throw new StackbusError(ErrorCode.InvalidArgument, "the run has no hosts");
    const attempt = machine.attempt + 1;
    const config = await attemptConfig(bus, lab, machine, attempt, { sameConfig: req.sameConfig === true, configMs: timings.configMs, pinMs: timings.pluginPinMs });
    const plan = planAttempt(machine, machine.spec, { from: req.from });
    const driver = startDriver(machine);
    await driver.publish({ type: "run.attempt", attempt, steps: plan.steps, reason: "resume", from: plan.from, carried: plan.carried, configRevision: config.configRevision, pin: config.pin, changes: config.changes });
    await driver.save();
    log.info({ runId, attempt, from: plan.from, revision: config.configRevision, sameConfig: config.changes.sameConfig }, "run resumed");
    driver.pump();
    return { runId, attempt, steps: plan.steps, hosts: machine.spec.hosts, configRevision: config.configRevision, from: plan.from, carried: plan.carried, changes: config.changes };
  }

  subs.push(serveCancel(bus, runsKv, drivers));

  await bus.flush();
  log.info("coordinator ready");
  return {
    activeRuns: () => [...drivers.keys()],
    async stop() {
      for (const sub of subs) sub.unsubscribe();
      for (const d of drivers.values()) d.stop();
      // What is still being stored gets a moment; a restarted coordinator decides again
      // whatever was not stored (the events' message ids keep that exactly once).
      await Promise.race([Promise.allSettled([...drivers.values()].map((d) => d.idle())), new Promise((r) => setTimeout(r, timings.stopGraceMs).unref())]);
    },
  };
}

/**
 * The hosts' results and heartbeats, to the runs they belong to. Identity comes from the
 * subject (each agent may publish only its own): one that claims another host is refused.
 */
function listenToHosts(bus: Bus, log: Logger, drivers: Map<string, RunDriver>): Subscription[] {
  return [
    bus.subscribe(wildcards.runResults, StepResultSchema, (result, subject) => {
      const forged = senderMismatch(subject, result);
      if (forged) return void log.warn({ subject, step: result.step }, `refused a step result: ${forged}`);
      drivers.get(result.runId)?.onResult(result);
    }),
    bus.subscribe(wildcards.heartbeats, HeartbeatSchema, (hb, subject) => {
      const forged = senderMismatch(subject, hb);
      if (forged) return void log.warn({ subject }, `refused a heartbeat: ${forged}`);
      for (const d of drivers.values()) if (d.machine.spec.lab === hb.lab) d.onHeartbeat(hb);
    }),
  ];
}

/** Continues the runs that were running when the coordinator stopped. */
async function continueRuns(bus: Bus, runsKv: KV, log: Logger, startDriver: (machine: RunMachine) => RunDriver): Promise<void> {
  for (const record of await listRecords(runsKv)) {
    if (record.status !== "running") continue;
    try {
      const machine = await rebuild(bus, record);
      log.info({ runId: record.spec.runId, lab: record.spec.lab, step: machine.position()?.step }, "continuing a run after restart");
      startDriver(machine).pump();
    } catch (err) {
      log.error({ err, runId: record.spec.runId }, "could not continue a run");
    }
  }
}

/** Answers run.cancel: a run this coordinator drives is canceled; any other is reported as it is. */
function serveCancel(bus: Bus, runsKv: KV, drivers: ReadonlyMap<string, RunDriver>): Subscription {
  return bus.serve(
    wildcards.runCancel,
    RunCancelRequestSchema,
    RunCancelReplySchema,
    async (req, subject) => {
      const lab = labOf(subject);
      const driver = drivers.get(req.runId);
      if (driver && !driver.machine.finished) {
        await driver.publish({ type: "run.cancel-requested", reason: req.reason ?? "canceled by an operator" });
        driver.pump();
        return { runId: req.runId, canceled: true, status: "canceling" };
      }
      const entry = await runsKv.get(keys.run(lab, req.runId));
      if (!entry || entry.operation !== "PUT") throw new StackbusError(ErrorCode.NotFound, `no run ${req.runId} in lab ${lab}`, { runId: req.runId });
      const record = decodeRunRecord(entry.key, entry.value);
      return { runId: req.runId, canceled: false, status: record.status };
    },
    { queue: QUEUES.coordinator },
  );
}

function labOf(subject: string): string {
  const parsed = parseSubject(subject);
  if (!parsed) throw new StackbusError(ErrorCode.BadMessage, `not a stackbus subject: ${subject}`);
  return parsed.lab;
}

function newSpec(lab: string, req: RunStartRequest, show: LabShow): RunSpec {
  let hosts = show.hosts.map((h) => ({ name: h.name, wave: h.wave, runner: h.runner }));
  if (req.hosts && req.hosts.length > 0) {
    const known = new Set(hosts.map((h) => h.name));
    const unknown = req.hosts.filter((h) => !known.has(h));
    if (unknown.length > 0) {
      throw new StackbusError(ErrorCode.NotFound, `lab ${lab} (revision ${show.revision}) has no host ${unknown.map((h) => JSON.stringify(h)).join(", ")}; its hosts are ${[...known].join(", ")}`, { unknown });
    }
    const wanted = new Set(req.hosts);
    hosts = hosts.filter((h) => wanted.has(h.name));
  }
  if (hosts.length === 0) throw new StackbusError(ErrorCode.InvalidArgument, `lab ${lab} has no hosts to run`);
  const d = show.defaults;
  return {
    lab,
    runId: newRunId(),
    kind: req.kind,
    hosts,
    configRevision: show.revision,
    policy: {
      failurePolicy: req.failurePolicy ?? d.failurePolicy,
      maxFail: req.maxFail !== undefined ? req.maxFail : d.maxFail,
      phaseTimeoutMs: req.phaseTimeoutMs ?? d.phaseTimeoutMs,
      ackTimeoutMs: req.ackTimeoutMs ?? d.ackTimeoutMs,
      heartbeatTimeoutMs: req.heartbeatTimeoutMs ?? d.heartbeatTimeoutMs,
      waveSteps: req.waveSteps !== undefined ? req.waveSteps : d.waveSteps,
    },
    createdAt: Date.now(),
    finally: finallyFor(req.kind, show, new Set(hosts.map((h) => h.name))),
  };
}

/** The lab's `finally` commands that follow a run of `kind`, on the hosts of the run. */
function finallyFor(kind: RunSpec["kind"], show: LabShow, inRun: Set<string>): RunSpec["finally"] {
  return show.finally
    .filter((f) => f.kinds.includes(kind))
    .map((f) => ({ hosts: f.hosts.filter((h) => inRun.has(h)), command: f.command }))
    .filter((f) => f.hosts.length > 0);
}

async function listRecords(kv: KV): Promise<RunRecord[]> {
  const out: RunRecord[] = [];
  const keyList: string[] = [];
  for await (const k of await kv.keys()) keyList.push(k);
  for (const k of keyList) {
    const entry = await kv.get(k);
    if (!entry || entry.operation !== "PUT") continue;
    const parsed = readRunRecord(entry.value);
    if (parsed.success) out.push(parsed.data);
  }
  return out;
}

/** Rebuilds a run's machine from its stored events and results. */
export async function rebuild(bus: Bus, record: RunRecord): Promise<RunMachine> {
  const machine = new RunMachine(record.spec);
  machine.firstSeq = record.firstSeq;
  const messages = await bus.readStream(STREAMS.runs, subjects.runAll(record.spec.lab, record.spec.runId), record.firstSeq);
  for (const m of messages) applyStored(machine, m.subject, m.data, bus.log);
  return machine;
}

/** Applies one stored message of a run (an event or a result) to a machine. */
export function applyStored(machine: RunMachine, subject: string, data: Uint8Array, log: Logger): void {
  try {
    if (subject.endsWith(".event")) machine.applyEvent(decode(subject, RunEventSchema, data));
    else if (subject.includes(".result.")) {
      const result = decode(subject, StepResultSchema, data);
      const forged = senderMismatch(subject, result);
      if (forged) log.warn({ subject }, `skipping a stored step result: ${forged}`);
      else machine.applyResult(result);
    }
  } catch (err) {
    log.warn({ subject, err: (err as Error).message }, "skipping a stored message that does not parse");
  }
}

/** Adds the coordinator's signature to a message for a subject (or leaves it unsigned). */
type Sign = <T extends object>(subject: string, message: T) => T;

function signingWith(signer: CommandSigner | undefined): Sign {
  return signer ? (subject, message) => signer.sign(subject, message) : (_subject, message) => message;
}

/** While a run goes on, its record is saved at a step's end at most this often (and whenever a step failed). */
export const RECORD_SAVE_MS = 1_000;

/** Drives one run: executes the machine's decisions and feeds it what the bus says. */
class RunDriver {
  readonly machine: RunMachine;
  readonly #bus: Bus;
  readonly #kv: KV;
  readonly #timings: CoordinatorTimings;
  readonly #sign: Sign;
  readonly #log: Logger;
  readonly #onDone: () => void;
  #timer: NodeJS.Timeout | undefined;
  #tick: NodeJS.Timeout;
  #pumping = false;
  #again = false;
  #stopped = false;
  #chain: Promise<unknown> = Promise.resolve();
  #savedAt = 0;
  /** A save put off by RECORD_SAVE_MS (the record is never further behind than that). */
  #saveTimer: NodeJS.Timeout | undefined;
  /** Where agents answer this run's commands: `<attempt>.<step>.<host>` after its prefix. */
  readonly #acks: ReplyInbox;
  #stores: Promise<unknown> = Promise.resolve();
  /** True from the moment the run's end is being published. */
  finishing = false;

  constructor(bus: Bus, kv: KV, machine: RunMachine, timings: CoordinatorTimings, sign: Sign, log: Logger, onDone: () => void) {
    this.#sign = sign;
    this.#bus = bus;
    this.#kv = kv;
    this.#timings = timings;
    this.machine = machine;
    this.#log = log;
    this.#onDone = onDone;
    this.#acks = bus.replyInbox(CommandAckSchema, (token, outcome) => this.#onAck(token, outcome));
    this.#tick = setInterval(() => this.pump(), timings.tickMs);
  }

  /**
   * Applies an event and stores it in the run stream. Stores happen in order, in the
   * background: the run does not wait for each one (a coordinator rebuilt after a crash
   * decides again whatever was not stored, with the same message ids, and agents answer a
   * repeated step from their records). Returns the event's stream sequence once stored.
   *
   * Hosts' acknowledgements are not stored: every host of a wave is running from its
   * step.started, and its result carries when it started.
   */
  publish(draft: EventDraft): Promise<number> {
    const spec = this.machine.spec;
    const event = { ...draft, lab: spec.lab, runId: spec.runId, at: Date.now() } as RunEvent;
    this.machine.applyEvent(event);
    const stored = this.#stores.then(() => this.#bus.publishDurable(subjects.runEvent(spec.lab, spec.runId), RunEventSchema, event, { msgID: eventId(event) }).then((ack) => ack.seq));
    this.#stores = stored.catch((err: unknown) => {
      this.#log.error({ err, type: event.type }, "could not store a run event");
      return 0;
    });
    return stored;
  }

  /**
   * Writes the run record snapshot to KV (in order, not on the hot path of a step),
   * again while the bucket has no leader (a NATS node lost): for up to the save deadline (a minute by default).
   */
  save(): Promise<void> {
    this.#savedAt = Date.now();
    clearTimeout(this.#saveTimer);
    this.#saveTimer = undefined;
    const next = this.#chain.then(() =>
      withRetry("saving the run record", () => this.#kv.put(keys.run(this.machine.spec.lab, this.machine.spec.runId), encodeRunRecord(this.machine.record())), {
        deadlineMs: this.#timings.saveDeadlineMs,
      }),
    );
    this.#chain = next.catch((err: unknown) => this.#log.error({ err }, "could not save the run record"));
    return next.then(() => undefined);
  }

  /** save() in the background: a failure is logged (by save) and never ends the process. */
  #saveLater(): Promise<void> {
    return this.save().catch(() => undefined);
  }

  /** A host's result (already stored in the run stream by its agent) moves the barrier. */
  onResult(result: StepResult): void {
    if (this.machine.applyResult(result)) this.pump();
  }

  async #publishQuiet(draft: EventDraft): Promise<void> {
    try {
      await this.publish(draft);
    } catch (err) {
      this.#log.error({ err, type: draft.type }, "could not publish a run event");
    }
  }

  onHeartbeat(hb: Parameters<RunMachine["noteHeartbeat"]>[0]): void {
    this.machine.noteHeartbeat(hb, Date.now());
  }

  /** Runs decisions until the machine waits. Re-entrant calls are folded into one more pass. */
  pump(): void {
    if (this.#stopped) return;
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumping = true;
    void this.#pumpLoop()
      .catch((err: unknown) => this.#log.error({ err }, "deciding the run's next step failed; trying again on the next tick"))
      .finally(() => {
        this.#pumping = false;
        if (this.#again) {
          this.#again = false;
          this.pump();
        }
      });
  }

  async #pumpLoop(): Promise<void> {
    for (let guard = 0; guard < 10_000 && !this.#stopped; guard++) {
      const decisions = this.machine.decide(Date.now());
      const acting = decisions.filter((d) => d.kind !== "wake");
      this.#schedule(decisions);
      if (acting.length === 0) break;
      for (const d of acting) await this.#execute(d);
      if (this.machine.finished) break;
    }
    if (this.machine.finished) this.#finish();
  }

  #schedule(decisions: Decision[]): void {
    const wakes = decisions.filter((d): d is Extract<Decision, { kind: "wake" }> => d.kind === "wake");
    if (wakes.length === 0) return;
    const at = Math.min(...wakes.map((w) => w.at));
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.pump(), Math.max(0, at - Date.now()) + 5);
  }

  async #execute(d: Decision): Promise<void> {
    switch (d.kind) {
      case "event": {
        if (d.event.type === "run.finished") this.finishing = true;
        // A store that failed for good is logged by publish(); the run goes on.
        this.publish(d.event).catch(() => undefined);
        if (d.event.type === "step.finished") this.#saveAfterStep(d.event.status === "ok");
        return;
      }
      case "send": {
        this.machine.noteSent(d.host, Date.now());
        this.#send(d.host, d.command);
        return;
      }
      case "cancel": {
        const spec = this.machine.spec;
        void this.#bus
          .request(subjects.hostCancel(spec.lab, d.host), CancelRequestSchema, this.#sign(subjects.hostCancel(spec.lab, d.host), { runId: spec.runId, reason: this.machine.cancelReason ?? "canceled" }), CancelReplySchema, { timeoutMs: this.#timings.cancelMs })
          .catch((err: unknown) => this.#log.warn({ host: d.host, err: (err as Error).message }, "cancel did not reach the host"));
        return;
      }
      case "wake":
        return;
    }
  }

  /**
   * The run's record is saved at its start and end and at a step's end that had failures;
   * at other steps' ends at most every RECORD_SAVE_MS, the last of them at most that late
   * (the stream holds every event; the record is what `runs` and `status` list).
   */
  #saveAfterStep(ok: boolean): void {
    // The record is saved once the events before it are stored (the run's end: in #finish).
    if (!ok || Date.now() - this.#savedAt >= RECORD_SAVE_MS) {
      void this.#stores.then(() => this.#saveLater());
      return;
    }
    if (this.#saveTimer || this.#stopped) return;
    this.#saveTimer = setTimeout(() => {
      this.#saveTimer = undefined;
      if (!this.#stopped && !this.finishing) void this.#stores.then(() => this.#saveLater());
    }, Math.max(0, this.#savedAt + RECORD_SAVE_MS - Date.now()));
  }

  /** Sends a host its step; the agent answers on the run's reply inbox, or with its stored result. */
  #send(host: string, command: PhaseCommand): void {
    const spec = this.machine.spec;
    const subject = subjects.hostCommand(spec.lab, host);
    try {
      this.#bus.publishRequest(subject, PhaseCommandSchema, this.#sign(subject, command), this.#acks.replyTo(`${command.attempt}.${command.step}.${host}`));
    } catch (err) {
      // Not sent (the connection is closed, or the command is over max_payload): sent again until the ack timeout.
      this.#log.warn({ host, err: toStackbusError(err).message }, "could not send a step to its host");
    }
  }

  /** An agent's answer to a command (`<attempt>.<step>.<host>`): an acknowledgement, a stored result, or a refusal. */
  #onAck(token: string, outcome: ReplyOutcome<CommandAck>): void {
    const [attemptText, step, host] = token.split(".");
    const spec = this.machine.spec;
    if (Number(attemptText) !== this.machine.attempt || this.machine.finished || !host || !this.machine.cells.has(host)) return;
    // A late answer to an earlier step's command says nothing of the step running now.
    if (step !== this.machine.position()?.step) return;
    if (!outcome.ok) {
      // Nobody listening (no agent yet): sent again every second until the ack timeout.
      if (outcome.error.code === ErrorCode.Unavailable) this.machine.noteUnheard(host);
      else this.#refused(host, step as StepId, outcome.error);
      return;
    }
    const ack = outcome.value;
    if (ack.host !== host || (ack.result && senderMismatch(subjects.runResult(spec.lab, spec.runId, host), ack.result))) {
      this.#log.warn({ host, claims: ack.host }, "refused an acknowledgement that speaks for another host");
      return;
    }
    const result = this.machine.noteAck(host, ack, Date.now());
    if (result) this.onResult(result);
  }

  /** The agent refused the step (busy with another run, a bad command): the host fails it. */
  #refused(host: string, step: StepId, e: StackbusError): void {
    this.#log.warn({ host, code: e.code, err: e.message }, "the agent refused a step");
    const failure = { host, step, reason: e.code === ErrorCode.Conflict ? ("busy" as const) : ("internal" as const), hook: null, exitCode: null, signal: null, message: e.message, outputTail: [] };
    void this.#publishQuiet({ type: "host.finished", attempt: this.machine.attempt, step, host, status: "failed", durationMs: 0, failures: [failure], decided: true }).finally(() => this.pump());
  }

  #finish(): void {
    clearInterval(this.#tick);
    clearTimeout(this.#timer);
    clearTimeout(this.#saveTimer);
    this.#acks.close();
    this.#release();
    void this.#stores.then(() => this.#saveLater()).finally(() => {
      this.#log.info({ status: this.machine.status }, "run finished");
      this.#onDone();
    });
  }

  /**
   * Tells every host of the run that it is over, so each releases what it holds for it:
   * a hook session, or a DevStack script paused between two phases (which then stops).
   */
  #release(): void {
    const spec = this.machine.spec;
    const reason = `run ${spec.runId} ${this.machine.status}`;
    for (const h of spec.hosts) {
      if (this.#closedItself(h.name)) continue;
      void this.#bus
        .request(subjects.hostCancel(spec.lab, h.name), CancelRequestSchema, this.#sign(subjects.hostCancel(spec.lab, h.name), { runId: spec.runId, reason, end: true, attempt: this.machine.attempt }), CancelReplySchema, { timeoutMs: this.#timings.cancelMs })
        .catch((err: unknown) => this.#log.debug({ host: h.name, err: (err as Error).message }, "the end of the run did not reach the host"));
    }
  }

  /**
   * True when the host finished the run's last step (and its `finally`, when it has one)
   * in this attempt: its agent released the run itself then, and needs no telling.
   */
  #closedItself(host: string): boolean {
    const m = this.machine;
    const ok = (step: StepId) => {
      const cell = m.cells.get(host)?.get(step);
      return cell !== undefined && cell.attempt === m.attempt && cell.status === "ok";
    };
    const last = stepsOf(m.spec.kind).at(-1)?.id;
    if (!last || !m.steps.includes(last) || !ok(last)) return false;
    const inFinally = m.steps.includes(FINALLY_STEP.id) && m.participants(FINALLY_STEP.id).some((p) => p.name === host);
    return !inFinally || ok(FINALLY_STEP.id);
  }

  stop(): void {
    this.#stopped = true;
    clearInterval(this.#tick);
    clearTimeout(this.#timer);
    clearTimeout(this.#saveTimer);
    this.#acks.close();
  }

  async idle(): Promise<void> {
    await this.#stores;
    await this.#chain;
  }
}

/** A stable id per event, so a republished decision is stored once (the stream's duplicate window). */
function eventId(e: RunEvent): string {
  const base = `${e.runId}.${e.type}`;
  switch (e.type) {
    case "run.created":
      return base;
    case "run.attempt":
    case "run.finished":
      return `${base}.${e.attempt}`;
    case "step.started":
      return `${base}.${e.attempt}.${e.step}.${e.wave}`;
    case "step.finished":
      return `${base}.${e.attempt}.${e.step}`;
    case "host.acked":
    case "host.finished":
      return `${base}.${e.attempt}.${e.step}.${e.host}`;
    case "run.cancel-requested":
      return `${base}.${e.at}`;
  }
}

import {
  findStep,
  FINALLY_STEP,
  SESSION_STEPS,
  stepsOf,
  type CommandAck,
  type Facts,
  type Failure,
  type Heartbeat,
  type HostStepState,
  type PhaseCommand,
  type RunEvent,
  type RunRecord,
  type RunSpec,
  type RunStatus,
  type StepId,
  type StepResult,
  type StepStatus,
} from "@stackbus/protocol";

/** An event the machine wants published, without the fields the publisher stamps. */
export type EventDraft = DistributiveOmit<RunEvent, "lab" | "runId" | "at">;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** What the coordinator should do next for a run. */
export type Decision =
  /** Publish (durably) and then apply this event. */
  | { kind: "event"; event: EventDraft }
  /** Send this step to a host (a request; the reply is an ack). */
  | { kind: "send"; host: string; command: PhaseCommand }
  /** Ask a host to kill the step it is running. */
  | { kind: "cancel"; host: string }
  /** Call decide again at this time, if nothing else happens first. */
  | { kind: "wake"; at: number };

/** How long after the phase timeout the coordinator decides `timeout` itself when the agent said nothing. */
export const TIMEOUT_GRACE_MS = 15_000;
/**
 * How soon an unacknowledged command is sent again. A copy nobody listens for (the host's
 * agent is not connected yet) is answered by nats-server at once, and sent again after
 * RESEND_MS. One an agent listens for is lost only with its connection, and its agent may
 * just be slow to answer (each copy it is sent costs it an answer): the first copy again
 * after RESEND_FIRST_MS, then at twice the last gap, up to RESEND_MAX_MS.
 */
export const RESEND_MS = 1_000;
export const RESEND_FIRST_MS = 4_000;
export const RESEND_MAX_MS = 8_000;
/** How long a canceled step may take to report before it is marked canceled by the coordinator. */
export const CANCEL_GRACE_MS = 10_000;

type Cell = HostStepState;

interface Volatile {
  firstSentAt: number;
  lastSentAt: number;
  /** The wait before the next copy of the command. */
  resendMs: number;
  /** nats-server answered a copy: nobody listens on the host's subject (until the agent is heard from). */
  unheard: boolean;
  /** A copy after the first was answered so while the first was not: the agent that had the step went away. */
  gone: boolean;
  ackedAt: number | null;
  /** The last sign of the agent's life for this step: its heartbeat or its answer; the first copy's time before either. */
  lastHeartbeat: number;
}

/**
 * The state of one run, rebuilt by applying its stored events and results in order, plus
 * what only the live coordinator knows (which commands it sent, heartbeats). `decide`
 * returns what to do next; it never performs I/O, so the barrier, the waves, the failure
 * policy and the timeouts can be driven step by step.
 */
export class RunMachine {
  readonly spec: RunSpec;
  status: RunStatus = "running";
  attempt = 0;
  steps: StepId[] = [];
  from: StepId = "prepare";
  startedAt: number;
  finishedAt: number | null = null;
  firstSeq = 0;
  /** The lab revision the current attempt runs (a resume may pick up a later one). */
  configRevision: number;
  /** The pin the current attempt's plugin refs resolve under (see PluginPinRequest). */
  pin: string;
  facts: Facts = {};
  failures: Failure[] = [];
  cancelReason: string | null = null;
  cancelAt: number | null = null;
  readonly cells = new Map<string, Map<StepId, Cell>>();
  #carried = new Map<StepId, Set<string>>();
  #excluded = new Set<string>();
  #startedWaves = new Set<string>();
  #stepStartedAt = new Map<string, number>();
  #finishedSteps = new Set<StepId>();
  #attemptFailedHosts = new Set<string>();
  #volatile = new Map<string, Volatile>();
  #cancelsSent = new Set<string>();
  #lastEventAt = 0;

  constructor(spec: RunSpec) {
    this.spec = spec;
    this.startedAt = spec.createdAt;
    this.configRevision = spec.configRevision;
    this.pin = spec.runId;
    for (const h of spec.hosts) this.cells.set(h.name, new Map());
  }

  get waves(): number[] {
    return [...new Set(this.spec.hosts.map((h) => h.wave))].sort((a, b) => a - b);
  }

  /**
   * True when wave order holds in `step` (the lab's `waveSteps`, every step by default):
   * elsewhere every host of the run takes the step together, as one wave.
   */
  waveOrdered(step: StepId): boolean {
    const only = this.spec.policy.waveSteps;
    return only === null || only === undefined || only.includes(step);
  }

  /** The waves of `step`, in order: one per wave number, or a single one where wave order does not hold. */
  wavesOf(step: StepId): number[] {
    const waves = this.waves;
    return this.waveOrdered(step) ? waves : waves.slice(0, 1);
  }

  /** True when `host` does not run `step` in this attempt: it finished it in an earlier one. */
  isCarried(step: StepId, host: string): boolean {
    return this.#carried.get(step)?.has(host) ?? false;
  }

  /** The hosts that take part in `step`: every host, but for `finally`, the hosts its commands name. */
  participants(step: StepId): RunSpec["hosts"] {
    if (step !== FINALLY_STEP.id) return this.spec.hosts;
    const named = new Set(this.spec.finally.flatMap((f) => f.hosts));
    return this.spec.hosts.filter((h) => named.has(h.name));
  }

  get finished(): boolean {
    return this.status !== "running";
  }

  cell(host: string, step: StepId): Cell {
    let byStep = this.cells.get(host);
    if (!byStep) this.cells.set(host, (byStep = new Map()));
    let cell = byStep.get(step);
    if (!cell) byStep.set(step, (cell = { status: "pending", attempt: 0, startedAt: null, finishedAt: null, durationMs: null, failures: [] }));
    return cell;
  }

  // ---------------------------------------------------------------- applying stored records

  /** Applies a stored coordinator event. Idempotent for replays. */
  applyEvent(event: RunEvent): void {
    this.#lastEventAt = Math.max(this.#lastEventAt, event.at);
    switch (event.type) {
      case "run.created":
        return;
      case "run.attempt": {
        if (event.attempt <= this.attempt) return;
        this.attempt = event.attempt;
        this.steps = event.steps;
        this.from = event.from;
        this.configRevision = event.configRevision ?? this.configRevision;
        this.pin = event.pin ?? this.pin;
        this.status = "running";
        this.finishedAt = null;
        this.cancelReason = null;
        this.cancelAt = null;
        this.#carried = new Map(Object.entries(event.carried).map(([step, hosts]) => [step as StepId, new Set(hosts)]));
        this.#excluded.clear();
        this.#startedWaves.clear();
        this.#stepStartedAt.clear();
        this.#finishedSteps.clear();
        this.#attemptFailedHosts.clear();
        this.#volatile.clear();
        this.#cancelsSent.clear();
        for (const step of this.steps) {
          for (const h of this.participants(step)) {
            const carried = this.#carried.get(step)?.has(h.name);
            if (!carried) Object.assign(this.cell(h.name, step), { status: "pending", attempt: event.attempt, startedAt: null, finishedAt: null, durationMs: null, failures: [] });
          }
        }
        return;
      }
      case "step.started":
        if (event.attempt !== this.attempt) return;
        this.#startedWaves.add(`${event.step}:${event.wave}`);
        if (!this.#stepStartedAt.has(event.step)) this.#stepStartedAt.set(event.step, event.at);
        this.#stepStartedAt.set(`${event.step}:${event.wave}`, event.at);
        this.#volatile.clear();
        return;
      case "host.acked": {
        if (event.attempt !== this.attempt) return;
        const cell = this.cell(event.host, event.step);
        if (cell.status === "pending") Object.assign(cell, { status: "running", startedAt: event.at });
        return;
      }
      case "host.finished":
        if (event.attempt !== this.attempt || !event.decided) return;
        this.#finishHost(event.host, event.step, event.status, event.at - event.durationMs, event.at, event.durationMs, event.failures);
        return;
      case "step.finished":
        if (event.attempt !== this.attempt) return;
        this.#finishedSteps.add(event.step);
        return;
      case "run.cancel-requested":
        if (this.finished) return;
        this.cancelReason = event.reason;
        this.cancelAt = event.at;
        return;
      case "run.finished":
        if (event.attempt !== this.attempt) return;
        this.status = event.status;
        this.finishedAt = event.at;
        return;
    }
  }

  /** Applies a step result an agent published (or returned in an ack). Duplicates are ignored. */
  applyResult(result: StepResult): boolean {
    if (result.attempt !== this.attempt || !this.steps.includes(result.step)) return false;
    if (!this.cells.has(result.host)) return false;
    const done = this.#finishHost(result.host, result.step, result.status, result.startedAt, result.finishedAt, result.durationMs, result.failures, result.facts);
    // What DevStack mode adds (its log, its last summary line, its time_totals) stays with the run.
    if (done && result.devstack) this.cell(result.host, result.step).devstack = result.devstack;
    return done;
  }

  #finishHost(
    host: string,
    step: StepId,
    status: StepStatus,
    startedAt: number,
    finishedAt: number,
    durationMs: number,
    failures: Failure[],
    facts: Record<string, string> = {},
  ): boolean {
    const cell = this.cell(host, step);
    if (cell.attempt === this.attempt && isFinal(cell.status)) return false;
    Object.assign(cell, { status, attempt: this.attempt, startedAt, finishedAt, durationMs, failures });
    if (Object.keys(facts).length > 0) this.facts[host] = { ...this.facts[host], ...facts };
    if (status !== "ok") {
      this.failures.push(...failures);
      if (failures.length === 0) {
        this.failures.push({ host, step, reason: status === "lost" ? "lost" : status === "timeout" ? "timeout" : "hook", hook: null, exitCode: null, signal: null, message: `${host} ${status} at ${step}`, outputTail: [] });
      }
      this.#attemptFailedHosts.add(host);
      if (findStep(this.spec.kind, step)?.errexit !== false) this.#excluded.add(host);
    }
    this.#volatile.delete(host);
    return true;
  }

  // ---------------------------------------------------------------- live knowledge

  noteSent(host: string, now: number): void {
    const v = this.#volatile.get(host);
    if (!v) this.#volatile.set(host, { firstSentAt: now, lastSentAt: now, resendMs: RESEND_FIRST_MS, unheard: false, gone: false, ackedAt: null, lastHeartbeat: now });
    else {
      v.resendMs = Math.min(RESEND_MAX_MS, Math.max(RESEND_FIRST_MS, v.resendMs * 2));
      v.lastSentAt = now;
    }
  }

  /** Nobody listened on the host's subject when its command was sent: the next copy goes after RESEND_MS. */
  noteUnheard(host: string): void {
    const v = this.#volatile.get(host);
    if (!v) return;
    if (!v.unheard && v.lastSentAt > v.firstSentAt) v.gone = true;
    v.resendMs = RESEND_MS;
    v.unheard = true;
  }

  /** Records an agent's reply. Returns the result when the agent answered with one. */
  noteAck(host: string, ack: CommandAck, now: number): StepResult | undefined {
    const v = this.#volatile.get(host);
    if (v && v.ackedAt === null) {
      v.ackedAt = now;
      v.lastHeartbeat = now;
      v.unheard = false;
      v.gone = false;
    }
    return ack.state === "done" ? ack.result : undefined;
  }

  noteHeartbeat(hb: Heartbeat, now: number): void {
    const v = this.#volatile.get(hb.host);
    if (!v) return;
    v.lastHeartbeat = now;
    v.unheard = false;
    v.gone = false;
  }

  // ---------------------------------------------------------------- deciding

  /** The step and wave the run is at, and the hosts that must answer it. */
  position(): { step: StepId; wave: number; hosts: string[] } | undefined {
    for (const step of this.steps) {
      if (this.#finishedSteps.has(step)) continue;
      for (const wave of this.wavesOf(step)) {
        const hosts = this.#waveHosts(step, wave);
        if (hosts.length === 0) continue;
        if (hosts.every((h) => this.#isDone(h, step))) continue;
        return { step, wave, hosts };
      }
      return { step, wave: Number.NaN, hosts: [] };
    }
    return undefined;
  }

  #waveHosts(step: StepId, wave: number): string[] {
    const inWave = this.waveOrdered(step) ? (h: { wave: number }) => h.wave === wave : () => true;
    const hosts = this.participants(step).filter(inWave);
    return hosts
      .filter((h) => !this.#excluded.has(h.name) && !this.#carried.get(step)?.has(h.name))
      .map((h) => h.name)
      .concat(
        // a host that failed this very step stays part of its wave until the wave is over
        hosts.filter((h) => this.#excluded.has(h.name) && this.#failedAt(h.name, step)).map((h) => h.name),
      );
  }

  #failedAt(host: string, step: StepId): boolean {
    const cell = this.cells.get(host)?.get(step);
    return cell !== undefined && cell.attempt === this.attempt && isFinal(cell.status) && cell.status !== "ok";
  }

  #isDone(host: string, step: StepId): boolean {
    const cell = this.cells.get(host)?.get(step);
    return cell !== undefined && cell.attempt === this.attempt && isFinal(cell.status);
  }

  #abortNeeded(): boolean {
    const failed = this.#attemptFailedHosts.size;
    if (failed === 0) return false;
    const { failurePolicy, maxFail } = this.spec.policy;
    if (maxFail) {
      const limit = "count" in maxFail ? maxFail.count : (maxFail.percent / 100) * this.spec.hosts.length;
      return failed > limit;
    }
    return failurePolicy === "abort";
  }

  decide(now: number): Decision[] {
    if (this.finished || this.attempt === 0) return [];
    if (this.cancelReason !== null) return this.#decideCancel(now);

    const pos = this.position();
    if (!pos) {
      return [this.#finishRun(this.#attemptFailedHosts.size > 0 || this.#excludedAll() ? "failed" : "succeeded", now)];
    }
    const { step, wave, hosts } = pos;
    if (hosts.length === 0) {
      // every wave of this step is done: close the step, then apply the policy
      return this.#closeStep(step, now);
    }
    const decisions: Decision[] = [];
    const waveKey = `${step}:${wave}`;
    if (!this.#startedWaves.has(waveKey)) {
      // Before starting a later wave, a failure in an earlier wave of this step may stop the run.
      const stepHasFailures = this.spec.hosts.some((h) => this.#failedAt(h.name, step));
      if (stepHasFailures && findStep(this.spec.kind, step)?.errexit !== false && this.#abortNeeded()) {
        return this.#closeStep(step, now);
      }
      decisions.push({ kind: "event", event: { type: "step.started", attempt: this.attempt, step, wave, hosts } });
      return decisions;
    }
    const { ackTimeoutMs, heartbeatTimeoutMs, phaseTimeoutMs } = this.spec.policy;
    let wake = Number.POSITIVE_INFINITY;
    for (const host of hosts) {
      if (this.#isDone(host, step)) continue;
      const v = this.#volatile.get(host);
      if (!v) {
        decisions.push({ kind: "send", host, command: this.command(step) });
        wake = Math.min(wake, now + RESEND_FIRST_MS);
        continue;
      }
      if (v.ackedAt === null) {
        if (now - v.firstSentAt >= ackTimeoutMs) {
          decisions.push(this.#decideHost(host, step, "lost", now, v.firstSentAt, `${host} did not acknowledge ${step} within ${ms(ackTimeoutMs)} (is its agent running?)`));
          continue;
        }
        // An agent acknowledges a step within a second (the agent's ACK_AFTER_MS) or answers it
        // with its result. One that had the step (nats-server delivered the first copy) and
        // went away before either (nobody listens for a later copy) is lost like one whose
        // heartbeats stopped, once nothing came from it for the heartbeat timeout.
        if (v.gone && now - v.lastHeartbeat >= heartbeatTimeoutMs) {
          decisions.push(this.#decideHost(host, step, "lost", now, v.firstSentAt, `${host} stopped sending heartbeats during ${step} (its agent went away before it acknowledged the step; nothing from it for ${ms(now - v.lastHeartbeat)})`));
          continue;
        }
        if (now - v.lastSentAt >= v.resendMs) decisions.push({ kind: "send", host, command: this.command(step) });
        wake = Math.min(wake, v.firstSentAt + ackTimeoutMs, Math.max(now, v.lastSentAt) + v.resendMs, v.gone ? v.lastHeartbeat + heartbeatTimeoutMs : Number.POSITIVE_INFINITY);
        continue;
      }
      if (now - v.lastHeartbeat >= heartbeatTimeoutMs) {
        decisions.push(this.#decideHost(host, step, "lost", now, v.ackedAt, `${host} stopped sending heartbeats during ${step} (no heartbeat for ${ms(now - v.lastHeartbeat)})`));
        continue;
      }
      if (now - v.ackedAt >= phaseTimeoutMs + TIMEOUT_GRACE_MS) {
        decisions.push(this.#decideHost(host, step, "timeout", now, v.ackedAt, `${step} ran past its timeout of ${ms(phaseTimeoutMs)} on ${host} and the agent did not report`));
        continue;
      }
      wake = Math.min(wake, v.lastHeartbeat + heartbeatTimeoutMs, v.ackedAt + phaseTimeoutMs + TIMEOUT_GRACE_MS);
    }
    if (Number.isFinite(wake)) decisions.push({ kind: "wake", at: wake });
    return decisions;
  }

  #closeStep(step: StepId, now: number): Decision[] {
    const stepStarted = this.#stepStartedAt.get(step) ?? now;
    const failedHosts = this.spec.hosts.filter((h) => this.#failedAt(h.name, step)).map((h) => h.name);
    const decisions: Decision[] = [];
    if (!this.#finishedSteps.has(step)) {
      decisions.push({
        kind: "event",
        event: { type: "step.finished", attempt: this.attempt, step, status: failedHosts.length > 0 ? "failed" : "ok", failedHosts, durationMs: Math.max(0, now - stepStarted) },
      });
    }
    const errexit = findStep(this.spec.kind, step)?.errexit !== false;
    if ((errexit && failedHosts.length > 0 && this.#abortNeeded()) || this.#excludedAll()) {
      decisions.push(this.#finishRun("failed", now));
    }
    return decisions;
  }

  #excludedAll(): boolean {
    return this.spec.hosts.every((h) => this.#excluded.has(h.name));
  }

  #decideHost(host: string, step: StepId, status: "lost" | "timeout" | "canceled", now: number, since: number, message: string): Decision {
    const reason = status;
    return {
      kind: "event",
      event: {
        type: "host.finished",
        attempt: this.attempt,
        step,
        host,
        status,
        durationMs: Math.max(0, now - since),
        failures: [{ host, step, reason, hook: null, exitCode: null, signal: null, message, outputTail: [] }],
        decided: true,
      },
    };
  }

  #decideCancel(now: number): Decision[] {
    const pos = this.position();
    const decisions: Decision[] = [];
    const inflight = pos ? pos.hosts.filter((h) => !this.#isDone(h, pos.step) && this.#volatile.has(h)) : [];
    for (const host of inflight) {
      if (!this.#cancelsSent.has(host)) {
        this.#cancelsSent.add(host);
        decisions.push({ kind: "cancel", host });
      }
    }
    const cancelAt = this.cancelAt ?? now;
    if (inflight.length > 0 && now - cancelAt < CANCEL_GRACE_MS) {
      decisions.push({ kind: "wake", at: cancelAt + CANCEL_GRACE_MS });
      return decisions;
    }
    for (const host of inflight) {
      if (pos) decisions.push(this.#decideHost(host, pos.step, "canceled", now, this.#volatile.get(host)?.firstSentAt ?? now, `${pos.step} on ${host} was canceled: ${this.cancelReason}`));
    }
    decisions.push(this.#finishRun("canceled", now));
    return decisions;
  }

  #finishRun(status: "succeeded" | "failed" | "canceled", now: number): Decision {
    return {
      kind: "event",
      event: { type: "run.finished", attempt: this.attempt, status, failures: this.#attemptFailures(), durationMs: Math.max(0, now - this.startedAt) },
    };
  }

  #attemptFailures(): Failure[] {
    const out: Failure[] = [];
    for (const [, byStep] of this.cells) {
      for (const [, cell] of byStep) if (cell.attempt === this.attempt && cell.status !== "ok") out.push(...cell.failures);
    }
    return out;
  }

  /** The command for a step of the current attempt. */
  command(step: StepId): PhaseCommand {
    return {
      lab: this.spec.lab,
      runId: this.spec.runId,
      kind: this.spec.kind,
      attempt: this.attempt,
      step,
      configRevision: this.configRevision,
      timeoutMs: this.spec.policy.phaseTimeoutMs,
      heartbeatTimeoutMs: this.spec.policy.heartbeatTimeoutMs,
      ackTimeoutMs: this.spec.policy.ackTimeoutMs,
      facts: this.facts,
    };
  }

  /** The KV snapshot of the run. */
  record(): RunRecord {
    const hosts: RunRecord["hosts"] = {};
    for (const [host, byStep] of this.cells) hosts[host] = Object.fromEntries(byStep);
    return {
      spec: this.spec,
      status: this.status,
      attempt: Math.max(1, this.attempt),
      steps: this.steps,
      currentStep: this.position()?.step ?? null,
      hosts,
      facts: this.facts,
      failures: this.failures,
      startedAt: this.startedAt,
      finishedAt: this.finishedAt,
      firstSeq: this.firstSeq,
      configRevision: this.configRevision,
      pin: this.pin,
    };
  }
}

function isFinal(status: Cell["status"]): boolean {
  return status !== "pending" && status !== "running";
}

function ms(value: number): string {
  return value >= 1000 ? `${(value / 1000).toFixed(value % 1000 === 0 ? 0 : 1)}s` : `${value}ms`;
}

/**
 * The steps of a new attempt and the hosts that skip each. A first attempt runs every
 * step of the kind (and `finally` when the lab gives commands for it).
 *
 * A resume replays prepare, override_defaults and source on every hooks-runner host (a new
 * session, as a new stack.sh would), then runs from `from`: by default the first step not
 * finished on every host; hosts that already finished a step are carried over, unless
 * `forced` (`--from`), which runs it again everywhere.
 *
 * A host in DevStack mode cannot start its stack.sh mid-way: a resume runs every step on
 * it again (its stack.sh from the start), unless it finished every step of the kind in
 * an earlier attempt and no `--from` is given, in which case it is carried in every step.
 * Its steps are never reported done unless they ran.
 */
export function planAttempt(
  machine: RunMachine | undefined,
  spec: RunSpec,
  options: { from?: StepId | undefined } = {},
): { steps: StepId[]; from: StepId; carried: Record<string, string[]> } {
  const kindSteps = stepsOf(spec.kind).map((s) => s.id);
  const all = spec.finally.length > 0 ? [...kindSteps, FINALLY_STEP.id] : kindSteps;
  if (!machine) return { steps: all, from: all[0] as StepId, carried: {} };
  const okOn = (host: string, step: StepId) => machine.cells.get(host)?.get(step)?.status === "ok";
  const devstack = spec.hosts.filter((h) => h.runner === "devstack").map((h) => h.name);
  const hooks = spec.hosts.filter((h) => h.runner !== "devstack").map((h) => h.name);
  const complete = (host: string) => kindSteps.every((s) => okOn(host, s));
  // DevStack hosts that run again, from the start of their script.
  const restarting = devstack.filter((h) => options.from !== undefined || !complete(h));
  const work = all.filter((s) => !SESSION_STEPS.includes(s));
  const firstUnfinished = work.find((s) => spec.hosts.some((h) => machine.participants(s).some((p) => p.name === h.name) && !okOn(h.name, s)));
  const from = options.from ?? (restarting.length > 0 ? (work[0] as StepId) : (firstUnfinished ?? work[work.length - 1] ?? "prepare"));
  const fromIndex = all.indexOf(from);
  const steps = restarting.length > 0 ? all : all.filter((s, i) => SESSION_STEPS.includes(s) || i >= fromIndex);
  const carried: Record<string, string[]> = {};
  const carry = (step: StepId, host: string) => (carried[step] ??= []).push(host);
  for (const step of steps) {
    for (const host of devstack) if (!restarting.includes(host)) carry(step, host);
    if (SESSION_STEPS.includes(step)) continue;
    for (const host of hooks) {
      const before = options.from !== undefined && all.indexOf(step) < fromIndex;
      if (before || (options.from === undefined && okOn(host, step))) carry(step, host);
    }
  }
  return { steps, from, carried };
}

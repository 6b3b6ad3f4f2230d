import { join } from "node:path";
import {
  CancelReplySchema,
  CancelRequestSchema,
  CommandAckSchema,
  ConfigGetRequestSchema,
  ErrorCode,
  HostConfigSchema,
  findStep,
  HostPlanSchema,
  PhaseCommandSchema,
  PlanRequestSchema,
  ProgressSchema,
  StackbusError,
  stepsOf,
  subjects,
  toStackbusError,
  validateName,
  type AgentInfo,
  type HostConfig,
  type PhaseCommand,
  type RunKind,
  type StepResult,
} from "@stackbus/protocol";
import { commandVerifier, type Bus, type Logger, type Subscription } from "@stackbus/bus";
import { admission } from "./admission.js";
import { StateStore } from "./state.js";
import { OutputLog } from "./output.js";
import { fetchHostConfig, type HostDirs } from "./prepare.js";
import { planHost } from "./plan.js";
import { Registration, type BusyState } from "./registry.js";
import { CommandLedger } from "./ledger.js";
import { agentFailure, failedResult, originOf } from "./results.js";
import { HooksRunner } from "./hooks-runner.js";
import { DevstackRunner } from "./devstack/runner.js";
import { planDevstackHost } from "./devstack/plan.js";
import { runFinally } from "./finally.js";
import { runAsFor } from "./devstack/user.js";
import type { Activity, RunHandle, Runner } from "./runner.js";

export { AGENT_VERSION, DuplicateAgentError } from "./registry.js";

export interface AgentOptions {
  bus: Bus;
  logger: Logger;
  lab: string;
  host: string;
  /** DevStack's TOP_DIR on this host: extras.d/, lib/nova_plugins/, local.conf; in DevStack mode, the checkout. */
  topDir: string;
  /** DevStack's DEST: where plugins are installed by the hooks runner. @default /opt/stack */
  dest: string;
  /** Where the agent keeps step records and run logs. */
  stateDir: string;
  devstackDir?: string | undefined;
  /** @default 2000 */
  heartbeatMs?: number | undefined;
  /** A session with no command for this long is closed. @default 1 hour */
  idleSessionMs?: number | undefined;
  /**
   * The coordinator's public nkey: phase commands and cancels must carry its signature
   * over their subject and content, or they are refused. Without it they are not checked
   * (a lab without NATS permissions).
   */
  coordinatorKey?: string | undefined;
}

export interface AgentHandle {
  readonly info: AgentInfo;
  stop(): Promise<void>;
}

/** One run on this host: its config, its output, and the runner's handle while it lasts. */
interface RunContext {
  runId: string;
  attempt: number;
  kind: RunKind;
  config: HostConfig;
  out: OutputLog;
  handle: RunHandle | null;
  lastUsed: number;
}

/**
 * The agent of one host: registers and heartbeats (registry.ts), accepts each command
 * exactly once (ledger.ts), and runs each step through the runner the host's config
 * names (runner.ts): the hooks runner or the devstack runner.
 */
export async function startAgent(options: AgentOptions): Promise<AgentHandle> {
  const lab = validateName("lab", options.lab);
  const host = validateName("host", options.host);
  const { bus } = options;
  const log = options.logger.child({ lab, host });
  const admit = admission(options.coordinatorKey ? commandVerifier(options.coordinatorKey) : undefined, log);
  const dirs: HostDirs = { topDir: options.topDir, dest: options.dest, stateDir: options.stateDir, devstackDir: options.devstackDir };
  const state = new StateStore(options.stateDir);
  state.prune();
  for (const orphan of state.reapSessions()) {
    log.warn({ pgid: orphan.pgid, runId: orphan.runId }, "ended the hooks an earlier instance of this agent left running");
  }
  const runs = new Map<string, RunContext>();
  let currentHook: string | null = null;
  const subs: Subscription[] = [];
  const registration: Registration = new Registration({ bus, lab, host, logger: log, state: (): BusyState => ({ busy: ledger.busy, hook: currentHook }) });
  const ledger: CommandLedger = new CommandLedger({
    bus,
    state,
    host,
    instance: registration.info.instance,
    logger: log,
    onIdle: () => {
      currentHook = null;
    },
    onActive: (active) => registration.inHand(active),
  });
  const hooks = new HooksRunner({ bus, dirs, lab, host, logger: log });
  const devstack = new DevstackRunner({ bus, dirs, lab, host, logger: log });
  const runnerFor = (config: HostConfig): Runner => {
    if (config.runner !== "devstack") return hooks;
    hooks.park();
    return devstack;
  };

  await devstack.listen();
  await registration.start(options.heartbeatMs ?? 2_000);
  await bus.flush();

  const idleMs = options.idleSessionMs ?? 3_600_000;
  const idleTimer = setInterval(() => {
    for (const [key, ctx] of runs) {
      if (Date.now() - ctx.lastUsed > idleMs && !ledger.hasActive(ctx.runId, ctx.attempt)) closeRun(key, "idle");
    }
  }, 60_000);
  idleTimer.unref();

  const runKey = (runId: string, attempt: number) => `${runId}#${attempt}`;

  /** Releases a run's handle (its session, its paused script) and, unless `keep`, forgets the run. */
  function closeRun(key: string, reason: string, keep = false): void {
    const ctx = runs.get(key);
    if (!ctx) return;
    if (ctx.handle) {
      state.sessionClosed(ctx.runId, ctx.handle.pgid);
      ctx.handle.close(reason);
      ctx.handle = null;
    }
    if (keep) return;
    runs.delete(key);
    void ctx.out.close();
  }

  const progressOf =
    (cmd: PhaseCommand) =>
    (what: Activity): void => {
      currentHook = what.activity ?? what.hook;
      bus.publish(subjects.runProgress(lab, cmd.runId, host), ProgressSchema, {
        runId: cmd.runId,
        host,
        attempt: cmd.attempt,
        step: cmd.step,
        hook: what.hook,
        at: Date.now(),
        ...(what.activity !== undefined ? { activity: what.activity } : {}),
        ...(what.done !== undefined ? { done: what.done } : {}),
        ...(what.total !== undefined ? { total: what.total } : {}),
      });
    };

  async function prepare(cmd: PhaseCommand, startedAt: number): Promise<StepResult> {
    const key = runKey(cmd.runId, cmd.attempt);
    closeRun(key, "prepared again");
    const runDir = state.runDir(cmd.runId);
    const out = new OutputLog({ bus, logger: log, lab, host, runId: cmd.runId, file: join(runDir, `attempt-${cmd.attempt}.log`) });
    out.beginStep(cmd.attempt, "prepare");
    let config: HostConfig;
    try {
      config = await fetchHostConfig(bus, lab, host, cmd.configRevision);
    } catch (err) {
      const e = toStackbusError(err);
      out.line("prepare", "agent", e.message);
      await out.close();
      return failedResult(originOf(cmd, host), startedAt, { ...agentFailure("prepare", e.message), outputTail: out.tail("prepare") });
    }
    const prepared = await runnerFor(config).prepare({
      cmd,
      config,
      out,
      runDir,
      startedAt,
      progress: progressOf(cmd),
      track: (pgid) => state.sessionOpened(cmd.runId, pgid),
    });
    if (prepared.handle && prepared.result.status === "ok") {
      runs.set(key, { runId: cmd.runId, attempt: cmd.attempt, kind: cmd.kind, config, out, handle: prepared.handle, lastUsed: Date.now() });
    } else {
      prepared.handle?.close("prepare failed");
      await out.close();
    }
    return prepared.result;
  }

  async function runStep(cmd: PhaseCommand): Promise<StepResult> {
    const startedAt = Date.now();
    const origin = originOf(cmd, host);
    try {
      if (cmd.step === "prepare") return await prepare(cmd, startedAt);
      const step = findStep(cmd.kind, cmd.step);
      const key = runKey(cmd.runId, cmd.attempt);
      const ctx = runs.get(key);
      if (!step) return failedResult(origin, startedAt, agentFailure("internal", `a ${cmd.kind} run has no step ${cmd.step}`));
      if (step.id === "finally") return await finallyStep(cmd, ctx, startedAt);
      if (!ctx?.handle || ctx.handle.ended) {
        return failedResult(
          origin,
          startedAt,
          agentFailure(
            "session",
            `this host has no live session for run ${cmd.runId} (attempt ${cmd.attempt}): the agent restarted or an earlier step ended it; resume the run to start again`,
          ),
        );
      }
      const handle = ctx.handle;
      ctx.lastUsed = Date.now();
      ctx.out.beginStep(cmd.attempt, cmd.step);
      const timer = setTimeout(() => {
        log.warn({ runId: cmd.runId, step: cmd.step }, "step ran past its timeout; killing it");
        handle.kill("timeout");
      }, cmd.timeoutMs);
      let result: StepResult;
      try {
        result = await handle.runStep({ cmd, step, startedAt, progress: progressOf(cmd) });
      } finally {
        clearTimeout(timer);
      }
      const steps = stepsOf(cmd.kind);
      const last = steps[steps.length - 1]?.id === cmd.step;
      const failed = step.errexit && result.status !== "ok";
      const finallyNext = last && !failed && ctx.config.finally.some((f) => f.kinds.includes(cmd.kind));
      if (last || handle.ended || failed) closeRun(key, last ? "the run's last step finished" : "the run cannot go on on this host", finallyNext);
      return result;
    } catch (err) {
      const e = toStackbusError(err);
      log.error({ err, runId: cmd.runId, step: cmd.step }, "step failed inside the agent");
      return failedResult(origin, startedAt, agentFailure("internal", e.message));
    }
  }

  /** The lab's `finally` commands for this host, after every host finished the last step. */
  async function finallyStep(cmd: PhaseCommand, ctx: RunContext | undefined, startedAt: number): Promise<StepResult> {
    const config = ctx?.config ?? (await fetchHostConfig(bus, lab, host, cmd.configRevision));
    const out = ctx?.out ?? new OutputLog({ bus, logger: log, lab, host, runId: cmd.runId, file: join(state.runDir(cmd.runId), `attempt-${cmd.attempt}.log`) });
    out.beginStep(cmd.attempt, "finally");
    try {
      return await runFinally({
        origin: originOf(cmd, host),
        startedAt,
        commands: config.finally.filter((f) => f.kinds.includes(cmd.kind)).map((f) => f.command),
        topDir: dirs.topDir,
        runAs: config.runner === "devstack" ? await runAsFor(config) : null,
        out,
        timeoutMs: cmd.timeoutMs,
        progress: progressOf(cmd),
        track: (pgid) => state.sessionOpened(cmd.runId, pgid),
        untrack: (pgid) => state.sessionClosed(cmd.runId, pgid),
      });
    } finally {
      runs.delete(runKey(cmd.runId, cmd.attempt));
      await out.close();
    }
  }

  /** Opens the hooks runner's spare session, unless the lab runs this host in DevStack mode. */
  async function warmIfHooks(): Promise<void> {
    const config = await bus.request(subjects.configGet(lab, host), ConfigGetRequestSchema, {}, HostConfigSchema, { timeoutMs: 2_000 }).catch(() => undefined);
    if (config?.runner !== "devstack") hooks.warm();
  }

  subs.push(
    bus.serve(subjects.hostCommand(lab, host), PhaseCommandSchema, CommandAckSchema, (cmd, subject, msg) => {
      admit.signed(subject, msg, cmd, `the ${cmd.step} command of run ${cmd.runId}`);
      if (cmd.lab !== lab) throw new StackbusError(ErrorCode.InvalidArgument, `command for lab ${cmd.lab} sent to the agent of lab ${lab}`);
      return ledger.accept(cmd, runStep);
    }),
  );

  subs.push(
    bus.serve(subjects.hostPlan(lab, host), PlanRequestSchema, HostPlanSchema, async (req, _subject, msg) => {
      admit.requested(msg, "a plan request");
      const config = await fetchHostConfig(bus, lab, host);
      if (config.runner === "devstack") return planDevstackHost({ dirs, config, kind: req.kind });
      return planHost({ dirs, config, kind: req.kind, logger: log });
    }),
  );

  subs.push(
    bus.serve(subjects.hostCancel(lab, host), CancelRequestSchema, CancelReplySchema, (req, subject, msg) => {
      admit.signed(subject, msg, req, `a cancel of run ${req.runId}`);
      let canceled = false;
      for (const [key, ctx] of [...runs]) {
        if (ctx.runId !== req.runId) continue;
        if (req.end && req.attempt !== undefined && ctx.attempt > req.attempt) continue;
        if (ledger.busy?.runId === req.runId && ledger.busy.attempt === ctx.attempt) {
          ctx.handle?.kill("canceled");
          canceled = true;
        }
        if (req.end) closeRun(key, req.reason);
      }
      if (canceled) log.info({ runId: req.runId, reason: req.reason }, "canceled the running step");
      return { host, canceled };
    }),
  );

  await bus.flush();
  void warmIfHooks();
  log.info({ topDir: dirs.topDir, dest: dirs.dest, stateDir: options.stateDir }, "agent ready");

  return {
    info: registration.info,
    async stop() {
      clearInterval(idleTimer);
      for (const sub of subs) sub.unsubscribe();
      await ledger.drain(1_000);
      for (const key of [...runs.keys()]) closeRun(key, "the agent is stopping");
      hooks.close();
      devstack.close();
      await registration.stop();
    },
  };
}

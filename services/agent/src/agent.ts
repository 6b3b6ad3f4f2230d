import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { join } from "node:path";
import {
  AgentInfoSchema,
  BUCKETS,
  CancelReplySchema,
  CancelRequestSchema,
  CommandAckSchema,
  ErrorCode,
  findStep,
  HeartbeatSchema,
  HostPlanSchema,
  PlanRequestSchema,
  keys,
  PhaseCommandSchema,
  PingReplySchema,
  PingRequestSchema,
  ProgressSchema,
  StackbusError,
  StepResultSchema,
  stepsOf,
  subjects,
  toStackbusError,
  validateName,
  type AgentInfo,
  type CommandAck,
  type Failure,
  type HostConfig,
  type PhaseCommand,
  type RunKind,
  type StepRef,
  type StepResult,
} from "@stackbus/protocol";
import { withRetry, type Bus, type KV, type Logger, type Subscription } from "@stackbus/bus";
import type { BashSession, HookSpec } from "./session.js";
import { StateStore } from "./state.js";
import { OutputLog } from "./output.js";
import { executeStep } from "./step.js";
import type { InstalledPlugin } from "./hooks.js";
import { fetchHostConfig, installPlugins, mergeInSession, openSession, SpareSession, type HostDirs } from "./prepare.js";
import { planHost } from "./plan.js";

export const AGENT_VERSION = "0.1.0";

export interface AgentOptions {
  bus: Bus;
  logger: Logger;
  lab: string;
  host: string;
  /** DevStack's TOP_DIR on this host: extras.d/, lib/nova_plugins/, local.conf. */
  topDir: string;
  /** DevStack's DEST: where plugins are installed. @default /opt/stack */
  dest: string;
  /** Where the agent keeps step records and run logs. */
  stateDir: string;
  devstackDir?: string | undefined;
  /** @default 2000 */
  heartbeatMs?: number | undefined;
  /** A session with no command for this long is closed. @default 1 hour */
  idleSessionMs?: number | undefined;
}

export interface AgentHandle {
  readonly info: AgentInfo;
  stop(): Promise<void>;
}

interface RunContext {
  runId: string;
  attempt: number;
  kind: RunKind;
  config: HostConfig;
  session: BashSession;
  out: OutputLog;
  plugins: InstalledPlugin[];
  factsFile: string;
  runDir: string;
  /** The hooks of the batch running now, to attribute output lines. */
  router: { batch: readonly HookSpec[] | null };
  lastUsed: number;
}

/** Refused: another agent is live for this host. */
export class DuplicateAgentError extends StackbusError {
  override name = "DuplicateAgentError";
  constructor(readonly other: AgentInfo) {
    super(
      ErrorCode.Conflict,
      `an agent for host "${other.host}" in lab "${other.lab}" is already running (pid ${other.pid} on ${other.hostname}, since ${new Date(other.startedAt).toISOString()}); stop it first`,
      { other },
    );
  }
}

/**
 * The agent of one host: registers, heartbeats, and runs each step it is sent in the
 * run's bash session. Exactly once: a step is recorded before it is acknowledged, and a
 * command for a step already done answers with the stored result.
 */
export async function startAgent(options: AgentOptions): Promise<AgentHandle> {
  const lab = validateName("lab", options.lab);
  const host = validateName("host", options.host);
  const { bus } = options;
  const log = options.logger.child({ lab, host });
  const info: AgentInfo = {
    lab,
    host,
    instance: randomUUID(),
    pid: process.pid,
    hostname: hostname(),
    version: AGENT_VERSION,
    startedAt: Date.now(),
  };
  const dirs: HostDirs = { topDir: options.topDir, dest: options.dest, stateDir: options.stateDir, devstackDir: options.devstackDir };
  const state = new StateStore(options.stateDir);
  state.prune();
  for (const orphan of state.reapSessions()) {
    log.warn({ pgid: orphan.pgid, runId: orphan.runId }, "ended the hooks an earlier instance of this agent left running");
  }
  const runs = new Map<string, RunContext>();
  // The next run's shell, started and with its preamble sourced while the host is idle.
  const spare = new SpareSession({ dirs, lab, host, logger: log });
  const active = new Map<string, Promise<void>>();
  let busy: StepRef | null = null;
  let currentHook: string | null = null;
  const subs: Subscription[] = [];

  const registry = await bus.kv(BUCKETS.agents);
  await register(bus, registry, info, log);
  // From now on this agent answers pings, so a second agent for this host sees it is live.
  subs.push(bus.serve(subjects.hostPing(lab, host), PingRequestSchema, PingReplySchema, () => info));
  await bus.nc.flush();

  const heartbeat = () => {
    bus.publish(subjects.hostHeartbeat(lab, host), HeartbeatSchema, {
      lab,
      host,
      instance: info.instance,
      at: Date.now(),
      busy,
      hook: busy ? currentHook : null,
    });
  };
  heartbeat();
  const heartbeatTimer = setInterval(heartbeat, options.heartbeatMs ?? 2_000);
  const idleMs = options.idleSessionMs ?? 3_600_000;
  const idleTimer = setInterval(() => {
    for (const [key, ctx] of runs) {
      if (Date.now() - ctx.lastUsed > idleMs && !active.has(key)) closeRun(key);
    }
  }, 60_000);
  idleTimer.unref();

  const runKey = (runId: string, attempt: number) => `${runId}#${attempt}`;

  function closeRun(key: string): void {
    const ctx = runs.get(key);
    if (!ctx) return;
    runs.delete(key);
    state.sessionClosed(ctx.runId, ctx.session.pid);
    ctx.session.close();
    void ctx.out.close();
    spare.warmSoon();
  }

  const progress = (cmd: PhaseCommand, hook: string, done?: number, total?: number) => {
    currentHook = hook;
    bus.publish(subjects.runProgress(lab, cmd.runId, host), ProgressSchema, {
      runId: cmd.runId,
      host,
      attempt: cmd.attempt,
      step: cmd.step,
      hook,
      at: Date.now(),
      ...(done !== undefined ? { done } : {}),
      ...(total !== undefined ? { total } : {}),
    });
  };

  async function publishResult(result: StepResult): Promise<void> {
    state.put(result.runId, result.attempt, result.step, { state: "done", result });
    await bus.publishDurable(subjects.runResult(lab, result.runId, host), StepResultSchema, result, {
      msgID: `${result.runId}.${result.attempt}.${result.step}.${host}`,
      deadlineMs: 10 * 60_000,
    });
  }

  function failedResult(cmd: PhaseCommand, startedAt: number, failure: Omit<Failure, "host" | "step">, status: StepResult["status"] = "failed"): StepResult {
    const finishedAt = Date.now();
    return {
      lab,
      runId: cmd.runId,
      host,
      attempt: cmd.attempt,
      step: cmd.step,
      status,
      startedAt,
      finishedAt,
      durationMs: finishedAt - startedAt,
      hooks: [],
      failures: [{ host, step: cmd.step, ...failure }],
      facts: {},
      warnings: [],
    };
  }

  async function prepare(cmd: PhaseCommand, startedAt: number): Promise<StepResult> {
    const key = runKey(cmd.runId, cmd.attempt);
    closeRun(key);
    const runDir = state.runDir(cmd.runId);
    const out = new OutputLog({ bus, logger: log, lab, host, runId: cmd.runId, file: join(runDir, `attempt-${cmd.attempt}.log`) });
    out.beginStep(cmd.attempt, "prepare");
    const say = (line: string) => out.line("prepare", "agent", line);
    let ctx: RunContext | undefined;
    const router: RunContext["router"] = { batch: null };
    try {
      const config = await fetchHostConfig(bus, lab, host, cmd.configRevision);
      say(`lab ${config.lab} revision ${config.revision}; TOP_DIR=${dirs.topDir} DEST=${dirs.dest}`);
      const opened = await openSession({
        dirs,
        config,
        runId: cmd.runId,
        runDir,
        logger: log,
        spare,
        onOutput: (stream, index, text) => {
          const spec = index !== null ? router.batch?.[index] : undefined;
          out.line(spec ? spec.name : busy === null ? "(background)" : "(session)", stream, text);
        },
      });
      state.sessionOpened(cmd.runId, opened.session.pid);
      ctx = {
        runId: cmd.runId,
        attempt: cmd.attempt,
        kind: cmd.kind,
        config,
        session: opened.session,
        out,
        plugins: [],
        factsFile: opened.factsFile,
        runDir,
        router,
        lastUsed: Date.now(),
      };
      const context = ctx;
      if (opened.localrcDied) {
        const result = failedResult(cmd, startedAt, {
          reason: "prepare",
          hook: "localrc",
          exitCode: opened.localrcStatus,
          signal: null,
          message: `sourcing the localrc section of local.conf failed: ${out.tail("localrc").slice(-3).join(" / ")}`,
          outputTail: out.tail("localrc"),
        });
        context.session.close();
        return result;
      }
      const warnings = config.diagnostics.filter((d) => d.severity === "warning").map((d) => d.message);
      const installed = await installPlugins({
        bus,
        session: context.session,
        config,
        runId: cmd.runId,
        dest: dirs.dest,
        log: say,
        onProgress: (plugin, done, total) => progress(cmd, `fetch ${plugin}`, done, total),
      });
      context.plugins = installed.plugins;
      warnings.push(...installed.warnings);
      runs.set(key, context);
      await out.flush();
      const finishedAt = Date.now();
      return {
        lab,
        runId: cmd.runId,
        host,
        attempt: cmd.attempt,
        step: "prepare",
        status: "ok",
        startedAt,
        finishedAt,
        durationMs: finishedAt - startedAt,
        hooks: [],
        failures: [],
        facts: {},
        warnings,
      };
    } catch (err) {
      const e = toStackbusError(err);
      say(e.message);
      ctx?.session.close();
      await out.flush();
      return failedResult(cmd, startedAt, {
        reason: "prepare",
        hook: typeof e.data["plugin"] === "string" ? `plugin ${e.data["plugin"]}` : null,
        exitCode: null,
        signal: null,
        message: e.message,
        outputTail: out.tail("prepare"),
      });
    }
  }

  async function runStep(cmd: PhaseCommand): Promise<void> {
    const startedAt = Date.now();
    busy = { runId: cmd.runId, attempt: cmd.attempt, step: cmd.step };
    let result: StepResult;
    try {
      if (cmd.step === "prepare") {
        result = await prepare(cmd, startedAt);
      } else {
        const step = findStep(cmd.kind, cmd.step);
        const key = runKey(cmd.runId, cmd.attempt);
        const ctx = runs.get(key);
        if (!step) {
          result = failedResult(cmd, startedAt, { reason: "internal", hook: null, exitCode: null, signal: null, message: `a ${cmd.kind} run has no step ${cmd.step}`, outputTail: [] });
        } else if (!ctx || ctx.session.ended) {
          result = failedResult(cmd, startedAt, {
            reason: "session",
            hook: null,
            exitCode: null,
            signal: null,
            message: `this host has no live session for run ${cmd.runId} (attempt ${cmd.attempt}): the agent restarted or an earlier step ended the shell; resume the run to start a new session`,
            outputTail: [],
          });
        } else {
          ctx.lastUsed = Date.now();
          ctx.out.beginStep(cmd.attempt, cmd.step);
          const timer = setTimeout(() => {
            log.warn({ runId: cmd.runId, step: cmd.step }, "step ran past its timeout; killing its hooks");
            ctx.session.kill("SIGTERM", "timeout");
          }, cmd.timeoutMs);
          try {
            result = await executeStep(
              {
                lab,
                host,
                runId: cmd.runId,
                attempt: cmd.attempt,
                topDir: dirs.topDir,
                session: ctx.session,
                out: ctx.out,
                plugins: ctx.plugins,
                factsFile: ctx.factsFile,
                merge: (group) => mergeInSession(ctx.session, dirs.topDir, ctx.runDir, group),
                setBatch: (hooks) => {
                  ctx.router.batch = hooks;
                },
                onHook: (hook) => progress(cmd, hook),
              },
              step,
              cmd.facts,
              startedAt,
            );
          } finally {
            clearTimeout(timer);
          }
          const steps = stepsOf(cmd.kind);
          const last = steps[steps.length - 1]?.id === cmd.step;
          if (last || ctx.session.ended || (step.errexit && result.status !== "ok")) closeRun(key);
        }
      }
    } catch (err) {
      const e = toStackbusError(err);
      log.error({ err, runId: cmd.runId, step: cmd.step }, "step failed inside the agent");
      result = failedResult(cmd, startedAt, { reason: "internal", hook: null, exitCode: null, signal: null, message: e.message, outputTail: [] });
    }
    busy = null;
    currentHook = null;
    heartbeat();
    try {
      await publishResult(result);
    } catch (err) {
      log.error({ err, runId: cmd.runId, step: cmd.step }, "could not publish a step result; it is kept in the state dir and answered on the next command");
    }
  }

  subs.push(
    bus.serve(subjects.hostCommand(lab, host), PhaseCommandSchema, CommandAckSchema, (cmd): CommandAck => {
      if (cmd.lab !== lab) throw new StackbusError(ErrorCode.InvalidArgument, `command for lab ${cmd.lab} sent to the agent of lab ${lab}`);
      const recorded = state.get(cmd.runId, cmd.attempt, cmd.step);
      const activeKey = `${cmd.runId}#${cmd.attempt}#${cmd.step}`;
      if (recorded?.state === "done") {
        void bus
          .publishDurable(subjects.runResult(lab, cmd.runId, host), StepResultSchema, recorded.result, {
            msgID: `${cmd.runId}.${cmd.attempt}.${cmd.step}.${host}`,
          })
          .catch(() => undefined);
        return { host, instance: info.instance, state: "done", result: recorded.result };
      }
      if (recorded?.state === "running") {
        if (active.has(activeKey)) return { host, instance: info.instance, state: "running" };
        // Started by an earlier instance of this agent that did not finish it: its outcome is unknown.
        const result = failedResult(cmd, recorded.startedAt, {
          reason: "lost",
          hook: null,
          exitCode: null,
          signal: null,
          message: `the agent restarted while ${cmd.step} was running; its outcome is unknown and it is not run again (resume the run)`,
          outputTail: [],
        }, "lost");
        void publishResult(result).catch((err: unknown) => log.error({ err }, "could not publish a lost result"));
        return { host, instance: info.instance, state: "done", result };
      }
      if (busy && (busy.runId !== cmd.runId || busy.attempt !== cmd.attempt)) {
        throw new StackbusError(ErrorCode.Conflict, `host ${host} is busy with run ${busy.runId} (${busy.step})`, { busy });
      }
      state.put(cmd.runId, cmd.attempt, cmd.step, { state: "running", startedAt: Date.now(), instance: info.instance });
      const done = runStep(cmd)
        .catch((err: unknown) => log.error({ err, runId: cmd.runId, step: cmd.step }, "a step ended with an error inside the agent"))
        .finally(() => active.delete(activeKey));
      active.set(activeKey, done);
      return { host, instance: info.instance, state: "started" };
    }),
  );

  subs.push(
    bus.serve(subjects.hostPlan(lab, host), PlanRequestSchema, HostPlanSchema, async (req) => {
      const config = await fetchHostConfig(bus, lab, host);
      return planHost({ dirs, config, kind: req.kind, logger: log });
    }),
  );

  subs.push(
    bus.serve(subjects.hostCancel(lab, host), CancelRequestSchema, CancelReplySchema, (req) => {
      let canceled = false;
      for (const ctx of runs.values()) {
        if (ctx.runId === req.runId && busy?.runId === req.runId) {
          ctx.session.kill("SIGTERM", "canceled");
          canceled = true;
        }
      }
      if (canceled) log.info({ runId: req.runId, reason: req.reason }, "canceled the running step");
      return { host, canceled };
    }),
  );

  await bus.nc.flush();
  spare.warm();
  log.info({ topDir: dirs.topDir, dest: dirs.dest, stateDir: options.stateDir }, "agent ready");

  return {
    info,
    async stop() {
      clearInterval(heartbeatTimer);
      clearInterval(idleTimer);
      for (const sub of subs) sub.unsubscribe();
      await Promise.race([Promise.allSettled([...active.values()]), new Promise((r) => setTimeout(r, 1_000))]);
      spare.close();
      for (const key of [...runs.keys()]) closeRun(key);
      await registry.delete(keys.agent(lab, host)).catch(() => undefined);
    },
  };
}

/**
 * Records this agent in the registry. Refuses to start when another live agent holds
 * the host: live means it answers a ping.
 */
async function register(bus: Bus, registry: KV, info: AgentInfo, log: Logger): Promise<void> {
  const key = keys.agent(info.lab, info.host);
  const value = JSON.stringify(info);
  for (let attempt = 0; attempt < 5; attempt++) {
    const entry = await withRetry("reading the agent registry", () => registry.get(key));
    if (!entry || entry.operation !== "PUT") {
      try {
        await withRetry("registering the agent", () => registry.create(key, value), { deadlineMs: 10_000 });
        return;
      } catch {
        continue;
      }
    }
    const other = AgentInfoSchema.safeParse(entry.json());
    if (other.success && other.data.instance !== info.instance) {
      const live = await bus
        .request(subjects.hostPing(info.lab, info.host), PingRequestSchema, {}, PingReplySchema, { timeoutMs: 1_000 })
        .catch(() => undefined);
      if (live) throw new DuplicateAgentError(live);
      log.info({ previous: other.data.pid }, "taking over the registration of an agent that no longer answers");
    }
    try {
      await registry.update(key, value, entry.revision);
      return;
    } catch {
      // someone else changed it; look again
    }
  }
  throw new StackbusError(ErrorCode.Conflict, `could not register the agent for host ${info.host}: the registry kept changing`);
}

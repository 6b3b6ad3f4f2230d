import {
  CancelReplySchema,
  CancelRequestSchema,
  CommandAckSchema,
  ConfigGetRequestSchema,
  ErrorCode,
  HostConfigSchema,
  HostPlanSchema,
  PhaseCommandSchema,
  PlanRequestSchema,
  StackbusError,
  subjects,
  validateName,
  type AgentInfo,
} from "@stackbus/protocol";
import { commandVerifier, type Bus, type Logger, type Subscription } from "@stackbus/bus";
import { admission } from "./admission.js";
import { StateStore } from "./state.js";
import { fetchHostConfig, type HostDirs } from "./prepare.js";
import { planHost } from "./plan.js";
import { Registration, type BusyState } from "./registry.js";
import { CommandLedger } from "./ledger.js";
import { HooksRunner } from "./hooks-runner.js";
import { HostRuns } from "./runs.js";
import { DevstackRunner } from "./devstack/runner.js";
import { planDevstackHost } from "./devstack/plan.js";

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
    onActive: (active, cmd) => registration.inHand(active, cmd?.heartbeatTimeoutMs),
  });
  const hooks = new HooksRunner({ bus, dirs, lab, host, logger: log });
  const devstack = new DevstackRunner({ bus, dirs, lab, host, logger: log });
  const runs = new HostRuns({
    bus,
    lab,
    host,
    dirs,
    state,
    logger: log,
    runnerFor: (config) => {
      if (config.runner !== "devstack") return hooks;
      hooks.park();
      return devstack;
    },
    isActive: (runId, attempt) => ledger.hasActive(runId, attempt),
    busy: () => ledger.busy,
    onActivity: (what) => {
      currentHook = what;
    },
  });

  await devstack.listen();
  await registration.start(options.heartbeatMs ?? 2_000);
  await bus.flush();

  const idleMs = options.idleSessionMs ?? 3_600_000;
  const idleTimer = setInterval(() => runs.closeIdle(idleMs), 60_000);
  idleTimer.unref();

  /** Opens the hooks runner's spare session, unless the lab runs this host in DevStack mode. */
  async function warmIfHooks(): Promise<void> {
    const config = await bus.request(subjects.configGet(lab, host), ConfigGetRequestSchema, {}, HostConfigSchema, { timeoutMs: 2_000 }).catch(() => undefined);
    if (config?.runner !== "devstack") hooks.warm();
  }

  subs.push(
    bus.serve(subjects.hostCommand(lab, host), PhaseCommandSchema, CommandAckSchema, (cmd, subject, msg) => {
      admit.signed(subject, msg, cmd, `the ${cmd.step} command of run ${cmd.runId}`);
      if (cmd.lab !== lab) throw new StackbusError(ErrorCode.InvalidArgument, `command for lab ${cmd.lab} sent to the agent of lab ${lab}`);
      return ledger.accept(cmd, (c) => runs.run(c));
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
      const canceled = runs.cancel(req);
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
      runs.closeAll("the agent is stopping");
      hooks.close();
      devstack.close();
      await registration.stop();
    },
  };
}

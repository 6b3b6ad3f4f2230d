import { Argument, Option, type Command } from "commander";
import { Bus, onShutdown } from "@stackbus/bus";
import { validateName } from "@stackbus/protocol";
import { resolve } from "node:path";
import { busOptions, EXIT, serviceLogger, withBusOptions, withLabOption, type BusFlags, exitWith } from "../common.js";
import { resolveLab } from "../lab-name.js";
import { SERVICES, type ServiceName } from "../services.js";

/** Runs one service in the foreground until SIGINT/SIGTERM. Resolves with the exit code. */
export async function serveForeground(name: ServiceName, flags: BusFlags & { cacheDir?: string; signingKey?: string }): Promise<number> {
  const logger = await serviceLogger(`stackbus-${name}`);
  const bus = await Bus.connect(busOptions(flags, `stackbus-${name}`, logger, { waitForServer: true }));
  const service = await SERVICES[name]({ bus, logger, cacheDir: flags.cacheDir, signingKey: flags.signingKey });
  return new Promise<number>((resolveExit) => {
    onShutdown(logger, async () => {
      await service.stop();
      await bus.drain();
      resolveExit(EXIT.ok);
    });
  });
}

export function registerServeCommands(program: Command): void {
  const serve = program
    .command("serve")
    .description("Run one stackbus service in the foreground (what a systemd unit runs).")
    .addArgument(new Argument("<service>", "the service to run").choices(Object.keys(SERVICES)))
    .addOption(new Option("--cache-dir <dir>", "fetcher: where plugin repositories are cached").env("STACKBUS_FETCHER_CACHE").default("./.stackbus/fetcher-cache"))
    .addOption(new Option("--signing-key <file>", "coordinator: nkey seed it signs phase commands and cancels with (stackbus auth gen writes coordinator-sign.nk)").env("STACKBUS_SIGNING_KEY"))
    .addHelpText("after", "\nExamples:\n  stackbus serve config --nats nats://10.0.0.1:4222\n  stackbus serve fetcher --cache-dir /var/cache/stackbus\n  stackbus serve coordinator --replicas 3");
  withBusOptions(serve).action(exitWith(async (name: ServiceName, flags: BusFlags & { cacheDir?: string; signingKey?: string }) => serveForeground(name, flags)));

  const agent = program
    .command("agent")
    .description("Run the agent of one host in the foreground: it runs that host's hooks for every run.")
    .requiredOption("--host <name>", "this host's name in the lab")
    .addOption(new Option("--top-dir <dir>", "DevStack's TOP_DIR on this host (extras.d/, lib/nova_plugins/, local.conf)").env("STACKBUS_TOP_DIR").default("/opt/stack/devstack"))
    .addOption(new Option("--dest <dir>", "DevStack's DEST: where plugins are installed").env("STACKBUS_DEST").default("/opt/stack"))
    .addOption(new Option("--devstack-dir <dir>", "hooks runner: source this DevStack checkout's stackrc (with the run's localrc), functions and lib/* where its scripts do, instead of stackbus's helper library").env("STACKBUS_DEVSTACK_DIR"))
    .addOption(new Option("--state-dir <dir>", "where the agent keeps step records and run logs").env("STACKBUS_STATE_DIR").default("/var/lib/stackbus/agent"))
    .addOption(new Option("--heartbeat <ms>", "heartbeat interval in milliseconds while a step runs (a quarter of the run's heartbeat timeout when that is longer); idle, 15 times it").env("STACKBUS_HEARTBEAT_MS").default("2000"))
    .addOption(new Option("--coordinator-key <key>", "accept only phase commands and cancels signed with this key (the coordinator's public nkey, U...)").env("STACKBUS_COORDINATOR_KEY"))
    .addHelpText("after", "\nExamples:\n  stackbus agent --host compute1 --lab lab1 --nats nats://controller:4222\n  stackbus agent --host controller --top-dir ~/devstack --dest /opt/stack --state-dir ~/.stackbus-agent");
  withLabOption(withBusOptions(agent)).action(
    exitWith(async (flags: BusFlags & { host: string; topDir: string; dest: string; devstackDir?: string; stateDir: string; heartbeat: string; coordinatorKey?: string }) => {
      const host = validateName("host", flags.host);
      const logger = (await serviceLogger("stackbus-agent")).child({ host });
      const bus = await Bus.connect(busOptions(flags, `stackbus-agent/${host}`, logger, { waitForServer: true }));
      const lab = flags.lab ? validateName("lab", flags.lab) : await waitForLab(bus, host);
      const { awaitLabHost, startAgent } = await import("@stackbus/agent");
      await awaitLabHost(bus, lab, host, logger).catch(async (err: unknown) => {
        await bus.drain();
        throw err;
      });
      const handle = await startAgent({
        bus,
        logger,
        lab,
        host,
        topDir: resolve(flags.topDir),
        dest: resolve(flags.dest),
        stateDir: resolve(flags.stateDir),
        devstackDir: flags.devstackDir ? resolve(flags.devstackDir) : undefined,
        heartbeatMs: Number(flags.heartbeat),
        coordinatorKey: flags.coordinatorKey,
      }).catch(async (err: unknown) => {
        await bus.drain();
        throw err;
      });
      return new Promise<number>((resolveExit) => {
        onShutdown(logger, async () => {
          await handle.stop();
          await bus.drain();
          resolveExit(EXIT.ok);
        });
      });
    }),
  );
}

/** An agent started without --lab waits until the config service names the one lab that has this host. */
async function waitForLab(bus: Bus, host: string): Promise<string> {
  for (;;) {
    try {
      return await resolveLab(bus, undefined);
    } catch (err) {
      bus.log.warn({ host, err: (err as Error).message }, "waiting for a lab to be applied (or pass --lab)");
      await new Promise((r) => setTimeout(r, 3_000));
    }
  }
}

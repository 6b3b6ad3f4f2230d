import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { Option, type Command } from "commander";
import pc from "picocolors";
import { Bus, silentLogger } from "@stackbus/bus";
import { formatDuration } from "@stackbus/protocol";
import { busOptions, EXIT, exitWith } from "../common.js";
import { up } from "./up.js";
import { startRun } from "./run.js";
import { freePort } from "../ports.js";

const EXAMPLES = new URL("../../../../examples/demo/", import.meta.url).pathname;

/**
 * The demo: builds the example lab under the data dir, serves its plugin over git smart
 * HTTP, brings stackbus up with three local agents, stacks the lab in lockstep with
 * progress printed, and stops everything. Exit 0 when the stack succeeded.
 */
export async function runDemo(options: { dataDir: string; keep: boolean; say: (line: string) => void }): Promise<number> {
  const dataDir = resolve(options.dataDir);
  rmSync(dataDir, { recursive: true, force: true });
  const labDir = join(dataDir, "lab");
  mkdirSync(labDir, { recursive: true });
  const say = options.say;

  const gitRoot = join(dataDir, "git");
  const { commitToBareRepo, serveGitHttp } = await import("@stackbus/githttp");
  const commit = await commitToBareRepo(gitRoot, join(dataDir, "git-work"), "demo-plugin", {}, { fromDir: join(EXAMPLES, "plugins/demo-plugin"), tags: ["1.0.0"] });
  const git = await serveGitHttp({ root: gitRoot });
  const pluginUrl = `${git.url}/demo-plugin.git`;
  say(`example plugin served at ${pluginUrl} (commit ${commit.slice(0, 12)})`);

  for (const name of readdirSync(EXAMPLES).filter((n) => n.endsWith(".in"))) {
    const text = readFileSync(join(EXAMPLES, name), "utf8").replaceAll("@PLUGIN_URL@", pluginUrl);
    writeFileSync(join(labDir, name.replace(/\.in$/, "")), text);
  }
  for (const host of ["controller", "compute1", "compute2"]) {
    cpSync(join(EXAMPLES, "devstack"), join(labDir, "hosts", host, "devstack"), { recursive: true });
    mkdirSync(join(labDir, "hosts", host, "stack"), { recursive: true });
  }

  const port = await freePort();
  let handle: Awaited<ReturnType<typeof up>> | undefined;
  try {
    handle = await up({ port, dataDir, labFile: join(labDir, "lab.yaml"), flags: {}, say });
    const bus = await Bus.connect(busOptions({ nats: handle.natsUrl }, "stackbus-demo", silentLogger()));
    try {
      say(pc.bold("stacking the demo lab: controller first in every phase, then both computes"));
      const started = Date.now();
      const code = await startRun(bus, "demo", { kind: "stack" }, { wait: true, json: false });
      say(code === EXIT.ok ? pc.green(`demo lab stacked in ${formatDuration(Date.now() - started)}`) : pc.red("the demo stack failed"));
      say(`hook output of each host: ${join(dataDir, "hosts", "<host>", "state", "runs")}; service and agent logs: ${join(dataDir, "logs")}`);
      if (options.keep) {
        say(`bus left running at ${handle.natsUrl} (--keep); Ctrl-C to stop`);
        await new Promise<void>((r) => {
          process.once("SIGINT", () => r());
          process.once("SIGTERM", () => r());
        });
      }
      return code;
    } finally {
      await bus.drain();
    }
  } finally {
    await handle?.stop();
    await git.stop();
  }
}

export function registerDemoCommand(program: Command): void {
  program
    .command("demo")
    .description("Build and stack the demo lab on this machine: a controller and two computes as local agents, example hooks, and an example plugin over git HTTP.")
    .addOption(new Option("--data-dir <dir>", "where the demo lab, bus data and logs go (emptied first)").default("./.stackbus/demo"))
    .option("--keep", "leave the bus and agents running after the stack (Ctrl-C to stop)")
    .addHelpText("after", "\nExample:\n  npx stackbus demo")
    .action(
      exitWith(async (flags: { dataDir: string; keep?: boolean }) =>
        runDemo({ dataDir: flags.dataDir, keep: Boolean(flags.keep), say: (line) => process.stdout.write(`${pc.cyan("demo")} ${line}\n`) }),
      ),
    );
}

import { Command, CommanderError } from "commander";
import { STACKBUS_VERSION } from "@stackbus/protocol";
import { EXIT, lastExitCode, reportError } from "./common.js";
import { registerRunCommands } from "./commands/run.js";
import { registerServeCommands } from "./commands/serve.js";
import { registerUpCommand } from "./commands/up.js";
import { registerDemoCommand } from "./commands/demo.js";
import { registerWatchCommands } from "./commands/watch.js";
import { registerAuthCommands } from "./commands/auth.js";
import { registerPlanCommand } from "./commands/plan.js";
import { registerLabCommands } from "./commands/lab.js";
import { registerAgentsCommand } from "./commands/agents.js";

export const VERSION = STACKBUS_VERSION;

/** The `stackbus` program with every command registered. */
export function buildProgram(): Command {
  const program = new Command("stackbus")
    .description("Run DevStack's hooks across every host of a lab, in lockstep, over NATS.")
    .version(VERSION)
    .showHelpAfterError("(run with --help for usage)")
    .addHelpText(
      "after",
      `
Exit codes:
  0  success
  1  the run (or command) failed
  2  usage error (bad option, bad name, invalid input)
  3  cannot reach the bus (NATS)

Quick start:
  stackbus up --lab lab.yaml      # bus, services and local agents, in the foreground
  stackbus stack --wait           # stack every host, phase by phase, in lockstep
  stackbus watch                  # watch the latest run live`,
    );
  registerUpCommand(program);
  registerServeCommands(program);
  registerLabCommands(program);
  registerAgentsCommand(program);
  registerRunCommands(program);
  registerPlanCommand(program);
  registerWatchCommands(program);
  registerAuthCommands(program);
  registerDemoCommand(program);
  for (const cmd of allCommands(program)) cmd.exitOverride();
  return program;
}

/** Runs the CLI; resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return lastExitCode();
  } catch (err) {
    if (err instanceof CommanderError) {
      return ["commander.helpDisplayed", "commander.version", "commander.help"].includes(err.code) ? EXIT.ok : EXIT.usage;
    }
    return reportError(err);
  }
}

function allCommands(cmd: Command): Command[] {
  return [cmd, ...cmd.commands.flatMap(allCommands)];
}

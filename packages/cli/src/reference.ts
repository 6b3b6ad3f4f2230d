import type { Command } from "commander";
import { buildProgram } from "./main.js";

/** The commands people run: every command without subcommands, with its full name. */
export function leafCommands(cmd: Command, path: string[] = []): Array<{ path: string; cmd: Command }> {
  const subs = cmd.commands.filter((c) => c.name() !== "help");
  if (subs.length === 0) return [{ path: path.join(" "), cmd }];
  return subs.flatMap((c) => leafCommands(c, [...path, c.name()]));
}

/** A command's `--help` as it prints on an 80-column terminal, after-text included. */
export function helpText(cmd: Command): string {
  let out = "";
  cmd.configureOutput({ writeOut: (s) => (out += s), writeErr: (s) => (out += s), getOutHelpWidth: () => 80, getErrHelpWidth: () => 80, getOutHasColors: () => false });
  cmd.outputHelp();
  return out;
}

const anchor = (path: string) => `stackbus-${path.replaceAll(" ", "-")}`;

/**
 * docs/cli.md: every command's `--help`, as the program prints it. `node scripts/docs.mjs`
 * writes it; a test fails when it differs, so the page is always the real help.
 */
export function cliReference(): string {
  const program = buildProgram();
  const commands = leafCommands(program);
  const lines = [
    "# The stackbus command line",
    "",
    "<!-- Generated from the CLI's own --help by `node scripts/docs.mjs`; a test fails when it is stale. Do not edit. -->",
    "",
    "Run it as `npx stackbus` from the repository after setup (or install the `stackbus` link as deploy/README.md shows). Every command that talks to the bus takes `--nats URL` (default `$NATS_URL`, then `nats://127.0.0.1:4222`) and the credential options `--user/--password`, `--nkey`, `--creds`, `--tls-ca/--tls-cert/--tls-key` (or their `STACKBUS_*` environment variables). Commands that work on a lab take `--lab NAME` (default `$STACKBUS_LAB`, else the only lab the config service holds).",
    "",
    "## Exit codes",
    "",
    "| code | meaning |",
    "| --- | --- |",
    "| 0 | success |",
    "| 1 | the run (or the command) failed |",
    "| 2 | usage error: a bad option or name, or invalid input (manifest, local.conf) |",
    "| 3 | cannot reach the bus (NATS), or the bus refused the credentials |",
    "",
    "## Commands",
    "",
    "| command | what it does |",
    "| --- | --- |",
    ...commands.map(({ path, cmd }) => `| [\`stackbus ${path}\`](#${anchor(path)}) | ${cmd.description().replaceAll("|", "\\|")} |`),
    "",
  ];
  for (const { path, cmd } of commands) {
    lines.push(`### stackbus ${path}`, "", "```", helpText(cmd).trimEnd(), "```", "");
  }
  return lines.join("\n");
}

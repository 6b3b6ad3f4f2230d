import type { Command } from "commander";
import { OUTPUT_LIMITS } from "@stackbus/agent";
import { DEFAULT_PLUGIN_LIMITS, MAX_LAB_HOSTS } from "@stackbus/protocol";
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
    "Run it as `npx stackbus` inside the repository after setup; anywhere else link it onto your PATH (`sudo ln -sf $PWD/packages/cli/bin/stackbus.js /usr/local/bin/stackbus`, as README.md and deploy/README.md show): outside the checkout `npx stackbus` would fetch an unrelated npm package. Every command that talks to the bus takes `--nats URL` (default `$NATS_URL`, then `nats://127.0.0.1:4222`) and the credential options `--user/--password`, `--nkey`, `--creds`, `--tls-ca/--tls-cert/--tls-key` (or their `STACKBUS_*` environment variables). Commands that work on a lab take `--lab NAME` (default `$STACKBUS_LAB`, else the only lab the config service holds).",
    "",
    "## Exit codes",
    "",
    "| code | meaning |",
    "| --- | --- |",
    "| 0 | success |",
    "| 1 | the run (or the command) failed |",
    "| 2 | usage error: a bad option or name, or invalid input (manifest, local.conf) |",
    "| 3 | cannot reach the bus (NATS), or the bus refused the credentials |",
    "| 130 | interrupted (Ctrl-C); a run that `--wait` followed goes on (`stackbus watch RUN` follows it again, `stackbus cancel RUN` stops it) |",
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
  lines.push(...limits());
  return lines.join("\n");
}

/** Bytes as people read them: 16 KiB, 8 MiB. */
function size(bytes: number): string {
  for (const [unit, n] of [["GiB", 2 ** 30], ["MiB", 2 ** 20], ["KiB", 2 ** 10]] as const) {
    if (bytes >= n && bytes % n === 0) return `${bytes / n} ${unit}`;
  }
  return `${bytes} bytes`;
}

/** The bounds every lab has, with their values from the code that enforces them. */
function limits(): string[] {
  const o = OUTPUT_LIMITS;
  const p = DEFAULT_PLUGIN_LIMITS;
  return [
    "## Limits",
    "",
    "What stackbus keeps and accepts, and what it does past each bound (docs/security.md says why each exists and which test shows it).",
    "",
    "| what | bound | past it |",
    "| --- | --- | --- |",
    `| one output line | ${size(o.lineBytes)} | the line is cut, saying how many bytes were not kept |`,
    `| one hook's output in one step | ${size(o.hookBytes)} | only its last 200 lines are kept past that (logs, the host's run log), after a line saying how many lines and bytes were not |`,
    `| one run's output on one host | ${size(o.runBytes)} | the same, over all its hooks and steps |`,
    `| a failure's output tail (status, watch, the run record) | ${size(o.tailBytes)} | the last lines that fit, each of at most 2 KiB |`,
    `| one log message on the bus | ${size(o.batchBytes)} | the batch is split |`,
    "| one message on the bus | the server's `max_payload` (1 MiB by default) | refused before it is sent (`TOO_LARGE`), never retried |",
    `| hosts per lab | ${MAX_LAB_HOSTS} | the manifest is refused at \`lab validate\` / \`lab apply\` (a finished ${MAX_LAB_HOSTS}-host run's record is about 1.2 MB of JSON, stored packed in about 120 KB) |`,
    `| a plugin's largest file | ${size(p.maxFileBytes)} (\`plugins.limits.maxFileBytes\`) | the fetch, or the host's unpack, fails naming plugin, limit and value; nothing is left behind |`,
    `| a plugin's files | ${p.maxFiles} (\`plugins.limits.maxFiles\`) | the same |`,
    `| a plugin unpacked | ${size(p.maxUnpackedBytes)} (\`plugins.limits.maxUnpackedBytes\`) | the same |`,
    `| a plugin's directory depth | ${p.maxDepth} (\`plugins.limits.maxDepth\`) | the same |`,
    `| a plugin's download | ${size(p.maxDownloadBytes)} (\`plugins.limits.maxDownloadBytes\`) | the same |`,
    "",
    "The plugin limits are a lab's to set (docs/lab.md); the others are fixed.",
    "",
  ];
}

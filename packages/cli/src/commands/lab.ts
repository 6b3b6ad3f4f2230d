import type { Command } from "commander";
import pc from "picocolors";
import {
  ConfigApplyReplySchema,
  ConfigApplyRequestSchema,
  ErrorCode,
  formatDuration,
  LabShowRequestSchema,
  LabShowSchema,
  StackbusError,
  subjects,
  type ConfigApplyReply,
  type ConfigApplyRequest,
  type Diagnostic,
  type LabShow,
} from "@stackbus/protocol";
import type { Bus } from "@stackbus/bus";
import { connectClient, EXIT, exitWith, withBusOptions, withLabOption, type BusFlags } from "../common.js";
import { CLI_TIMEOUT_MS } from "../timeouts.js";
import { withLab } from "../lab-name.js";

function printDiagnostics(diagnostics: readonly Diagnostic[]): void {
  for (const d of diagnostics) {
    process.stderr.write(`${d.severity === "error" ? pc.red("error") : pc.yellow("warning")} ${d.message}\n`);
  }
}

/** Renders `lab show` for people. */
export function renderLab(show: LabShow, host?: string): string {
  const lines = [
    `${pc.bold(`lab ${show.lab}`)} revision ${show.revision}, applied ${new Date(show.appliedAt).toISOString()} from ${show.file}`,
    `defaults: failure policy ${show.defaults.failurePolicy}${show.defaults.maxFail ? `, max-fail ${"count" in show.defaults.maxFail ? show.defaults.maxFail.count : `${show.defaults.maxFail.percent}%`}` : ""}, phase timeout ${formatDuration(show.defaults.phaseTimeoutMs)}, ack timeout ${formatDuration(show.defaults.ackTimeoutMs)}, heartbeat timeout ${formatDuration(show.defaults.heartbeatTimeoutMs)}`,
    `plugins: ${show.pluginSettings.order} order${show.pluginSettings.reclone ? ", reclone" : ""}${show.pluginSettings.offline ? ", offline" : ""}${show.pluginSettings.mirrors.length ? `, ${show.pluginSettings.mirrors.length} mirror(s)` : ""}`,
  ];
  for (const h of [...show.hosts].sort((a, b) => a.wave - b.wave || a.name.localeCompare(b.name))) {
    if (host && h.name !== host) continue;
    const labels = Object.entries(h.labels).map(([k, v]) => `${k}=${v}`).join(",");
    lines.push(`  ${pc.bold(h.name)} wave ${h.wave}${labels ? ` [${labels}]` : ""}${h.local ? ` local (TOP_DIR ${h.topDir ?? "-"}, DEST ${h.dest ?? "-"})` : ""}${h.warnings ? pc.yellow(` ${h.warnings} warning(s)`) : ""}`);
    for (const p of h.plugins) lines.push(`      enable_plugin ${p.name} ${p.url} ${p.ref}   ${pc.dim(`${p.file}:${p.line}`)}`);
  }
  return lines.join("\n");
}

/**
 * Validates a manifest and its local.conf files and applies them as the lab's next revision
 * (nothing when it is the current one). Prints which; an invalid bundle is refused before the
 * bus is asked (INVALID_MANIFEST with every diagnostic: exit 2), and the current revision
 * stays in force.
 */
export async function applyManifest(bus: Bus, file: string, out: (line: string) => void): Promise<ConfigApplyReply> {
  return applyChecked(bus, await checkManifest(file), out);
}

/** A manifest and its local.conf files, valid, ready to apply; refused with every diagnostic (exit 2) when not. */
async function checkManifest(file: string): Promise<{ name: string; request: ConfigApplyRequest }> {
  const v = (await import("@stackbus/lab")).validateLabFile(file);
  if (!v.ok || !v.lab) {
    const errors = v.diagnostics.filter((d) => d.severity === "error").length;
    throw new StackbusError(ErrorCode.InvalidManifest, `not applied: ${file} has ${errors} error(s); the current revision stays in force`, { file, diagnostics: v.diagnostics });
  }
  return { name: v.lab.name, request: v.request };
}

async function applyChecked(bus: Bus, checked: { name: string; request: ConfigApplyRequest }, out: (line: string) => void): Promise<ConfigApplyReply> {
  try {
    const reply = await bus.request(subjects.configApply(checked.name), ConfigApplyRequestSchema, checked.request, ConfigApplyReplySchema, { timeoutMs: CLI_TIMEOUT_MS.apply });
    printDiagnostics(reply.warnings);
    out(reply.unchanged ? `lab ${reply.lab}: unchanged, revision ${reply.revision}` : `lab ${reply.lab}: revision ${reply.revision} applied (${reply.hosts.length} hosts)`);
    return reply;
  } catch (err) {
    if (err instanceof StackbusError && err.code === ErrorCode.InvalidManifest) {
      process.stderr.write(`${pc.red("not applied:")} the current revision stays in force\n`);
    }
    throw err;
  }
}

export function registerLabCommands(program: Command): void {
  const lab = program.command("lab").description("The lab definition: validate a manifest, apply it, show what is applied.");

  lab
    .command("validate")
    .description("Check a lab manifest and every local.conf it references, offline (no bus). Exit 0 when valid, 2 when not.")
    .argument("<file>", "the manifest (YAML)")
    .addHelpText("after", "\nExample:\n  stackbus lab validate lab.yaml")
    .action(
      exitWith(async (file: string) => {
        const v = (await import("@stackbus/lab")).validateLabFile(file);
        printDiagnostics(v.diagnostics);
        if (!v.ok || !v.lab) {
          process.stderr.write(`${pc.red("invalid:")} ${file}: ${v.diagnostics.filter((d) => d.severity === "error").length} error(s)\n`);
          return EXIT.usage;
        }
        process.stdout.write(`${file}: lab ${v.lab.name} is valid (${v.lab.hosts.length} hosts${v.diagnostics.length ? `, ${v.diagnostics.length} warning(s)` : ""})\n`);
        return EXIT.ok;
      }),
    );

  const apply = lab
    .command("apply")
    .description("Validate a manifest and its local.conf files, then store them in the config service as a new revision. Nothing is applied unless all of it is valid.")
    .argument("<file>", "the manifest (YAML)")
    .addHelpText("after", "\nExample:\n  stackbus lab apply lab.yaml --nats nats://controller:4222");
  withBusOptions(apply).action(
    exitWith(async (file: string, flags: BusFlags) => {
      const checked = await checkManifest(file);
      const bus = await connectClient(flags);
      try {
        await applyChecked(bus, checked, (line) => process.stdout.write(`${line}\n`));
        return EXIT.ok;
      } finally {
        await bus.drain();
      }
    }),
  );

  const show = lab
    .command("show")
    .description("Show the applied lab: revision, defaults, and each host's wave, labels and plugins. local.conf contents (which hold passwords) are served only to their host and the coordinator.")
    .option("--host <name>", "only this host")
    .option("--json", "the lab as JSON")
    .addHelpText("after", "\nExamples:\n  stackbus lab show\n  stackbus lab show --host compute1 --json");
  withLabOption(withBusOptions(show)).action(
    exitWith(async (flags: BusFlags & { host?: string; json?: boolean }) => {
      return withLab(flags, async (bus, name) => {
      const shown = await bus.request(subjects.configShow(name), LabShowRequestSchema, {}, LabShowSchema);
      if (flags.host && !shown.hosts.some((h) => h.name === flags.host)) {
        throw new StackbusError(ErrorCode.NotFound, `lab ${name} has no host ${JSON.stringify(flags.host)}; its hosts are ${shown.hosts.map((h) => h.name).join(", ")}`);
      }
      if (flags.json) {
        const out = flags.host ? { ...shown, hosts: shown.hosts.filter((h) => h.name === flags.host) } : shown;
        process.stdout.write(`${JSON.stringify(out)}\n`);
      } else process.stdout.write(`${renderLab(shown, flags.host)}\n`);
      return EXIT.ok;
      });
    }),
  );
}

import { Argument, type Command } from "commander";
import pc from "picocolors";
import {
  HostPlanSchema,
  LabShowRequestSchema,
  LabShowSchema,
  PlanRequestSchema,
  RUN_KINDS,
  subjects,
  toStackbusError,
  type HostPlan,
  type RunKind,
} from "@stackbus/protocol";
import { EXIT, exitWith, parseHostList, withBusOptions, withLabOption, type BusFlags } from "../common.js";
import { CLI_TIMEOUT_MS } from "../timeouts.js";
import { withLab } from "../lab-name.js";

/** Renders one host's plan for people. */
export function renderPlan(plan: HostPlan): string {
  const lines = [pc.bold(`${plan.host}`) + pc.dim(` (lab ${plan.lab} revision ${plan.revision})`)];
  if (plan.runner === "devstack") {
    lines.push(pc.dim(`  DevStack mode: this host's own ${plan.kind}.sh runs, unchanged; DevStack's own work runs between the hooks, and the script pauses at the end of each step`));
  }
  for (const step of plan.steps) {
    lines.push(`  ${pc.cyan(step.label)}${step.errexit ? "" : pc.dim(" (goes on past failures)")}`);
    if (step.entries.length === 0) lines.push(pc.dim("    (nothing)"));
    for (const e of step.entries) {
      const text = `${e.name}${e.args.length ? ` ${e.args.join(" ")}` : ""}${e.note ? pc.dim(`  # ${e.note}`) : ""}`;
      lines.push(`    ${e.active ? "" : pc.dim("(skip) ")}${e.active ? text : pc.dim(text)}`);
    }
  }
  return lines.join("\n");
}

export function registerPlanCommand(program: Command): void {
  const cmd = program
    .command("plan")
    .description("Print, per host and step, the hooks a run would run, in order (extras.d files, plugins, merge groups, hypervisor functions); runs nothing.")
    .addArgument(new Argument("[kind]", "run kind").choices([...RUN_KINDS]).default("stack"))
    .option("--hosts <h1,h2>", "only these hosts")
    .option("--json", "one JSON object per host")
    .addHelpText("after", "\nEach host's agent answers from its own TOP_DIR and local.conf.\n\nExamples:\n  stackbus plan\n  stackbus plan clean --hosts compute1 --json");
  withLabOption(withBusOptions(cmd)).action(
    exitWith(async (kind: RunKind, flags: BusFlags & { hosts?: string; json?: boolean }) => {
      return withLab(flags, async (bus, lab) => {
      const show = await bus.request(subjects.configShow(lab), LabShowRequestSchema, {}, LabShowSchema);
      const wanted = flags.hosts ? new Set(parseHostList(flags.hosts)) : undefined;
      const hosts = show.hosts.filter((h) => !wanted || wanted.has(h.name)).sort((a, b) => a.wave - b.wave || a.name.localeCompare(b.name));
      let failed = false;
      const plans = await Promise.all(
        hosts.map((h) =>
          bus.request(subjects.hostPlan(lab, h.name), PlanRequestSchema, { kind }, HostPlanSchema, { timeoutMs: CLI_TIMEOUT_MS.plan }).catch((err: unknown) => {
            failed = true;
            return { host: h.name, error: toStackbusError(err).message };
          }),
        ),
      );
      for (const p of plans) {
        if ("error" in p) {
          if (flags.json) process.stdout.write(`${JSON.stringify(p)}\n`);
          else process.stdout.write(`${pc.bold(p.host)}\n  ${pc.red("no plan:")} ${p.error}\n`);
        } else process.stdout.write(flags.json ? `${JSON.stringify(p)}\n` : `${renderPlan(p)}\n`);
      }
      return failed ? EXIT.failed : EXIT.ok;
      });
    }),
  );
}

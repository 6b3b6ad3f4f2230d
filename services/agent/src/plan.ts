import { existsSync } from "node:fs";
import { join } from "node:path";
import { parseLocalConf } from "@stackbus/localconf";
import { redactUrl, stepsOf, type HostConfig, type HostPlan, type PlanEntry, type RunKind } from "@stackbus/protocol";
import type { Logger } from "@stackbus/bus";
import { listExtras } from "./hooks.js";
import { openSession, type HostDirs } from "./prepare.js";

/**
 * What a run of `kind` would run on this host, step by step, running no hook: the
 * extras.d files of TOP_DIR, the plugins the localrc registers (and whether their
 * devstack/ files exist yet), the local.conf merge blocks, and the hypervisor plugin.
 * The localrc is sourced in a throwaway session to see ENABLED_SERVICES, VIRT_DRIVER and
 * the enable_plugin lines as they evaluate on this host.
 */
export async function planHost(options: { dirs: HostDirs; config: HostConfig; kind: RunKind; logger: Logger }): Promise<HostPlan> {
  const { dirs, config, kind } = options;
  const scratch = join(dirs.stateDir, "plan");
  const { session } = await openSession({ dirs, config, kind, runId: "plan", runDir: scratch, logger: options.logger, onOutput: () => undefined, writeLocalConf: false });
  let facts: Record<string, string>;
  let plugins: string[][];
  try {
    plugins = await session.listPlugins();
    facts = await session.query(
      [
        `__sb_report nova "$(is_service_enabled nova && echo 1)"`,
        `__sb_report n-cpu "$(is_service_enabled n-cpu && echo 1)"`,
        `__sb_report VIRT_DRIVER "\${VIRT_DRIVER-}"`,
        `__sb_report ENABLED_SERVICES "$ENABLED_SERVICES"`,
      ].join("\n"),
    );
  } finally {
    session.kill("SIGKILL");
  }
  const extras = listExtras(dirs.topDir);
  const blocks = parseLocalConf(config.localConf.map((s) => s.text).join("\n"), "local.conf").blocks;
  const driver = facts["VIRT_DRIVER"] ?? "";
  const hvFile = driver ? join(dirs.topDir, "lib/nova_plugins", `hypervisor-${driver}`) : "";
  const hvLoadable = Boolean(facts["nova"]) && driver !== "" && existsSync(hvFile);
  const hvReason = !driver ? "VIRT_DRIVER is not set" : !facts["nova"] ? "nova is not enabled" : !existsSync(hvFile) ? `no ${hvFile}` : null;

  const steps = stepsOf(kind).map((step) => {
    const entries: PlanEntry[] = [];
    for (const action of step.actions) {
      switch (action.kind) {
        case "localrc": {
          const services = `ENABLED_SERVICES=${facts["ENABLED_SERVICES"] ?? ""}`;
          entries.push({ action: "session", name: dirs.devstackDir ? action.via : "localrc", args: [], active: true, note: dirs.devstackDir ? `DevStack's, which sources the localrc; ${services}` : services });
          break;
        }
        case "devstack":
          if (!dirs.devstackDir) break;
          for (const load of action.load) {
            if ("call" in load) entries.push({ action: "devstack", name: load.call, args: [], active: true, note: null });
            else {
              const present = existsSync(join(dirs.devstackDir, load.source));
              entries.push({ action: "devstack", name: load.source, args: [], active: present, note: present ? null : "not in this DevStack checkout: skipped" });
            }
          }
          break;
        case "extras":
          for (const f of extras) entries.push({ action: "extras", name: `extras.d/${f}`, args: [...action.args], active: true, note: null });
          break;
        case "plugins":
          for (const [name = "", , , dir = ""] of plugins) {
            const file = join(dir, "devstack", action.file);
            const fetched = existsSync(join(dir, "devstack")) || existsSync(dir);
            entries.push({
              action: "plugin",
              name: `${name}/devstack/${action.file}`,
              args: [...action.args],
              active: !fetched || existsSync(file),
              note: !fetched ? "not fetched yet: runs if the plugin has this file" : existsSync(file) ? null : "the plugin has no such file: skipped",
            });
          }
          break;
        case "merge": {
          const mine = blocks.filter((b) => b.group === action.group);
          for (const b of mine) entries.push({ action: "merge", name: `[[${b.group}|${b.spec}]]`, args: [], active: true, note: `local.conf line ${b.line}` });
          break;
        }
        case "hypervisor-load":
          entries.push({ action: "hypervisor", name: driver ? `lib/nova_plugins/hypervisor-${driver}` : "hypervisor plugin", args: [], active: hvLoadable, note: hvReason });
          break;
        case "hypervisor": {
          const enabled = Boolean(facts[action.when]);
          entries.push({ action: "hypervisor", name: action.fn, args: [], active: hvLoadable && enabled, note: !hvLoadable ? hvReason : enabled ? null : `${action.when} is not enabled` });
          break;
        }
        case "verify-disabled-services":
          entries.push({ action: "builtin", name: "verify_disabled_services", args: [], active: true, note: null });
          break;
      }
    }
    if (step.id === "prepare") {
      for (const [name = "", url = "", ref = ""] of plugins) entries.push({ action: "session", name: `fetch ${name}`, args: [redactUrl(url), ref], active: true, note: null });
    }
    return { step: step.id, label: step.label, errexit: step.errexit, entries };
  });
  for (const f of config.finally.filter((x) => x.kinds.includes(kind))) {
    steps.push({ step: "finally", label: "finally", errexit: true, entries: [{ action: "command", name: f.command, args: [], active: true, note: "after every host finished the run" }] });
  }
  return { lab: config.lab, host: config.host, revision: config.revision, kind, runner: "hooks", steps };
}

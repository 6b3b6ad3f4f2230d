import { existsSync } from "node:fs";
import { join } from "node:path";
import { parseLocalConf } from "@stackbus/localconf";
import { redactUrl, stepsOf, type HostConfig, type HostPlan, type PlanEntry, type RunKind } from "@stackbus/protocol";
import { listExtras } from "../hooks.js";
import type { HostDirs } from "../prepare.js";
import { boundaryOf, describeBoundary, SCRIPTS } from "./boundaries.js";

/** What DevStack's own script does in each step, in words (docs/devstack-mode.md has the line ranges). */
const DEVSTACK_WORK: Partial<Record<RunKind, Partial<Record<string, string>>>> = {
  stack: {
    prepare: "stack.sh starts: sanity checks, functions, local.conf's localrc (stackrc); stackbus then places the plugins at their GITDIR",
    override_defaults: "stack.sh: the rest of stackrc, sudoers, DEST, logging, fetch_plugins (the plugins are already there)",
    source: "stack.sh: lib/* sourced",
    "pre-install": "stack.sh: passwords, requirements, package prerequisites, pip, bindep",
    install: "stack.sh: database, rpc, and each service installed and configured (keystone, glance, cinder, neutron, nova, placement, ...)",
    "post-config": "stack.sh: keystone, glance, neutron, cinder, placement and nova initialized",
    extra: "stack.sh: services started, networks, images, flavors; merge [[extra|...]]",
    "test-config": "stack.sh: post-extra merge, discover_hosts, local.sh; then stack.sh runs to its end (merge [[test-config|...]], time_totals)",
  },
  unstack: {
    prepare: "unstack.sh starts: functions, openrc and the localrc",
    override_defaults: "unstack.sh: GetDistro",
    source: "unstack.sh: lib/*, extras.d `source`, plugin settings",
    unstack: "unstack.sh: the services stopped, after the hooks; runs to its end",
  },
  clean: {
    prepare: "clean.sh starts: functions, openrc and the localrc",
    override_defaults: "clean.sh: lib/*, extras.d `source`; then unstack.sh --all starts (a child process)",
    source: "unstack.sh: lib/*, extras.d `source`, plugin settings",
    unstack: "unstack.sh: its unstack phase",
    clean: "unstack.sh stops the services and ends; clean.sh runs its clean phase and removes data and config; runs to its end",
  },
};

/**
 * What a run of `kind` would run on a host in DevStack mode, step by step, running
 * nothing: DevStack's own script between the pause points, and the hooks each phase
 * sources (every extras.d script, the plugins the localrc registers).
 */
export function planDevstackHost(options: { dirs: HostDirs; config: HostConfig; kind: RunKind }): HostPlan {
  const { dirs, config, kind } = options;
  const extras = listExtras(dirs.topDir);
  const plugins = config.plugins.map((p) => p.name);
  const blocks = parseLocalConf(config.localConf.map((s) => s.text).join("\n"), "local.conf").blocks;
  const script = SCRIPTS[kind];
  const steps = stepsOf(kind).map((step) => {
    const entries: PlanEntry[] = [];
    const work = DEVSTACK_WORK[kind]?.[step.id];
    if (work) entries.push({ action: "devstack", name: script, args: [], active: true, note: `DevStack's own ${work}; pauses at ${describeBoundary(boundaryOf(kind, step.id), kind)}` });
    if (step.id === "prepare") {
      entries.push({ action: "session", name: "local.conf", args: [], active: true, note: `written to ${join(dirs.topDir, "local.conf")}, with stackbus's localrc line` });
      for (const p of config.plugins) entries.push({ action: "session", name: `fetch ${p.name}`, args: [redactUrl(p.url), p.ref], active: true, note: "placed at $DEST/" + p.name });
    }
    for (const action of step.actions) {
      if (action.kind === "extras") {
        for (const f of extras) entries.push({ action: "extras", name: `extras.d/${f}`, args: [...action.args], active: true, note: null });
      } else if (action.kind === "plugins") {
        for (const name of plugins) entries.push({ action: "plugin", name: `${name}/devstack/${action.file}`, args: [...action.args], active: true, note: null });
      } else if (action.kind === "merge") {
        for (const b of blocks.filter((x) => x.group === action.group)) entries.push({ action: "merge", name: `[[${b.group}|${b.spec}]]`, args: [], active: true, note: "merged by DevStack itself" });
      }
    }
    return { step: step.id, label: step.label, errexit: step.errexit, entries };
  });
  for (const f of config.finally.filter((x) => x.kinds.includes(kind))) {
    steps.push({ step: "finally", label: "finally", errexit: true, entries: [{ action: "command", name: f.command, args: [], active: existsSync(dirs.topDir), note: "after every host finished the run" }] });
  }
  return { lab: config.lab, host: config.host, revision: config.revision, kind, runner: "devstack", steps };
}

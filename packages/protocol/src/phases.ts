/**
 * The phase model: every step of a `stack`, `unstack` and `clean` run, in order, and
 * what each step does on a host. Defined once; the agent executes it, the coordinator
 * sequences it, `stackbus plan` prints it. See docs/phases.md.
 */

export const RUN_KINDS = ["stack", "unstack", "clean"] as const;
export type RunKind = (typeof RUN_KINDS)[number];

/** local.conf meta-section groups that stack.sh merges, in the order it merges them. */
export const MERGE_GROUPS = ["post-config", "extra", "post-extra", "test-config"] as const;
export type MergeGroup = (typeof MERGE_GROUPS)[number];

/** The `devstack/` files of an external plugin that a step sources. */
export const PLUGIN_FILES = ["override-defaults", "settings", "plugin.sh"] as const;
export type PluginFile = (typeof PLUGIN_FILES)[number];

/** The five functions a hypervisor plugin (`lib/nova_plugins/hypervisor-$VIRT_DRIVER`) defines. */
export const HYPERVISOR_FUNCTIONS = [
  "install_nova_hypervisor",
  "configure_nova_hypervisor",
  "start_nova_hypervisor",
  "stop_nova_hypervisor",
  "cleanup_nova_hypervisor",
] as const;
export type HypervisorFunction = (typeof HYPERVISOR_FUNCTIONS)[number];

/** One thing a step does on a host, in order. */
export type Action =
  /** Source every `$TOP_DIR/extras.d/*.sh`, in lexical order, with `args`. */
  | { kind: "extras"; args: readonly string[] }
  /** For each external plugin in order, source `$DEST/<name>/devstack/<file>` with `args` if it exists. */
  | { kind: "plugins"; file: PluginFile; args: readonly string[] }
  /** Apply every `[[group|file]]` block of the host's local.conf (merge_config_group). */
  | { kind: "merge"; group: MergeGroup }
  /** Source `$TOP_DIR/lib/nova_plugins/hypervisor-$VIRT_DRIVER` when nova is enabled and the file is readable. */
  | { kind: "hypervisor-load" }
  /** Call a hypervisor plugin function when the plugin is loaded and `when` is enabled. */
  | { kind: "hypervisor"; fn: HypervisorFunction; when: "n-cpu" | "nova" }
  /** DevStack's check that no service was enabled after being disabled (`run_phase source`). */
  | { kind: "verify-disabled-services" };

export type StepId =
  | "prepare"
  | "override_defaults"
  | "source"
  | "pre-install"
  | "install"
  | "post-config"
  | "extra"
  | "test-config"
  | "unstack"
  | "clean"
  | "finally";

export const STEP_IDS: readonly StepId[] = [
  "prepare",
  "override_defaults",
  "source",
  "pre-install",
  "install",
  "post-config",
  "extra",
  "test-config",
  "unstack",
  "clean",
  "finally",
];

export interface Step {
  /** Stable id, used in commands, records and `--from`. */
  readonly id: StepId;
  /** The phase as DevStack's scripts name it, e.g. `stack post-config`. */
  readonly label: string;
  /**
   * When true a failing command ends the hook and the step on that host (stack.sh's
   * `set -o errexit`); when false (unstack.sh, clean.sh) every hook runs and failures
   * are reported at the end.
   */
  readonly errexit: boolean;
  readonly actions: readonly Action[];
}

const extras = (...args: string[]): Action => ({ kind: "extras", args });
const plugins = (file: PluginFile, ...args: string[]): Action => ({ kind: "plugins", file, args });
const merge = (group: MergeGroup): Action => ({ kind: "merge", group });
const hypervisor = (fn: HypervisorFunction, when: "n-cpu" | "nova" = "n-cpu"): Action => ({ kind: "hypervisor", fn, when });

const PREPARE: Step = { id: "prepare", label: "prepare", errexit: true, actions: [] };

function overrideDefaults(errexit: boolean): Step {
  return {
    id: "override_defaults",
    label: "override_defaults",
    errexit,
    actions: [extras("override_defaults"), plugins("override-defaults")],
  };
}

function source(errexit: boolean, verify: boolean): Step {
  const actions: Action[] = [{ kind: "hypervisor-load" }, extras("source"), plugins("settings")];
  if (verify) actions.push({ kind: "verify-disabled-services" });
  return { id: "source", label: "source", errexit, actions };
}

function stackStep(id: StepId, sub: string, before: Action[], after: Action[]): Step {
  return {
    id,
    label: `stack ${sub}`,
    errexit: true,
    actions: [...before, extras("stack", sub), plugins("plugin.sh", "stack", sub), ...after],
  };
}

const UNSTACK: Step = {
  id: "unstack",
  label: "unstack",
  errexit: false,
  actions: [extras("unstack"), plugins("plugin.sh", "unstack"), hypervisor("stop_nova_hypervisor")],
};

const CLEAN: Step = {
  id: "clean",
  label: "clean",
  errexit: false,
  actions: [extras("clean"), plugins("plugin.sh", "clean"), hypervisor("cleanup_nova_hypervisor", "nova")],
};

/**
 * The lab's `finally` commands: run on the hosts they name after every host of the run
 * finished the kind's last step (e.g. DevStack's `tools/discover_hosts.sh` on the
 * controller). A run has this step only when the lab gives commands for its kind.
 */
export const FINALLY_STEP: Step = { id: "finally", label: "finally", errexit: true, actions: [] };

/** Every step of each run kind, in the order the coordinator runs them. */
export const PHASE_MODEL: Readonly<Record<RunKind, readonly Step[]>> = {
  stack: [
    PREPARE,
    overrideDefaults(true),
    source(true, true),
    stackStep("pre-install", "pre-install", [], []),
    stackStep(
      "install",
      "install",
      [hypervisor("install_nova_hypervisor"), hypervisor("configure_nova_hypervisor")],
      [],
    ),
    stackStep("post-config", "post-config", [], [merge("post-config")]),
    stackStep("extra", "extra", [hypervisor("start_nova_hypervisor"), merge("extra")], [merge("post-extra")]),
    stackStep("test-config", "test-config", [], [merge("test-config")]),
  ],
  unstack: [PREPARE, overrideDefaults(false), source(false, false), UNSTACK],
  clean: [PREPARE, overrideDefaults(false), source(false, false), UNSTACK, CLEAN],
};

/** The steps of a run kind. */
export function stepsOf(kind: RunKind): readonly Step[] {
  return PHASE_MODEL[kind];
}

/** One step of a run kind (or the `finally` step), or undefined when that kind has no such step. */
export function findStep(kind: RunKind, id: string): Step | undefined {
  if (id === FINALLY_STEP.id) return FINALLY_STEP;
  return PHASE_MODEL[kind].find((s) => s.id === id);
}

/** How an agent runs a host's steps: its own hook session, or the host's DevStack checkout's scripts. */
export const RUNNERS = ["hooks", "devstack"] as const;
export type RunnerKind = (typeof RUNNERS)[number];

/**
 * The steps that rebuild a host's shell state: a new session replays these first, as a
 * new stack.sh would, before continuing with later steps (used by resume).
 */
export const SESSION_STEPS: readonly StepId[] = ["prepare", "override_defaults", "source"];

/** True when `value` is a run kind. */
export function isRunKind(value: unknown): value is RunKind {
  return typeof value === "string" && (RUN_KINDS as readonly string[]).includes(value);
}

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

/**
 * What a DevStack script loads from its own checkout: a file it sources (its path in the
 * checkout), or its call of GetDistro (which sets DISTRO and the os_* variables).
 */
export type DevstackLoad = { readonly source: string } | { readonly call: "GetDistro" };

/** One thing a step does on a host, in order. */
export type Action =
  /**
   * The run's localrc (the `[[local|localrc]]` blocks of local.conf). Without a DevStack
   * checkout the session sources it itself; with `--devstack-dir` it sources the checkout's
   * `via` (stackrc, or openrc, which sources stackrc), which sources the localrc, as the run
   * kind's script does.
   */
  | { kind: "localrc"; via: "stackrc" | "openrc" }
  /**
   * With `--devstack-dir` only: source these files of the DevStack checkout (and call its
   * GetDistro), in order, where the run kind's script does, with TOP_DIR the checkout while
   * they run; a file the checkout lacks (an older branch) is skipped. Nothing without a
   * checkout.
   */
  | { kind: "devstack"; load: readonly DevstackLoad[] }
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

const lib = (...names: string[]): DevstackLoad[] => names.map((name) => ({ source: `lib/${name}` }));
const GET_DISTRO: DevstackLoad = { call: "GetDistro" };

/** stack.sh 607-629: the lib files after `run_phase override_defaults`, before `run_phase source`. */
const STACK_SOURCE_LIBS = lib("apache", "tls", "infra", "libraries", "lvm", "horizon", "keystone", "glance", "nova", "placement", "cinder", "swift", "neutron", "ldap", "dstat", "atop", "tcpdump", "etcd3", "os-vif");
/** unstack.sh: the lib files after its `run_phase override_defaults`, before its extras.d loop. */
const UNSTACK_SOURCE_LIBS = lib("apache", "tls", "infra", "lvm", "horizon", "keystone", "glance", "nova", "placement", "cinder", "swift", "neutron", "ldap", "dstat", "atop", "tcpdump", "etcd3");
/** clean.sh: the lib files right after openrc and GetDistro, before anything else. */
const CLEAN_LIBS = lib("apache", "ldap", "database", "rpc_backend", "tls", "libraries", "lvm", "horizon", "keystone", "glance", "nova", "placement", "cinder", "swift", "neutron");

const devstack = (...load: DevstackLoad[]): Action => ({ kind: "devstack", load });

/**
 * The prepare step: the session opened as the run kind's script starts, up to its first
 * phase. stack.sh: `functions`, `lib/stack`, GetDistro, `stackrc` (the localrc), then
 * `lib/database`, `lib/rpc_backend`, `lib/host` (587-591); unstack.sh: `functions`,
 * `lib/database`, `openrc` (stackrc, the localrc), GetDistro; clean.sh: `functions`,
 * `openrc`, GetDistro, its lib files. It also fetches the plugins (stack.sh 600). A failed
 * prepare ends the run on the host, whatever the kind.
 */
function prepare(kind: RunKind): Step {
  const actions: Record<RunKind, Action[]> = {
    stack: [devstack({ source: "lib/stack" }, GET_DISTRO), { kind: "localrc", via: "stackrc" }, devstack(...lib("database", "rpc_backend", "host"))],
    unstack: [devstack(...lib("database")), { kind: "localrc", via: "openrc" }, devstack(GET_DISTRO)],
    clean: [{ kind: "localrc", via: "openrc" }, devstack(GET_DISTRO, ...CLEAN_LIBS)],
  };
  return { id: "prepare", label: "prepare", errexit: true, actions: actions[kind] };
}

function overrideDefaults(errexit: boolean): Step {
  return {
    id: "override_defaults",
    label: "override_defaults",
    errexit,
    actions: [extras("override_defaults"), plugins("override-defaults")],
  };
}

function source(errexit: boolean, verify: boolean, libs: readonly DevstackLoad[]): Step {
  const actions: Action[] = [devstack(...libs), { kind: "hypervisor-load" }, extras("source"), plugins("settings")];
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
    prepare("stack"),
    overrideDefaults(true),
    source(true, true, STACK_SOURCE_LIBS),
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
  unstack: [prepare("unstack"), overrideDefaults(false), source(false, false, UNSTACK_SOURCE_LIBS), UNSTACK],
  // clean.sh's unstack.sh child sources its own list after override_defaults: the session has
  // what it adds to clean.sh's (each file is sourced once per run).
  clean: [
    prepare("clean"),
    overrideDefaults(false),
    source(false, false, UNSTACK_SOURCE_LIBS.filter((f) => !CLEAN_LIBS.some((c) => sameLoad(c, f)))),
    UNSTACK,
    CLEAN,
  ],
};

function sameLoad(a: DevstackLoad, b: DevstackLoad): boolean {
  return "source" in a ? "source" in b && a.source === b.source : "call" in b && a.call === b.call;
}

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

import { stepsOf, type RunKind, type StepId } from "@stackbus/protocol";

/** The DevStack script a run kind starts. */
export const SCRIPTS: Readonly<Record<RunKind, string>> = { stack: "stack.sh", unstack: "unstack.sh", clean: "clean.sh" };

/** Where a step ends in DevStack's scripts: a pause point, or the script's exit. */
export type Boundary = { script: string; event: "localrc" | "phase" | "settings"; phase?: string } | { exit: true };

/**
 * Where each step of each run kind ends in DevStack's own scripts (see
 * docs/devstack-mode.md). Step k is everything the script does after the end of step
 * k-1 up to here; the last step runs the script to its end.
 *
 * - stack (stack.sh): prepare ends at the end of the localrc (stackrc sources it), each
 *   hook step at the end of its `run_phase`, test-config at stack.sh's exit.
 * - unstack (unstack.sh, which has no `run_phase source`): source ends where it loads the
 *   plugins' settings; unstack runs to the end.
 * - clean (clean.sh, which runs unstack.sh as a child): override_defaults, source and
 *   unstack end in that child, clean runs clean.sh to its end.
 */
const BOUNDARIES: Readonly<Record<RunKind, Partial<Record<StepId, Boundary>>>> = {
  stack: {
    prepare: { script: "stack.sh", event: "localrc" },
    override_defaults: { script: "stack.sh", event: "phase", phase: "override_defaults" },
    source: { script: "stack.sh", event: "phase", phase: "source" },
    "pre-install": { script: "stack.sh", event: "phase", phase: "stack pre-install" },
    install: { script: "stack.sh", event: "phase", phase: "stack install" },
    "post-config": { script: "stack.sh", event: "phase", phase: "stack post-config" },
    extra: { script: "stack.sh", event: "phase", phase: "stack extra" },
    "test-config": { exit: true },
  },
  unstack: {
    prepare: { script: "unstack.sh", event: "localrc" },
    override_defaults: { script: "unstack.sh", event: "phase", phase: "override_defaults" },
    source: { script: "unstack.sh", event: "settings" },
    unstack: { exit: true },
  },
  clean: {
    prepare: { script: "clean.sh", event: "localrc" },
    override_defaults: { script: "unstack.sh", event: "phase", phase: "override_defaults" },
    source: { script: "unstack.sh", event: "settings" },
    unstack: { script: "unstack.sh", event: "phase", phase: "unstack" },
    clean: { exit: true },
  },
};

/** Where `step` of a `kind` run ends. */
export function boundaryOf(kind: RunKind, step: StepId): Boundary {
  return BOUNDARIES[kind][step] ?? { exit: true };
}

/** The phase an event names (`stack install`, `unstack`, ...), from its fields. */
export function eventPhase(event: string, fields: readonly string[]): string | undefined {
  if (event !== "phase") return undefined;
  const [mode = "", sub = ""] = fields;
  return sub ? `${mode} ${sub}` : mode;
}

/** The step of `kind` that a script's event ends, if any. */
export function stepEndedBy(kind: RunKind, script: string, event: string, fields: readonly string[]): StepId | undefined {
  const phase = eventPhase(event, fields);
  for (const step of stepsOf(kind)) {
    const b = boundaryOf(kind, step.id);
    if ("exit" in b) continue;
    if (b.script === script && b.event === event && (b.phase === undefined || b.phase === phase)) return step.id;
  }
  return undefined;
}

/** A description of a boundary for people: `the end of stack install in stack.sh`. */
export function describeBoundary(b: Boundary, kind: RunKind): string {
  if ("exit" in b) return `the end of ${SCRIPTS[kind]}`;
  if (b.event === "localrc") return `the end of the localrc in ${b.script}`;
  if (b.event === "settings") return `the plugins' settings in ${b.script}`;
  return `the end of run_phase ${b.phase ?? ""} in ${b.script}`;
}

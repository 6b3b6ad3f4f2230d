import { readdirSync, statSync, type Dirent } from "node:fs";
import { join } from "node:path";
import type { Action } from "@stackbus/protocol";
import type { HookSpec } from "./session.js";

/** An external plugin as the session knows it after prepare. */
export interface InstalledPlugin {
  name: string;
  url: string;
  ref: string;
  /** Its checkout: `GITDIR[name]`, i.e. `$DEST/<name>` as DEST was when enable_plugin ran. */
  dir: string;
  commit: string;
}

/**
 * The extras.d dispatch scripts of a TOP_DIR: every `*.sh` file in `extras.d/`, in byte
 * order of their names (the two-digit prefixes give the order), as stack.sh's glob does
 * under the C locale.
 */
export function listExtras(topDir: string): string[] {
  let entries: Dirent[];
  try {
    entries = readdirSync(join(topDir, "extras.d"), { withFileTypes: true });
  } catch {
    return [];
  }
  return entries
    .filter((e) => e.name.endsWith(".sh") && (e.isFile() || (e.isSymbolicLink() && isFile(join(topDir, "extras.d", e.name)))))
    .map((e) => e.name)
    .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Where an action's hooks are: the host's TOP_DIR and plugins, the DevStack checkout, the run's localrc. */
export interface HookPlaces {
  topDir: string;
  plugins: readonly InstalledPlugin[];
  /**
   * With --devstack-dir: the checkout, and the run's directory of links to it whose
   * `.localrc.auto` is the run's localrc (stackrc and openrc are sourced from there, so
   * stackrc's RC_DIR is that directory and it sources the run's localrc).
   */
  devstack?: { dir: string; rcDir: string } | undefined;
  /** The run's localrc file (what the prepare step's localrc action sources without a checkout). */
  localrc?: string;
}

/**
 * The hooks an action runs, in order. Merges are not hooks (the agent applies them
 * itself) and return an empty list; so do DevStack's files without a checkout.
 */
export function hooksFor(action: Action, places: HookPlaces): HookSpec[] {
  const { topDir, plugins, devstack } = places;
  switch (action.kind) {
    case "localrc":
      if (devstack) return [{ name: action.via, kind: "devstack", target: join(devstack.rcDir, action.via), args: [] }];
      return places.localrc ? [{ name: "localrc", kind: "noargs", target: places.localrc, args: [] }] : [];
    case "devstack":
      if (!devstack) return [];
      return action.load.map((l) =>
        "source" in l
          ? { name: l.source, kind: "devstack", target: join(devstack.dir, l.source), args: [] }
          : { name: l.call, kind: "call", target: "__sb_devstack_distro", args: [] },
      );
    case "extras":
      return listExtras(topDir).map((file) => ({
        name: `extras.d/${file}`,
        kind: "source",
        target: join(topDir, "extras.d", file),
        args: action.args,
      }));
    case "plugins":
      return plugins.map((p) => ({
        name: `${p.name}/devstack/${action.file}`,
        kind: action.file === "plugin.sh" ? "source" : "noargs",
        target: join(p.dir, "devstack", action.file),
        args: action.args,
      }));
    case "hypervisor-load":
      return [{ name: "lib/nova_plugins/hypervisor-$VIRT_DRIVER", kind: "hv-load", target: "", args: [] }];
    case "hypervisor":
      return [{ name: action.fn, kind: "hv-call", target: action.fn, args: [action.when] }];
    case "verify-disabled-services":
      return [{ name: "verify_disabled_services", kind: "call", target: "verify_disabled_services", args: [] }];
    case "merge":
      return [];
  }
}

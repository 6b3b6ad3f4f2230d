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

/**
 * The hooks an action runs, in order. Merges are not hooks (the agent applies them
 * itself) and return an empty list.
 */
export function hooksFor(action: Action, topDir: string, plugins: readonly InstalledPlugin[]): HookSpec[] {
  switch (action.kind) {
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

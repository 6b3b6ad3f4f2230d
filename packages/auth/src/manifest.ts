import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { readLabHosts } from "@stackbus/lab";
import { ErrorCode, StackbusError } from "@stackbus/protocol";
import { generateAuth, writeAuth, type AuthMode, type AuthOptions, type GeneratedAuth } from "./generate.js";
import { agentRole, SERVICE_ROLES, type Role } from "./roles.js";

/** What `--update` did to the identities of an earlier output. */
export interface AuthUpdate {
  /** Roles whose identity was kept (installed copies keep working). */
  kept: Role[];
  /** Roles given a new identity (new hosts). */
  added: Role[];
  /** Roles of hosts no longer in the lab: their files were removed and the server no longer knows them. */
  removed: Role[];
}

/** The secret of one role in an earlier output: its nkey seed, or its password. */
function secretIn(outDir: string, role: Role, mode: AuthMode): string | undefined {
  if (mode === "nkey") {
    const file = join(outDir, `${role}.nk`);
    return existsSync(file) ? readFileSync(file, "utf8").trim() : undefined;
  }
  const file = join(outDir, `${role}.env`);
  if (!existsSync(file)) return undefined;
  return /^STACKBUS_NATS_PASSWORD=(.*)$/m.exec(readFileSync(file, "utf8"))?.[1];
}

/** Reads an earlier output: its mode (from its files), every role's secret, the routes' password. */
function readEarlier(outDir: string, mode: AuthMode): { existing: Partial<Record<Role, string>>; roles: Role[]; routePassword?: string; signingSeed?: string } {
  const server = join(outDir, "server.conf");
  if (!existsSync(server)) throw new StackbusError(ErrorCode.NotFound, `--update: ${outDir} holds no earlier output (no server.conf): run auth gen without --update first`, { path: outDir });
  const text = readFileSync(server, "utf8");
  const earlierMode: AuthMode = /\bnkey: "/.test(text) ? "nkey" : "password";
  if (earlierMode !== mode) {
    throw new StackbusError(ErrorCode.InvalidArgument, `--update: ${outDir} holds ${earlierMode} identities, not ${mode}: give --mode ${earlierMode}`, { value: mode });
  }
  const roles = [...text.matchAll(/^ {4}# (\S+)$/gm)].map((m) => m[1] as Role);
  const existing: Partial<Record<Role, string>> = {};
  for (const role of roles) {
    const secret = secretIn(outDir, role, mode);
    if (secret) existing[role] = secret;
  }
  const node = join(outDir, "cluster", "node-1.conf");
  const routePassword = existsSync(node) ? /cluster \{[\s\S]*?password: "([^"]+)"/.exec(readFileSync(node, "utf8"))?.[1] : undefined;
  const signing = join(outDir, "coordinator-sign.nk");
  const signingSeed = existsSync(signing) ? readFileSync(signing, "utf8").trim() : undefined;
  return { existing, roles, ...(routePassword ? { routePassword } : {}), ...(signingSeed ? { signingSeed } : {}) };
}

/**
 * `stackbus auth gen --lab FILE --out DIR`: reads the lab and its hosts from the manifest,
 * generates the identities and configs, and writes them under `outDir`. With `update`, the
 * identities of the earlier output in `outDir` are kept: only hosts new to the lab get new
 * ones, hosts no longer in it lose theirs, and the server configs are written again.
 */
export async function authGenFromManifestFile(
  path: string,
  outDir: string,
  options: Omit<AuthOptions, "lab" | "hosts" | "existing" | "routePassword" | "signingSeed"> & { overwrite?: boolean; update?: boolean },
): Promise<{ generated: GeneratedAuth; written: string[]; update?: AuthUpdate }> {
  const { lab, hosts } = readLabHosts(path);
  const { overwrite, update, ...rest } = options;
  if (!update) {
    const generated = await generateAuth({ ...rest, lab, hosts });
    return { generated, written: writeAuth(outDir, generated, { overwrite: overwrite ?? false }) };
  }
  const earlier = readEarlier(outDir, options.mode);
  const generated = await generateAuth({ ...rest, lab, hosts, existing: earlier.existing, routePassword: earlier.routePassword, signingSeed: earlier.signingSeed });
  const now = new Set<Role>([...SERVICE_ROLES, ...hosts.map(agentRole)]);
  const removed = earlier.roles.filter((r) => !now.has(r));
  for (const role of removed) {
    for (const file of [`${role}.nk`, `${role}.env`, `env/${role}.env`]) rmSync(join(outDir, file), { force: true });
  }
  const written = writeAuth(outDir, generated, { overwrite: true });
  const kept = [...now].filter((r) => earlier.existing[r] !== undefined);
  const added = [...now].filter((r) => earlier.existing[r] === undefined);
  return { generated, written, update: { kept, added, removed } };
}

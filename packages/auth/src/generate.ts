import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, writeFileSync, chmodSync } from "node:fs";
import { dirname, join } from "node:path";
import bcrypt from "bcryptjs";
import { createUser, fromSeed } from "@nats-io/nkeys";
import { ErrorCode, StackbusError, inboxPrefix, validateName } from "@stackbus/protocol";
import { authorizationBlock, q, tlsBlock, type ConfUser, type ServerTls } from "./conf.js";
import { agentRole, checkHosts, rolePermissions, SERVICE_ROLES, type Role, type RolePermissions } from "./roles.js";

/** How identities prove who they are: nkey seeds (no secret on the server) or passwords (bcrypt-hashed there). */
export type AuthMode = "nkey" | "password";

export interface AuthOptions {
  lab: string;
  /** Every host of the lab; each gets its own agent identity. */
  hosts: readonly string[];
  mode: AuthMode;
  /** Serve TLS with a private CA; clients get `STACKBUS_TLS_CA`. */
  tls?: ServerTls | undefined;
  /** What the environment files put in `NATS_URL` (a list for a cluster). @default "nats://127.0.0.1:4222" */
  servers?: string | readonly string[] | undefined;
  /** What the environment files put in `STACKBUS_REPLICAS` (3 on the cluster). @default 1 */
  replicas?: number | undefined;
  /** Where the credential files are installed on each host, as the environment files name them. @default "/etc/stackbus" */
  installDir?: string | undefined;
  /** Client listen address of the servers. @default "0.0.0.0:4222" */
  listen?: string | undefined;
  /** JetStream store directory of the servers. @default "/var/lib/nats" */
  storeDir?: string | undefined;
  /** Host names of the three cluster nodes, as the routes name them. @default ["nats-1", "nats-2", "nats-3"] */
  clusterHosts?: readonly [string, string, string] | undefined;
  /** Route port of the cluster nodes. @default 6222 */
  clusterPort?: number | undefined;
  /** bcrypt cost of password hashes (password mode). @default 11 */
  bcryptCost?: number | undefined;
  /** Listen address of the servers' HTTP monitoring port (`/healthz`, `/jsz`); none when absent. */
  http?: string | undefined;
  /**
   * Identities to keep, by role: the nkey seed or the password of an earlier output. A lab
   * that gains a host keeps every installed identity working; only the new host's is new.
   */
  existing?: Partial<Record<Role, string>> | undefined;
  /** The cluster routes' password to keep (an earlier output's). */
  routePassword?: string | undefined;
  /** The coordinator's command-signing seed to keep (an earlier output's `coordinator-sign.nk`): agents installed from it go on accepting its commands. */
  signingSeed?: string | undefined;
  /**
   * Where the operator's and the watcher's files are used from (they stay where they are
   * written, on a workstation): their env files name their credential there, not in `installDir`.
   */
  localDir?: string | undefined;
}

/** One generated identity, with its secret; files named relative to the output directory. */
export interface GeneratedUser {
  role: Role;
  /** The name the server knows: the role (password mode) or the nkey public key. */
  user: string;
  mode: AuthMode;
  /** The nkey seed or the password. */
  secret: string;
  /** Reply inboxes of this identity: `_INBOX.<user>`; only it may subscribe below it. */
  inboxPrefix: string;
  permissions: RolePermissions;
  /** `<role>.nk` (nkey seed) or `<role>.env` (user and password). */
  credentialFile: string;
  /** `env/<role>.env`: everything a systemd unit or a shell needs to run as this identity. */
  envFile: string;
}

export interface GeneratedAuth {
  lab: string;
  hosts: string[];
  mode: AuthMode;
  /** Relative path -> content: `server.conf`, `cluster/node-{1,2,3}.conf`, credential and env files, `README.md`. */
  files: Record<string, string>;
  users: GeneratedUser[];
}

/** Files that hold a secret and must be readable by their owner only. */
export function isSecretFile(path: string): boolean {
  return path.endsWith(".nk") || path.endsWith(".env") || path.endsWith(".conf");
}

const SAFE_VALUE = /^[^"'\\$`\s]*$/;

function envValue(key: string, value: string): string {
  if (!SAFE_VALUE.test(value)) {
    throw new StackbusError(ErrorCode.InvalidArgument, `${key} value ${JSON.stringify(value)} may not contain quotes, "$", "\\", backticks or white space`, { key });
  }
  return `${key}=${value}`;
}

function secretPassword(): string {
  return randomBytes(24).toString("base64url");
}

/**
 * Generates a lab's NATS identities, their per-role permissions and the server configs that
 * enforce them: `server.conf` (one node), `cluster/node-{1,2,3}.conf` (3-node JetStream
 * cluster, same users), a credential file and an environment file per identity.
 */
export async function generateAuth(options: AuthOptions): Promise<GeneratedAuth> {
  const lab = validateName("lab", options.lab);
  const hosts = checkHosts(options.hosts);
  const mode = options.mode;
  if (mode !== "nkey" && mode !== "password") {
    throw new StackbusError(ErrorCode.InvalidArgument, `auth mode must be "nkey" or "password", not ${JSON.stringify(mode)}`);
  }
  const replicas = options.replicas ?? 1;
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5) {
    throw new StackbusError(ErrorCode.InvalidArgument, `replicas must be an integer from 1 to 5, not ${String(replicas)}`);
  }
  const installDir = options.installDir ?? "/etc/stackbus";
  const servers = typeof options.servers === "string" ? options.servers : (options.servers ?? ["nats://127.0.0.1:4222"]).join(",");
  const cost = options.bcryptCost ?? 11;

  const roles: Role[] = [...SERVICE_ROLES, ...hosts.map(agentRole)];
  const identities = await makeIdentities(roles, mode, cost, options.existing);
  const inboxOf = (role: Role) => inboxPrefix(identities.get(role)?.user ?? role);
  const permissions = rolePermissions(lab, hosts, inboxOf);

  const confUsers: ConfUser[] = roles.map((role) => {
    const id = identities.get(role);
    const perms = permissions.get(role);
    if (!id || !perms) throw new StackbusError(ErrorCode.Internal, `no identity generated for ${role}`);
    return id.nkey !== undefined
      ? { role, nkey: id.nkey, permissions: perms }
      : { role, user: id.user, passwordHash: id.hash ?? "", permissions: perms };
  });
  const files: Record<string, string> = serverConfigs(lab, mode, options, authorizationBlock(confUsers));

  // The coordinator signs every phase command and cancel with its own key; each agent
  // accepts only those (a message delivered to its subjects any other way is refused).
  const signing = options.signingSeed ? fromSeed(new TextEncoder().encode(options.signingSeed.trim())) : createUser();
  const signingSeed = new TextDecoder().decode(signing.getSeed());
  files["coordinator-sign.nk"] = `${signingSeed}\n`;
  const users: GeneratedUser[] = [];
  for (const role of roles) {
    const id = identities.get(role);
    const perms = permissions.get(role);
    if (!id || !perms) throw new StackbusError(ErrorCode.Internal, `no identity generated for ${role}`);
    const credentialFile = mode === "nkey" ? `${role}.nk` : `${role}.env`;
    const envFile = `env/${role}.env`;
    const where = options.localDir !== undefined && (role === "operator" || role === "watcher") ? options.localDir : installDir;
    const credentialLines =
      mode === "nkey"
        ? [envValue("STACKBUS_NATS_NKEY", join(where, credentialFile))]
        : [envValue("STACKBUS_NATS_USER", id.user), envValue("STACKBUS_NATS_PASSWORD", id.secret)];
    files[credentialFile] = mode === "nkey" ? `${id.secret}\n` : `# NATS identity ${role} of lab ${lab}\n${credentialLines.join("\n")}\n`;
    const env = [
      `# Environment of stackbus identity ${role} in lab ${lab} (for systemd EnvironmentFile= or \`set -a; . FILE\`).`,
      envValue("NATS_URL", servers),
      ...credentialLines,
      envValue("STACKBUS_LAB", lab),
      envValue("STACKBUS_REPLICAS", String(replicas)),
    ];
    if (options.tls) env.push(envValue("STACKBUS_TLS_CA", options.tls.ca));
    if (options.tls?.verifyClients) {
      env.push(envValue("STACKBUS_TLS_CERT", join(installDir, `${role}.crt`)), envValue("STACKBUS_TLS_KEY", join(installDir, `${role}.key`)));
    }
    if (role === "coordinator") env.push(envValue("STACKBUS_SIGNING_KEY", join(installDir, "coordinator-sign.nk")));
    if (role.startsWith("agent-")) env.push(envValue("STACKBUS_COORDINATOR_KEY", signing.getPublicKey()));
    if (role.startsWith("agent-")) {
      env.push(
        "# Where DevStack lives on this host (defaults shown):",
        "#STACKBUS_TOP_DIR=/opt/stack/devstack",
        "#STACKBUS_DEST=/opt/stack",
        "#STACKBUS_STATE_DIR=/var/lib/stackbus/agent",
      );
    }
    files[envFile] = `${env.join("\n")}\n`;
    users.push({ role, user: id.user, mode, secret: id.secret, inboxPrefix: inboxOf(role), permissions: perms, credentialFile, envFile });
  }

  files["README.md"] = readme(lab, hosts, mode, installDir, Boolean(options.tls?.verifyClients));
  return { lab, hosts, mode, files, users };
}

type Identity = { user: string; secret: string; hash?: string; nkey?: string };

/** Each role's identity: a kept one (its seed or password from an earlier output) or a new one. */
async function makeIdentities(roles: Role[], mode: AuthMode, cost: number, existing: AuthOptions["existing"]): Promise<Map<Role, Identity>> {
  const identities = new Map<Role, Identity>();
  for (const role of roles) {
    const kept = existing?.[role];
    if (mode === "nkey") {
      const pair = kept ? fromSeed(new TextEncoder().encode(kept.trim())) : createUser();
      const user = pair.getPublicKey();
      identities.set(role, { user, nkey: user, secret: new TextDecoder().decode(pair.getSeed()) });
    } else {
      const secret = kept ?? secretPassword();
      identities.set(role, { user: role, secret, hash: await bcrypt.hash(secret, cost) });
    }
  }
  return identities;
}

/** `server.conf` and the cluster nodes' configs, each with the same users. */
function serverConfigs(lab: string, mode: AuthMode, options: AuthOptions, authorization: string): Record<string, string> {
  const files: Record<string, string> = {};
  const header = (what: string) =>
    `# ${what} for stackbus lab ${q(lab)}.\n# Generated by \`stackbus auth gen\` (${mode} identities); regenerate rather than edit the users.\n`;
  const listen = options.listen ?? "0.0.0.0:4222";
  const storeDir = options.storeDir ?? "/var/lib/nats";
  const tls = options.tls ? `\n${tlsBlock(options.tls)}\n` : "";
  const http = options.http !== undefined ? `http: ${q(options.http)}` : "";
  files["server.conf"] = [
    header("NATS server (single node)"),
    `server_name: ${q(`stackbus-${lab}`)}`,
    `listen: ${q(listen)}`,
    http,
    `jetstream {\n  store_dir: ${q(storeDir)}\n}`,
    tls,
    authorization,
    "",
  ].join("\n");

  const clusterHosts = options.clusterHosts ?? ["nats-1", "nats-2", "nats-3"];
  const clusterPort = options.clusterPort ?? 6222;
  const routePassword = options.routePassword ?? secretPassword();
  const routes = clusterHosts.map((h) => `nats-route://route:${routePassword}@${h}:${clusterPort}`);
  clusterHosts.forEach((_, i) => {
    files[`cluster/node-${i + 1}.conf`] = [
      header(`NATS server, node ${i + 1} of the 3-node JetStream cluster,`),
      `server_name: ${q(`stackbus-${lab}-${i + 1}`)}`,
      `listen: ${q(listen)}`,
      http,
      `jetstream {\n  store_dir: ${q(storeDir)}\n}`,
      `cluster {\n  name: ${q(`stackbus-${lab}`)}\n  listen: ${q(`0.0.0.0:${clusterPort}`)}\n  authorization {\n    user: "route"\n    password: ${q(routePassword)}\n  }\n  routes: [\n${routes.map((r) => `    ${q(r)}`).join("\n")}\n  ]\n}`,
      tls,
      authorization,
      "",
    ].join("\n");
  });
  return files;
}

function readme(lab: string, hosts: string[], mode: AuthMode, installDir: string, mtls: boolean): string {
  const cred = (role: string) => (mode === "nkey" ? `${role}.nk` : `${role}.env`);
  const lines = [
    `# NATS identities of lab ${lab}`,
    "",
    "Every file here is a secret: keep it mode 0600 and copy each only where it is used.",
    "",
    "| file | goes to |",
    "| --- | --- |",
    "| `server.conf` | the NATS server (single node), e.g. `/etc/nats-server.conf` |",
    "| `cluster/node-N.conf` | NATS cluster node N (instead of `server.conf`) |",
    ...["coordinator", "config", "fetcher"].map(
      (r) => `| \`${cred(r)}\`, \`env/${r}.env\` | the controller, ${installDir}/ (unit stackbus-${r}) |`,
    ),
    `| \`coordinator-sign.nk\` | the controller, ${installDir}/ (the coordinator signs phase commands with it; each agent's env file holds its public key) |`,
    `| \`${cred("operator")}\`, \`env/operator.env\` | whoever applies labs and starts runs |`,
    `| \`${cred("watcher")}\`, \`env/watcher.env\` | whoever only watches runs (read-only) |`,
    ...hosts.map((h) => `| \`${cred(`agent-${h}`)}\`, \`env/agent-${h}.env\` | host ${h}, ${installDir}/ (unit stackbus-agent@${h}) |`),
    "",
    mtls ? `Mutual TLS: give each identity a client certificate as ${installDir}/ROLE.crt and ROLE.key, signed by the CA.\n` : "",
  ];
  return lines.join("\n");
}

/**
 * Writes generated files under `outDir`, each readable by its owner only (0600, directories
 * 0700). Refuses to replace existing files unless `overwrite`, since that would lock out every
 * identity already installed.
 */
export function writeAuth(outDir: string, generated: GeneratedAuth, options: { overwrite?: boolean } = {}): string[] {
  const paths = Object.keys(generated.files).sort();
  if (!options.overwrite) {
    const existing = paths.filter((p) => existsSync(join(outDir, p)));
    if (existing.length > 0) {
      throw new StackbusError(
        ErrorCode.Conflict,
        `${join(outDir, existing[0] ?? "")} already exists: writing new identities would lock out the installed ones (use --force to replace them)`,
        { outDir, existing },
      );
    }
  }
  const written: string[] = [];
  for (const rel of paths) {
    const path = join(outDir, rel);
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    writeFileSync(path, generated.files[rel] ?? "", { mode: isSecretFile(rel) ? 0o600 : 0o644 });
    chmodSync(path, isSecretFile(rel) ? 0o600 : 0o644);
    written.push(path);
  }
  return written;
}

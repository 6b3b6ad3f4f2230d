import type { RolePermissions, SubjectRules } from "./roles.js";

/** A string as nats-server's config parser reads it back unchanged (JSON string syntax). */
export function q(value: string): string {
  return JSON.stringify(value);
}

function list(values: readonly string[], indent: string): string {
  if (values.length === 0) return "[]";
  return `[\n${values.map((v) => `${indent}  ${q(v)}`).join(",\n")}\n${indent}]`;
}

function rules(name: string, r: SubjectRules, indent: string): string {
  const inner = `${indent}  `;
  const parts = [`${inner}allow: ${list(r.allow, inner)}`];
  if (r.deny.length > 0) parts.push(`${inner}deny: ${list(r.deny, inner)}`);
  return `${indent}${name}: {\n${parts.join("\n")}\n${indent}}`;
}

/** One user's `permissions` block. */
export function permissionsBlock(p: RolePermissions, indent: string): string {
  const inner = `${indent}  `;
  const lines = [rules("publish", p.publish, inner), rules("subscribe", p.subscribe, inner)];
  if (p.allowResponses) lines.push(`${inner}allow_responses: true`);
  return `permissions: {\n${lines.join("\n")}\n${indent}}`;
}

/** A user entry of the authorization block: an nkey, or a user with a bcrypt password hash. */
export interface ConfUser {
  role: string;
  nkey?: string;
  user?: string;
  passwordHash?: string;
  permissions: RolePermissions;
}

/** The `authorization { users: [...] }` block every server of the lab carries. */
export function authorizationBlock(users: readonly ConfUser[]): string {
  const entries = users.map((u) => {
    const who = u.nkey !== undefined ? `nkey: ${q(u.nkey)}` : `user: ${q(u.user ?? "")}, password: ${q(u.passwordHash ?? "")}`;
    return `    # ${u.role}\n    {\n      ${who}\n      ${permissionsBlock(u.permissions, "      ")}\n    }`;
  });
  return `authorization {\n  users: [\n${entries.join("\n")}\n  ]\n}`;
}

/** Server-side TLS settings; paths are as on the NATS server host. */
export interface ServerTls {
  /** CA certificate (PEM) the clients' certificates are checked against, and that clients trust. */
  ca: string;
  /** The server's certificate (PEM), valid for the names clients connect to. */
  cert: string;
  /** The server's private key (PEM). */
  key: string;
  /** Require client certificates signed by `ca` (mutual TLS). @default false */
  verifyClients?: boolean | undefined;
}

export function tlsBlock(tls: ServerTls): string {
  const lines = [`  cert_file: ${q(tls.cert)}`, `  key_file: ${q(tls.key)}`, `  ca_file: ${q(tls.ca)}`, "  timeout: 2"];
  if (tls.verifyClients) lines.push("  verify: true");
  return `tls {\n${lines.join("\n")}\n}`;
}

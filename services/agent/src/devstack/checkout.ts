import { chownSync, existsSync, lchownSync, lstatSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import type { HostConfig, RunKind } from "@stackbus/protocol";
import { asUser, type RunAs } from "./user.js";

/**
 * The line stackbus adds to the localrc: it sources the pause points when the agent
 * started the script, and does nothing otherwise.
 */
export const LOCALRC_LINE = 'if [[ -n ${STACKBUS_DEVSTACK_HOOK:-} ]]; then source "$STACKBUS_DEVSTACK_HOOK"; fi';
const LOCALRC_BLOCK = `[[local|localrc]]\n# Added by stackbus (DevStack mode): pauses this script between phases when the stackbus agent runs it; does nothing otherwise.\n${LOCALRC_LINE}\n`;

/** The files of a DevStack checkout the devstack runner needs, readable by DevStack's user. */
export const CHECKOUT_FILES = ["stack.sh", "unstack.sh", "clean.sh", "functions", "stackrc"] as const;

/**
 * What is missing for DevStack mode on this host: the checkout's scripts readable by
 * DevStack's user, password-less sudo for it, no old-style `localrc` file (stackrc
 * would read it instead of local.conf's localrc). An empty list: ready.
 */
export async function checkoutProblems(topDir: string, runAs: RunAs): Promise<string[]> {
  if (!existsSync(topDir)) return [`TOP_DIR ${topDir} does not exist: clone DevStack there (git clone https://opendev.org/openstack/devstack ${topDir})`];
  if (!lstatSync(topDir).isDirectory()) return [`TOP_DIR ${topDir} is not a directory`];
  const script = [
    `cd ${quote(topDir)} || { echo "cd:"; exit 0; }`,
    `for f in ${CHECKOUT_FILES.join(" ")}; do [[ -r $f ]] || echo "unreadable:$f"; done`,
    `[[ -e localrc ]] && echo "localrc:"`,
    `sudo -n true >/dev/null 2>&1 || echo "sudo:"`,
    "exit 0",
  ].join("\n");
  const { file, args, env } = asUser(runAs, {}, ["bash", "-c", script]);
  const out = await execa(file, args, { reject: false, stdin: "ignore", ...(env ? { env } : {}) });
  if (out.exitCode !== 0) return [`cannot run a shell as ${runAs.user} (${out.stderr.trim() || `exit status ${out.exitCode}`})${runAs.sudo ? ": does root's sudo work on this host?" : ""}`];
  const problems: string[] = [];
  for (const line of out.stdout.split("\n")) {
    const [what, arg] = line.split(":");
    if (what === "cd") problems.push(`${runAs.user} cannot enter TOP_DIR ${topDir}`);
    if (what === "unreadable") problems.push(`${join(topDir, arg ?? "")} is missing or not readable by ${runAs.user}`);
    if (what === "localrc") problems.push(`${join(topDir, "localrc")} exists: stackrc would read it instead of the localrc section of the lab's local.conf; remove it`);
    if (what === "sudo") problems.push(`${runAs.user} cannot sudo without a password, which DevStack needs (add "${runAs.user} ALL=(ALL) NOPASSWD: ALL" to /etc/sudoers.d/${runAs.user})`);
  }
  return problems;
}

/** The host's local.conf as the lab gives it, with stackbus's localrc block at the end. */
export function localConfText(config: HostConfig): string {
  const lab = config.localConf.map((s) => (s.text.endsWith("\n") ? s.text : `${s.text}\n`)).join("");
  return `${lab}\n${LOCALRC_BLOCK}`;
}

/** Writes a file DevStack's user owns, readable by it alone. */
export function writeOwned(path: string, text: string, runAs: RunAs, mode = 0o600): void {
  writeFileSync(path, text, { mode });
  if (runAs.sudo) chownSync(path, runAs.uid, runAs.gid);
}

/**
 * unstack.sh and clean.sh read `.localrc.auto`, which only stack.sh writes (from
 * local.conf, at its start) and clean.sh deletes. For their pause points it must hold
 * stackbus's line: when it is missing (after clean.sh, or on a host never stacked) it
 * is written from local.conf as stack.sh's extract_localrc_section would; when it lacks
 * the line (stacked by hand) the line is appended, keeping what the last stack.sh used.
 * Returns what was done, for the step's warnings, or undefined when nothing was needed.
 */
export function ensureLocalrcAuto(topDir: string, kind: RunKind, config: HostConfig, runAs: RunAs): string | undefined {
  if (kind === "stack") return undefined;
  const file = join(topDir, ".localrc.auto");
  let text: string | undefined;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    text = undefined;
  }
  if (text === undefined) {
    writeOwned(file, `# Generated file, do not edit\n${config.localrc}${config.localrc.endsWith("\n") ? "" : "\n"}${LOCALRC_BLOCK.split("\n").slice(1).join("\n")}`, runAs);
    return `${file} was missing (DevStack's clean.sh removes it): written from the lab's local.conf, as stack.sh does`;
  }
  if (text.includes(LOCALRC_LINE)) return undefined;
  writeOwned(file, `${text}${text.endsWith("\n") ? "" : "\n"}${LOCALRC_LINE}\n`, runAs);
  return `${file} was written by a stack.sh stackbus did not run: stackbus's pause line was appended to it`;
}

/** Hands a tree to DevStack's user (plugins stackbus placed in DEST). */
export function chownTree(path: string, runAs: RunAs): void {
  if (!runAs.sudo) return;
  const walk = (p: string) => {
    const st = lstatSync(p);
    lchownSync(p, runAs.uid, runAs.gid);
    if (st.isDirectory()) for (const e of readdirSync(p)) walk(join(p, e));
  };
  walk(path);
}

function quote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

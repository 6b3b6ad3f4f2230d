import { readFile, stat } from "node:fs/promises";
import { isAbsolute, join, resolve } from "node:path";

/** What is at a plugin's directory: nothing, a git checkout at a commit, or something else. */
export type CheckoutState =
  | { kind: "absent" }
  | { kind: "checkout"; commit: string }
  | { kind: "other" };

const SHA = /^[0-9a-f]{40}$/;

/**
 * Reads the commit a checkout is at from its `.git/HEAD`: a detached sha (how installed
 * plugins are left), or a branch followed through its loose or packed ref. A directory
 * whose HEAD cannot be read is `other`.
 */
export async function readCheckout(dir: string): Promise<CheckoutState> {
  const exists = await stat(dir).then(
    () => true,
    () => false,
  );
  if (!exists) return { kind: "absent" };
  try {
    const gitdir = await gitDirOf(dir);
    const commit = await resolveHead(gitdir);
    return commit === undefined ? { kind: "other" } : { kind: "checkout", commit };
  } catch {
    return { kind: "other" };
  }
}

async function gitDirOf(dir: string): Promise<string> {
  const dotGit = join(dir, ".git");
  const info = await stat(dotGit);
  if (info.isDirectory()) return dotGit;
  const pointer = /^gitdir:\s*(.+)$/m.exec(await readFile(dotGit, "utf8"));
  if (!pointer) throw new Error(`${dotGit} is neither a directory nor a gitdir pointer`);
  const target = (pointer[1] as string).trim();
  return isAbsolute(target) ? target : resolve(dir, target);
}

async function resolveHead(gitdir: string): Promise<string | undefined> {
  let value = (await readFile(join(gitdir, "HEAD"), "utf8")).trim();
  for (let depth = 0; depth < 5; depth++) {
    if (SHA.test(value)) return value;
    const ref = /^ref:\s*(refs\/\S+)$/.exec(value)?.[1];
    if (!ref || ref.split("/").includes("..")) return undefined;
    const loose = await readFile(join(gitdir, ref), "utf8").then(
      (text) => text.trim(),
      () => undefined,
    );
    value = loose ?? (await packedRef(gitdir, ref)) ?? "";
  }
  return undefined;
}

async function packedRef(gitdir: string, ref: string): Promise<string | undefined> {
  const text = await readFile(join(gitdir, "packed-refs"), "utf8").catch(() => "");
  for (const line of text.split("\n")) {
    const [sha, name] = line.trim().split(" ");
    if (name === ref && sha && SHA.test(sha)) return sha;
  }
  return undefined;
}

import { execFile } from "node:child_process";
import { chmodSync, cpSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** A file to put in a repository: its text, or content and mode. */
export type RepoFile = string | { content: string | Buffer; mode?: number };

export interface CommitOptions {
  branch?: string;
  message?: string;
  /** Lightweight tags to create at the new commit. */
  tags?: string[];
  /** Annotated tags to create at the new commit. */
  annotatedTags?: string[];
  /** Remove every file not written by this commit (a fresh tree). @default false */
  replace?: boolean;
  /** Also publish the commit under this extra ref (e.g. `refs/changes/01/1/1`). */
  extraRef?: string;
  /** Copy this directory's content into the tree before writing `files`. */
  fromDir?: string;
}

const GIT_ENV = {
  GIT_AUTHOR_NAME: "stackbus",
  GIT_AUTHOR_EMAIL: "stackbus@localhost",
  GIT_COMMITTER_NAME: "stackbus",
  GIT_COMMITTER_EMAIL: "stackbus@localhost",
  GIT_CONFIG_NOSYSTEM: "1",
  HOME: tmpdir(),
};

async function git(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await run("git", args, { cwd, env: { ...process.env, ...GIT_ENV }, maxBuffer: 64 * 1024 * 1024 });
  return stdout.trim();
}

/**
 * Adds a commit to the bare repository `<root>/<name>.git` (created when missing) using a
 * working copy under `workRoot`. Returns the new commit's sha.
 */
export async function commitToBareRepo(root: string, workRoot: string, name: string, files: Record<string, RepoFile>, options: CommitOptions = {}): Promise<string> {
  const branch = options.branch ?? "master";
  const dir = join(workRoot, name);
  const bare = join(root, `${name}.git`);
  mkdirSync(dir, { recursive: true });
  await git(dir, "init", "-q", "-b", branch);
  await git(dir, "config", "commit.gpgsign", "false");
  const hasCommits = await git(dir, "rev-parse", "--verify", "-q", "HEAD").then(
    () => true,
    () => false,
  );
  if (hasCommits) {
    const exists = (await git(dir, "branch", "--list", branch)).length > 0;
    await git(dir, "checkout", "-q", ...(exists ? [branch] : ["-b", branch]));
  }
  if (options.replace) await git(dir, "rm", "-rq", "--ignore-unmatch", ".");
  if (options.fromDir) cpSync(options.fromDir, dir, { recursive: true });
  for (const [path, file] of Object.entries(files)) {
    const target = join(dir, path);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, typeof file === "string" ? file : file.content);
    if (typeof file !== "string" && file.mode !== undefined) chmodSync(target, file.mode);
  }
  await git(dir, "add", "-A");
  await git(dir, "commit", "-q", "--allow-empty", "-m", options.message ?? `update ${name}`);
  const sha = await git(dir, "rev-parse", "HEAD");
  for (const tag of options.tags ?? []) await git(dir, "tag", "-f", tag);
  for (const tag of options.annotatedTags ?? []) await git(dir, "tag", "-f", "-a", tag, "-m", `release ${tag}`);
  mkdirSync(root, { recursive: true });
  await run("git", ["init", "-q", "--bare", bare]).catch(() => undefined);
  await git(bare, "config", "http.receivepack", "false");
  await git(bare, "config", "uploadpack.allowAnySHA1InWant", "true");
  await git(dir, "push", "-q", "-f", "--tags", bare, `${branch}:refs/heads/${branch}`);
  if (options.extraRef) await git(dir, "push", "-q", "-f", bare, `HEAD:${options.extraRef}`);
  const headRef = await git(bare, "symbolic-ref", "HEAD").catch(() => "");
  const headExists = await git(bare, "rev-parse", "--verify", "-q", headRef).then(
    () => true,
    () => false,
  );
  if (!headExists) await git(bare, "symbolic-ref", "HEAD", `refs/heads/${branch}`);
  await git(bare, "update-server-info");
  return sha;
}

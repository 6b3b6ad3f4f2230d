import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { commitToBareRepo, serveGitHttp, type CommitOptions, type GitRequest, type RepoFile } from "@stackbus/githttp";

export type { CommitOptions, GitRequest };
/** A file to put in a fixture repository: its text, or content and mode. */
export type FixtureFile = RepoFile;

/**
 * A git smart-HTTP server on 127.0.0.1 over bare repositories it builds from fixture
 * files, served by the real `git http-backend`. It counts requests per repository.
 * Disposing it (`await using git = await startGitServer()`) stops it and removes its repositories.
 */
export interface GitServer extends AsyncDisposable {
  readonly url: string;
  readonly root: string;
  readonly requests: readonly GitRequest[];
  /** `http://127.0.0.1:PORT/<name>.git` */
  repoUrl(name: string): string;
  /** Path of the bare repository on disk (usable as a local plugin source). */
  repoPath(name: string): string;
  /** Creates (or adds a commit to) a repository; returns the new commit sha. */
  commit(name: string, files: Record<string, FixtureFile>, options?: CommitOptions): Promise<string>;
  /** Number of `git-upload-pack` POSTs (fetch/clone negotiations) for a repository. */
  uploadPacks(name: string): number;
  /** Serves a copy of an existing repository (a path or a git bundle) as `<name>.git`. */
  mirror(name: string, source: string): string;
  /** Delays every response by `ms` (to test fetches in flight). */
  setDelay(ms: number): void;
  stop(): Promise<void>;
}

export async function startGitServer(): Promise<GitServer> {
  const base = mkdtempSync(join(tmpdir(), "sb-git-"));
  const root = join(base, "repos");
  const work = join(base, "work");
  mkdirSync(root);
  mkdirSync(work);
  const server = await serveGitHttp({ root });
  const git: GitServer = {
    url: server.url,
    root,
    requests: server.requests,
    repoUrl: (name) => `${server.url}/${name}.git`,
    repoPath: (name) => join(root, `${name}.git`),
    commit: (name, files, options) => commitToBareRepo(root, work, name, files, options),
    uploadPacks: (name) => server.requests.filter((r) => r.repo === `${name}.git` && r.service === "git-upload-pack" && r.method === "POST").length,
    mirror: (name, source) => {
      const bare = join(root, `${name}.git`);
      execFileSync("git", ["clone", "-q", "--bare", source, bare], { stdio: "ignore" });
      return `${server.url}/${name}.git`;
    },
    setDelay: (ms) => server.setDelay(ms),
    async stop() {
      await server.stop();
      rmSync(base, { recursive: true, force: true });
    },

    [Symbol.asyncDispose]() {
      return git.stop();
    },
  };
  return git;
}

/** The environment for the `git` command in a test: an author and committer, no system config. */
export function gitEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    GIT_AUTHOR_NAME: "t",
    GIT_AUTHOR_EMAIL: "t@example.invalid",
    GIT_COMMITTER_NAME: "t",
    GIT_COMMITTER_EMAIL: "t@example.invalid",
    GIT_CONFIG_NOSYSTEM: "1",
  };
}

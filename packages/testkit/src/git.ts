import { execFile, spawn } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** A file to put in a fixture repository: its text, or text and mode. */
export type FixtureFile = string | { content: string | Buffer; mode?: number };

export interface GitRequest {
  method: string;
  repo: string;
  service: string;
  at: number;
}

/**
 * A git smart-HTTP server on 127.0.0.1 over bare repositories it builds from fixture
 * files, served by the real `git http-backend`. It counts requests per repository.
 */
export interface GitServer {
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
  /** Delays every response by `ms` (to test fetches in flight). */
  setDelay(ms: number): void;
  stop(): Promise<void>;
}

export interface CommitOptions {
  branch?: string;
  message?: string;
  /** Lightweight or annotated tags to create at the new commit. */
  tags?: string[];
  annotatedTags?: string[];
  /** Remove every file not in `files` (a fresh tree). @default false */
  replace?: boolean;
  /** Also publish the commit under this extra ref (e.g. `refs/changes/01/1/1`). */
  extraRef?: string;
}

const GIT_ENV = {
  GIT_AUTHOR_NAME: "stackbus test",
  GIT_AUTHOR_EMAIL: "test@stackbus.invalid",
  GIT_COMMITTER_NAME: "stackbus test",
  GIT_COMMITTER_EMAIL: "test@stackbus.invalid",
  GIT_CONFIG_NOSYSTEM: "1",
  HOME: tmpdir(),
};

async function git(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await run("git", args, { cwd, env: { ...process.env, ...GIT_ENV }, maxBuffer: 64 * 1024 * 1024 });
  return stdout.trim();
}

export async function startGitServer(): Promise<GitServer> {
  const base = mkdtempSync(join(tmpdir(), "sb-git-"));
  const root = join(base, "repos");
  const work = join(base, "work");
  mkdirSync(root);
  mkdirSync(work);
  const requests: GitRequest[] = [];
  let delay = 0;

  const server = createServer((req, res) => {
    const handle = () => serveCgi(root, req, res, requests);
    if (delay > 0) setTimeout(handle, delay);
    else handle();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  const url = `http://127.0.0.1:${port}`;

  return {
    url,
    root,
    requests,
    repoUrl: (name) => `${url}/${name}.git`,
    repoPath: (name) => join(root, `${name}.git`),
    async commit(name, files, options = {}) {
      const branch = options.branch ?? "master";
      const dir = join(work, name);
      const bare = join(root, `${name}.git`);
      mkdirSync(dir, { recursive: true });
      await git(dir, "init", "-q", "-b", branch);
      await git(dir, "config", "commit.gpgsign", "false");
      const heads = await git(dir, "branch", "--list", branch);
      const hasCommits = await git(dir, "rev-parse", "--verify", "-q", "HEAD").then(
        () => true,
        () => false,
      );
      if (hasCommits && heads.length === 0) await git(dir, "checkout", "-q", "-b", branch);
      else if (hasCommits) await git(dir, "checkout", "-q", branch);
      if (options.replace) await git(dir, "rm", "-rq", "--ignore-unmatch", ".");
      for (const [path, file] of Object.entries(files)) {
        const target = join(dir, path);
        mkdirSync(dirname(target), { recursive: true });
        const content = typeof file === "string" ? file : file.content;
        writeFileSync(target, content);
        if (typeof file !== "string" && file.mode !== undefined) chmodSync(target, file.mode);
      }
      await git(dir, "add", "-A");
      await git(dir, "commit", "-q", "--allow-empty", "-m", options.message ?? `update ${name}`);
      const sha = await git(dir, "rev-parse", "HEAD");
      for (const tag of options.tags ?? []) await git(dir, "tag", "-f", tag);
      for (const tag of options.annotatedTags ?? []) await git(dir, "tag", "-f", "-a", tag, "-m", `release ${tag}`);
      await run("git", ["init", "-q", "--bare", bare]).catch(() => undefined);
      await git(bare, "config", "http.receivepack", "false");
      await git(bare, "config", "uploadpack.allowAnySHA1InWant", "true");
      await git(dir, "push", "-q", "-f", "--tags", bare, `${branch}:refs/heads/${branch}`);
      if (options.extraRef) await git(dir, "push", "-q", "-f", bare, `HEAD:${options.extraRef}`);
      // Make HEAD of the bare repo point at the first branch created.
      const headRef = await git(bare, "symbolic-ref", "HEAD").catch(() => "");
      const exists = await git(bare, "rev-parse", "--verify", "-q", headRef).then(
        () => true,
        () => false,
      );
      if (!exists) await git(bare, "symbolic-ref", "HEAD", `refs/heads/${branch}`);
      await git(bare, "update-server-info");
      return sha;
    },
    uploadPacks: (name) => requests.filter((r) => r.repo === `${name}.git` && r.service === "git-upload-pack" && r.method === "POST").length,
    setDelay(ms) {
      delay = ms;
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(base, { recursive: true, force: true });
    },
  };
}

/** Runs `git http-backend` as a CGI program for one request. */
function serveCgi(root: string, req: IncomingMessage, res: ServerResponse, requests: GitRequest[]): void {
  const parsed = new URL(req.url ?? "/", "http://localhost");
  const path = decodeURIComponent(parsed.pathname);
  const repo = path.split("/").filter(Boolean)[0] ?? "";
  const service = parsed.searchParams.get("service") ?? path.split("/").pop() ?? "";
  requests.push({ method: req.method ?? "GET", repo, service, at: Date.now() });
  const child = spawn("git", ["http-backend"], {
    env: {
      ...process.env,
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: "1",
      PATH_INFO: path,
      QUERY_STRING: parsed.search.replace(/^\?/, ""),
      REQUEST_METHOD: req.method ?? "GET",
      CONTENT_TYPE: req.headers["content-type"] ?? "",
      ...(req.headers["content-encoding"] ? { HTTP_CONTENT_ENCODING: String(req.headers["content-encoding"]) } : {}),
      ...(req.headers["git-protocol"] ? { GIT_PROTOCOL: String(req.headers["git-protocol"]) } : {}),
      REMOTE_ADDR: "127.0.0.1",
    },
    stdio: ["pipe", "pipe", "pipe"],
  });
  req.pipe(child.stdin);
  let head = Buffer.alloc(0);
  let headersDone = false;
  child.stdout.on("data", (chunk: Buffer) => {
    if (headersDone) {
      res.write(chunk);
      return;
    }
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf("\r\n\r\n");
    if (end < 0) return;
    headersDone = true;
    let status = 200;
    for (const line of head.subarray(0, end).toString().split("\r\n")) {
      const i = line.indexOf(":");
      if (i < 0) continue;
      const key = line.slice(0, i).trim();
      const value = line.slice(i + 1).trim();
      if (key.toLowerCase() === "status") status = Number.parseInt(value, 10);
      else res.setHeader(key, value);
    }
    res.statusCode = status;
    res.write(head.subarray(end + 4));
  });
  child.stdout.on("end", () => res.end());
  child.on("error", () => {
    res.statusCode = 500;
    res.end();
  });
}

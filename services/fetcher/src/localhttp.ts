import { execa } from "execa";
import type { GitHttpRequest, GitHttpResponse, HttpClient } from "isomorphic-git";

/** The URL isomorphic-git is given for a local repository; the path never goes into it. */
export const LOCAL_URL = "http://local-repository.stackbus.invalid/repo.git";

const SERVICE = "git-upload-pack";

/** Environment for git: the caller's, minus variables that would point git at another repository. */
function gitEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith("GIT_")) env[key] = value;
  }
  env["GIT_CONFIG_NOSYSTEM"] = "1";
  return env;
}

/** What a local transport saw: git timing out, a wanted commit the repository does not have. */
export interface TransportWatch {
  timedOut: boolean;
  /** A commit asked for (`want`) that the repository does not hold. */
  missing?: string;
}

/**
 * An isomorphic-git `http` client that serves one local repository (bare or not)
 * without any server: isomorphic-git has no file:// transport, so its two smart-HTTP
 * requests are answered by running `git upload-pack --stateless-rpc` on the path. The
 * path goes to git as one argument (execa, no shell); it is never parsed out of a URL.
 * A wanted commit is looked up first (`git cat-file -e`, by its exit status), so a
 * missing one is recorded in `watch` rather than read out of git's message.
 */
export function localGitHttp(repoPath: string, timeoutMs: number, watch: TransportWatch = { timedOut: false }): HttpClient {
  return {
    async request(req: GitHttpRequest): Promise<GitHttpResponse> {
      const url = new URL(req.url);
      const method = (req.method ?? "GET").toUpperCase();
      if (method === "GET" && url.pathname.endsWith("/info/refs") && url.searchParams.get("service") === SERVICE) {
        const out = await uploadPack(repoPath, ["--advertise-refs"], undefined, timeoutMs, watch);
        if (!out.ok) return failure(req.url, out.stderr);
        const header = pktLine(`# service=${SERVICE}\n`);
        return success(req.url, `application/x-${SERVICE}-advertisement`, Buffer.concat([header, Buffer.from("0000"), out.stdout]));
      }
      if (method === "POST" && url.pathname.endsWith(`/${SERVICE}`)) {
        const body = await collect(req.body);
        for (const want of wants(body)) {
          if (!(await hasCommit(repoPath, want, timeoutMs))) {
            watch.missing = want;
            return failure(req.url, `commit ${want} is not in the repository`);
          }
        }
        const out = await uploadPack(repoPath, [], body, timeoutMs, watch);
        if (!out.ok) return failure(req.url, out.stderr);
        return success(req.url, `application/x-${SERVICE}-result`, out.stdout);
      }
      return { url: req.url, method, statusCode: 404, statusMessage: "Not Found", headers: {}, body: once(Buffer.alloc(0)) };
    },
  };
}

/** The object ids of the `want` lines of an upload-pack request. */
function wants(body: Buffer): string[] {
  const out: string[] = [];
  const re = /want ([0-9a-f]{40})/g;
  const text = body.toString("latin1");
  for (let m = re.exec(text); m; m = re.exec(text)) out.push(m[1] as string);
  return out;
}

async function hasCommit(repoPath: string, oid: string, timeoutMs: number): Promise<boolean> {
  const result = await execa("git", ["cat-file", "-e", oid], { cwd: repoPath, env: gitEnv(), extendEnv: false, reject: false, timeout: timeoutMs, stdin: "ignore" });
  return result.exitCode === 0;
}

async function uploadPack(
  repoPath: string,
  extra: string[],
  input: Buffer | undefined,
  timeoutMs: number,
  watch: TransportWatch,
): Promise<{ ok: true; stdout: Buffer } | { ok: false; stderr: string }> {
  const result = await execa(
    "git",
    ["-c", "uploadpack.allowAnySHA1InWant=true", "upload-pack", "--stateless-rpc", ...extra, repoPath],
    {
      env: gitEnv(),
      extendEnv: false,
      encoding: "buffer",
      reject: false,
      timeout: timeoutMs,
      maxBuffer: 4 * 1024 * 1024 * 1024,
      ...(input === undefined ? { stdin: "ignore" as const } : { input }),
    },
  );
  if (result.timedOut) watch.timedOut = true;
  if (result.exitCode !== 0 || result.failed) {
    const stderr = Buffer.from(result.stderr ?? []).toString("utf8").trim();
    return { ok: false, stderr: stderr || result.shortMessage || "git upload-pack failed" };
  }
  return { ok: true, stdout: Buffer.from(result.stdout) };
}

function pktLine(text: string): Buffer {
  const payload = Buffer.from(text, "utf8");
  return Buffer.concat([Buffer.from((payload.length + 4).toString(16).padStart(4, "0")), payload]);
}

function success(url: string, contentType: string, body: Buffer): GitHttpResponse {
  return {
    url,
    method: "POST",
    statusCode: 200,
    statusMessage: "OK",
    headers: { "content-type": contentType },
    body: once(body),
  };
}

/** A repository that git refuses (missing, not a repository) looks like a 404 to isomorphic-git; the reason goes in the message. */
function failure(url: string, stderr: string): GitHttpResponse {
  return {
    url,
    statusCode: 404,
    statusMessage: stderr.replace(/^fatal:\s*/, "").split("\n")[0] ?? "not a git repository",
    headers: {},
    body: once(Buffer.from(stderr)),
  };
}

async function collect(body: AsyncIterableIterator<Uint8Array> | undefined): Promise<Buffer> {
  if (!body) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

function once(value: Buffer): AsyncIterableIterator<Uint8Array> {
  let done = false;
  return {
    next: async () => {
      if (done) return { done: true, value: undefined };
      done = true;
      return { done: false, value };
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

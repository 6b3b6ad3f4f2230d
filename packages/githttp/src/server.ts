import { spawn } from "node:child_process";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";

export interface GitRequest {
  method: string;
  repo: string;
  service: string;
  at: number;
}

export interface GitHttpServer {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  readonly requests: readonly GitRequest[];
  /** Delays every response by `ms` (to keep fetches in flight). */
  setDelay(ms: number): void;
  stop(): Promise<void>;
}

/**
 * Serves the bare repositories under `root` over git's smart HTTP protocol, read-only, on
 * 127.0.0.1, through the real `git http-backend`. Counts requests per repository.
 */
export async function serveGitHttp(options: { root: string; port?: number }): Promise<GitHttpServer> {
  const requests: GitRequest[] = [];
  let delay = 0;
  const server = createServer((req, res) => {
    const handle = () => runBackend(options.root, req, res, requests);
    if (delay > 0) setTimeout(handle, delay);
    else handle();
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    setDelay(ms) {
      delay = ms;
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Runs `git http-backend` as a CGI program for one request. */
function runBackend(root: string, req: IncomingMessage, res: ServerResponse, requests: GitRequest[]): void {
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

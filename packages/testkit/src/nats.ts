import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { track, untrack } from "./cleanup.js";

/**
 * A real nats-server with JetStream, on a free loopback port, with its own store dir.
 * `await using server = await startNats()` stops it and removes its store at the end of the scope.
 */
export interface NatsServer extends AsyncDisposable {
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  readonly pid: number | undefined;
  /** Stops the server (SIGTERM, then SIGKILL) and removes its store unless `keepData`. */
  stop(options?: { keepData?: boolean }): Promise<void>;
  /** Sends a signal and waits for the process to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the server again on the same port and store dir (after kill or stop with keepData). */
  restart(): Promise<void>;
}

export interface NatsServerOptions {
  /**
   * Extra server configuration, written to a config file and passed with `-c`. A config with
   * its own `jetstream { store_dir }` block keeps it (`-js -sd` are then not passed): give it
   * `storeDir` so the store is removed on stop.
   */
  config?: string;
  /** Extra command-line arguments. */
  args?: string[];
  port?: number;
  storeDir?: string;
  /** Address to listen on. @default 127.0.0.1 */
  host?: string;
}

/** Path of the nats-server binary: `$NATS_SERVER_BIN`, else `nats-server` on PATH. */
export function natsServerBin(): string {
  return process.env["NATS_SERVER_BIN"] ?? "nats-server";
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const address = srv.address();
      const port = typeof address === "object" && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

class ServerProcess implements NatsServer {
  readonly port: number;
  readonly storeDir: string;
  readonly url: string;
  #child: ChildProcess | undefined;
  #args: string[];
  #output = "";

  constructor(port: number, storeDir: string, args: string[], host = "127.0.0.1") {
    this.port = port;
    this.storeDir = storeDir;
    this.url = `nats://${host}:${port}`;
    this.#args = args;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  async start(): Promise<void> {
    const child = spawn(natsServerBin(), this.#args, { stdio: ["ignore", "pipe", "pipe"] });
    this.#child = child;
    track(child);
    this.#output = "";
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`nats-server did not start on ${this.port}:\n${this.#output}`)), 15_000);
      const onData = (chunk: Buffer) => {
        this.#output += chunk.toString();
        if (this.#output.includes("Server is ready")) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout?.on("data", onData);
      child.stderr?.on("data", onData);
      child.once("error", (err) => {
        clearTimeout(timer);
        reject(new Error(`cannot run ${natsServerBin()}: ${err.message} (install the Debian package nats-server)`));
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`nats-server exited with ${code} before it was ready:\n${this.#output}`));
      });
    });
  }

  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill(signal);
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
    untrack(child);
  }

  async restart(): Promise<void> {
    await this.kill("SIGTERM");
    await this.start();
  }

  async stop(options: { keepData?: boolean } = {}): Promise<void> {
    await this.kill("SIGTERM");
    if (!options.keepData) rmSync(this.storeDir, { recursive: true, force: true });
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

/** Starts a real `nats-server -js` on a free port with a temporary store dir. */
export async function startNats(options: NatsServerOptions = {}): Promise<NatsServer> {
  const port = options.port ?? (await freePort());
  const storeDir = options.storeDir ?? mkdtempSync(join(tmpdir(), "sb-nats-"));
  const host = options.host ?? "127.0.0.1";
  const ownJetStream = options.config !== undefined && /^\s*jetstream\s*[{:]/m.test(options.config);
  const args = ["-a", host, "-p", String(port), ...(ownJetStream ? [] : ["-js", "-sd", storeDir])];
  if (options.config) {
    const file = join(storeDir, "server.conf");
    writeFileSync(file, options.config);
    args.push("-c", file);
  }
  args.push(...(options.args ?? []));
  const server = new ServerProcess(port, storeDir, args, host);
  await server.start();
  return server;
}

/** A 3-node (or `size`-node) JetStream cluster on loopback; disposing it stops every node. */
export interface NatsCluster extends AsyncDisposable {
  readonly servers: NatsServer[];
  /** All client URLs, comma-separated, as `--nats` takes them. */
  readonly urls: string;
  stop(): Promise<void>;
}

export async function startNatsCluster(size = 3): Promise<NatsCluster> {
  const clientPorts: number[] = [];
  const routePorts: number[] = [];
  for (let i = 0; i < size; i++) {
    clientPorts.push(await freePort());
    routePorts.push(await freePort());
  }
  const routes = routePorts.map((p) => `nats-route://127.0.0.1:${p}`).join(", ");
  const servers = await Promise.all(
    clientPorts.map(async (port, i) => {
      const storeDir = mkdtempSync(join(tmpdir(), `sb-nats-c${i}-`));
      const config = [
        `server_name: sb-n${i}`,
        `listen: 127.0.0.1:${port}`,
        `jetstream { store_dir: "${storeDir}" }`,
        `cluster { name: sb-test, listen: 127.0.0.1:${routePorts[i]}, routes: [${routes}] }`,
      ].join("\n");
      const file = join(storeDir, "server.conf");
      writeFileSync(file, config);
      const server = new ServerProcess(port, storeDir, ["-c", file]);
      await server.start();
      return server;
    }),
  );
  return {
    servers,
    urls: servers.map((s) => s.url).join(","),
    async stop() {
      await Promise.all(servers.map((s) => s.stop()));
    },
    [Symbol.asyncDispose]() {
      return Promise.all(servers.map((s) => s.stop())).then(() => undefined);
    },
  };
}

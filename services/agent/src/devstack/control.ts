import { randomBytes } from "node:crypto";
import { createServer, type Server, type Socket } from "node:net";
import type { Logger } from "@stackbus/bus";

/** One message of a DevStack script at a pause point, held until it is answered. */
export interface ScriptEvent {
  /** The process that asks (clean.sh and the unstack.sh it starts ask separately). */
  pid: number;
  /** `stack.sh`, `unstack.sh` or `clean.sh`. */
  script: string;
  /** `localrc` (end of the localrc), `phase` (end of a run_phase), `settings` (end of load_plugin_settings). */
  event: string;
  fields: string[];
  /** Lets the script go on. */
  go(): void;
  /** Ends the script at this point with `reason`. */
  stop(reason: string): void;
  /** True once the script's connection closed before an answer (it was killed). */
  readonly gone: boolean;
}

const MAX_MESSAGE = 256 * 1024;

/**
 * Where DevStack scripts started by this agent report their pause points: a TCP server
 * on loopback. Each run has its own random token; a connection that does not present a
 * known token is closed unanswered.
 */
export class ControlServer {
  readonly #server: Server;
  readonly #log: Logger;
  readonly #channels = new Map<string, (event: ScriptEvent) => void>();
  #port = 0;

  constructor(logger: Logger) {
    this.#log = logger;
    this.#server = createServer((socket) => this.#accept(socket));
    this.#server.on("error", (err) => this.#log.error({ err }, "the DevStack control listener failed"));
  }

  get port(): number {
    return this.#port;
  }

  async listen(): Promise<void> {
    if (this.#port) return;
    await new Promise<void>((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(0, "127.0.0.1", () => {
        this.#server.off("error", reject);
        resolve();
      });
    });
    const address = this.#server.address();
    this.#port = typeof address === "object" && address ? address.port : 0;
    this.#server.unref();
  }

  /** A channel for one run: its token, for the script's environment. */
  open(onEvent: (event: ScriptEvent) => void): { token: string; close(): void } {
    const token = randomBytes(16).toString("hex");
    this.#channels.set(token, onEvent);
    return { token, close: () => this.#channels.delete(token) };
  }

  close(): void {
    this.#channels.clear();
    this.#server.close();
  }

  #accept(socket: Socket): void {
    let buffer = "";
    let parsed = false;
    socket.setEncoding("utf8");
    socket.on("error", () => undefined);
    socket.on("data", (chunk: string) => {
      if (parsed) return;
      buffer += chunk;
      const nl = buffer.indexOf("\n");
      if (nl < 0) {
        if (buffer.length > MAX_MESSAGE) socket.destroy();
        return;
      }
      parsed = true;
      const [token = "", pid = "", script = "", event = "", ...fields] = buffer.slice(0, nl).split("\x1f");
      const deliver = this.#channels.get(token);
      if (!deliver) {
        this.#log.warn({ script, event }, "a DevStack script reported with an unknown token; ignored");
        socket.destroy();
        return;
      }
      let answered = false;
      let gone = false;
      socket.on("close", () => {
        if (!answered) gone = true;
      });
      const answer = (line: string) => {
        if (answered) return;
        answered = true;
        socket.end(`${line.replace(/\n/g, " ")}\n`);
      };
      deliver({
        pid: Number(pid),
        script,
        event,
        fields,
        go: () => answer("go"),
        stop: (reason) => answer(`stop ${reason}`),
        get gone() {
          return gone;
        },
      });
    });
  }
}

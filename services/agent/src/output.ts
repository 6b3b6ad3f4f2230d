import { createWriteStream, mkdirSync, type WriteStream } from "node:fs";
import { dirname } from "node:path";
import { LogBatchSchema, subjects, type LogBatch, type StepId } from "@stackbus/protocol";
import type { Bus, Logger } from "@stackbus/bus";

/** How many lines of a hook's output a failure carries. */
export const TAIL_LINES = 200;

type Line = LogBatch["lines"][number];

/**
 * Where hook output goes: the log subject (stored in the logs stream, batched), the run's
 * log file on the host, and a per-hook tail kept for failure reports.
 */
export class OutputLog {
  readonly #bus: Bus;
  readonly #log: Logger;
  readonly #lab: string;
  readonly #host: string;
  readonly #runId: string;
  readonly #file: WriteStream;
  #attempt = 1;
  #step: StepId = "prepare";
  #seq = 0;
  #buffer: Line[] = [];
  #timer: NodeJS.Timeout | undefined;
  #inflight: Promise<unknown> = Promise.resolve();
  #tails = new Map<string, string[]>();

  constructor(options: { bus: Bus; logger: Logger; lab: string; host: string; runId: string; file: string }) {
    this.#bus = options.bus;
    this.#log = options.logger;
    this.#lab = options.lab;
    this.#host = options.host;
    this.#runId = options.runId;
    mkdirSync(dirname(options.file), { recursive: true });
    this.#file = createWriteStream(options.file, { flags: "a" });
    this.#file.on("error", (err) => this.#log.error({ err }, "cannot write the run log file"));
  }

  /** Sets the step the following lines belong to and clears the hook tails. */
  beginStep(attempt: number, step: StepId): void {
    this.#attempt = attempt;
    this.#step = step;
    this.#tails.clear();
  }

  line(hook: string, stream: Line["stream"], text: string): void {
    const at = Date.now();
    this.#buffer.push({ at, hook, stream, text });
    let tail = this.#tails.get(hook);
    if (!tail) this.#tails.set(hook, (tail = []));
    tail.push(text);
    if (tail.length > TAIL_LINES) tail.shift();
    this.#file.write(`${new Date(at).toISOString()} ${this.#step} ${hook} ${stream === "stderr" ? "!" : "|"} ${text}\n`);
    if (this.#buffer.length >= 200) this.#flushSoon(0);
    else this.#flushSoon(100);
  }

  /** The last lines a hook printed during the current step. */
  tail(hook: string): string[] {
    return [...(this.#tails.get(hook) ?? [])];
  }

  #flushSoon(delay: number): void {
    if (delay === 0) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#send();
      return;
    }
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      this.#send();
    }, delay);
  }

  #send(): void {
    if (this.#buffer.length === 0) return;
    const batch: LogBatch = {
      lab: this.#lab,
      runId: this.#runId,
      host: this.#host,
      attempt: this.#attempt,
      step: this.#step,
      seq: this.#seq++,
      lines: this.#buffer,
    };
    this.#buffer = [];
    const subject = subjects.runLog(this.#lab, this.#runId, this.#host);
    const msgID = `${this.#runId}.${this.#host}.log.${batch.attempt}.${batch.seq}`;
    const previous = this.#inflight;
    this.#inflight = previous.then(() =>
      this.#bus
        .publishDurable(subject, LogBatchSchema, trimBatch(batch), { msgID })
        .catch((err: unknown) => this.#log.error({ err }, "hook output could not be stored on the bus; it is in the host's run log")),
    );
  }

  /** Sends everything buffered and waits until the bus has stored it. */
  async flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#send();
    await this.#inflight;
  }

  async close(): Promise<void> {
    await this.flush();
    await new Promise<void>((resolve) => this.#file.end(resolve));
  }
}

/** Keeps one log message well under the bus's payload limit: very long lines are cut. */
function trimBatch(batch: LogBatch): LogBatch {
  const max = 16 * 1024;
  return {
    ...batch,
    lines: batch.lines.map((l) => (l.text.length > max ? { ...l, text: `${l.text.slice(0, max)}… [${l.text.length - max} more characters in the host's run log]` } : l)),
  };
}

import { createWriteStream, mkdirSync, type WriteStream } from "node:fs";
import { dirname } from "node:path";
import { LogBatchSchema, subjects, type LogBatch, type StepId } from "@stackbus/protocol";
import type { Bus, Logger } from "@stackbus/bus";

/** How many lines of a hook's output a failure carries. */
export const TAIL_LINES = 200;

/**
 * Bounds on what one run's output may take, in the logs stream, on the host's disk and in
 * a step result (which must stay under the bus's max_payload). Past a hook's or a run's
 * budget the output is not kept but for its last lines, which follow a line saying what
 * was dropped. Defaults; `OutputLog` takes others.
 */
export const OUTPUT_LIMITS = {
  /** A line longer than this (bytes, UTF-8) is cut, saying so. */
  lineBytes: 16 * 1024,
  /** One hook's output per step, kept whole up to this, then only its last lines. */
  hookBytes: 8 * 1024 * 1024,
  /** One run's output on this host, all hooks and steps together. */
  runBytes: 64 * 1024 * 1024,
  /** A failure's output tail, at most. */
  tailBytes: 64 * 1024,
  /** One log message on the bus, at most (well under the default max_payload of 1 MiB). */
  batchBytes: 256 * 1024,
} as const;
export type OutputLimits = { -readonly [K in keyof typeof OUTPUT_LIMITS]: number };

type Line = LogBatch["lines"][number];

/** Cuts `text` to at most `max` bytes of UTF-8 (never inside a character), saying how much was cut. */
export function cutLine(text: string, max: number): string {
  const bytes = Buffer.byteLength(text);
  if (bytes <= max) return text;
  let kept = Buffer.from(text).subarray(0, max).toString("utf8");
  if (kept.endsWith("\uFFFD")) kept = kept.slice(0, -1);
  return `${kept}… [${bytes - Buffer.byteLength(kept)} more bytes of this line are not kept]`;
}

/**
 * Where hook output goes: the log subject (stored in the logs stream, batched), the run's
 * log file on the host, and a per-hook tail kept for failure reports; each within
 * OUTPUT_LIMITS.
 */
export class OutputLog {
  readonly #bus: Bus;
  readonly #log: Logger;
  readonly #lab: string;
  readonly #host: string;
  readonly #runId: string;
  readonly #file: WriteStream;
  readonly #limits: OutputLimits;
  #attempt = 1;
  #step: StepId = "prepare";
  #seq = 0;
  #buffer: Line[] = [];
  #bufferBytes = 0;
  #timer: NodeJS.Timeout | undefined;
  #inflight: Promise<unknown> = Promise.resolve();
  #tails = new Map<string, string[]>();
  /** Bytes kept this step per hook, and for the whole run. */
  #hookBytes = new Map<string, number>();
  #runBytes = 0;
  /** Per hook, what was not kept this step: how much, and its last lines. */
  #dropped = new Map<string, { lines: number; bytes: number; last: Array<{ stream: Line["stream"]; text: string }> }>();

  constructor(options: { bus: Bus; logger: Logger; lab: string; host: string; runId: string; file: string; limits?: Partial<OutputLimits> }) {
    this.#bus = options.bus;
    this.#log = options.logger;
    this.#lab = options.lab;
    this.#host = options.host;
    this.#runId = options.runId;
    this.#limits = { ...OUTPUT_LIMITS, ...options.limits };
    mkdirSync(dirname(options.file), { recursive: true, mode: 0o700 });
    this.#file = createWriteStream(options.file, { flags: "a", mode: 0o600 });
    this.#file.on("error", (err) => this.#log.error({ err }, "cannot write the run log file"));
  }

  /** Sets the step the following lines belong to and clears the hook tails. */
  beginStep(attempt: number, step: StepId): void {
    this.#settleDropped();
    this.#attempt = attempt;
    this.#step = step;
    this.#tails.clear();
    this.#hookBytes.clear();
  }

  line(hook: string, stream: Line["stream"], raw: string): void {
    const text = cutLine(raw, this.#limits.lineBytes);
    let tail = this.#tails.get(hook);
    if (!tail) this.#tails.set(hook, (tail = []));
    tail.push(text);
    if (tail.length > TAIL_LINES) tail.shift();
    const bytes = Buffer.byteLength(text) + 1;
    const used = this.#hookBytes.get(hook) ?? 0;
    if (used + bytes > this.#limits.hookBytes || this.#runBytes + bytes > this.#limits.runBytes) {
      let d = this.#dropped.get(hook);
      if (!d) this.#dropped.set(hook, (d = { lines: 0, bytes: 0, last: [] }));
      d.lines += 1;
      d.bytes += bytes;
      d.last.push({ stream, text });
      if (d.last.length > TAIL_LINES) d.last.shift();
      return;
    }
    this.#hookBytes.set(hook, used + bytes);
    this.#runBytes += bytes;
    this.#keep(hook, stream, text);
  }

  /** Sends and writes one line. */
  #keep(hook: string, stream: Line["stream"], text: string): void {
    const at = Date.now();
    this.#buffer.push({ at, hook, stream, text });
    this.#bufferBytes += Buffer.byteLength(text) + hook.length + 64;
    this.#file.write(`${new Date(at).toISOString()} ${this.#step} ${hook} ${stream === "stderr" ? "!" : "|"} ${text}\n`);
    if (this.#buffer.length >= 200 || this.#bufferBytes >= this.#limits.batchBytes) this.#flushSoon(0);
    else this.#flushSoon(100);
  }

  /** For each hook that went over its budget this step: a line saying what was dropped, then its last lines. */
  #settleDropped(): void {
    for (const [hook, d] of this.#dropped) {
      const kept = d.last.length;
      this.#keep(hook, "agent", `[stackbus: ${d.lines} lines (${d.bytes} bytes) of ${hook}'s output in ${this.#step} are not kept (a hook keeps ${this.#limits.hookBytes} bytes, a run ${this.#limits.runBytes}); its last ${kept} follow]`);
      for (const l of d.last) this.#keep(hook, l.stream, l.text);
    }
    this.#dropped.clear();
  }

  /** The last lines a hook printed during the current step, at most OUTPUT_LIMITS.tailBytes of them. */
  tail(hook: string): string[] {
    const lines = this.#tails.get(hook) ?? [];
    const out: string[] = [];
    let bytes = 0;
    for (let i = lines.length - 1; i >= 0; i--) {
      const line = cutLine(lines[i] as string, 2_048);
      bytes += Buffer.byteLength(line) + 1;
      if (bytes > this.#limits.tailBytes) break;
      out.unshift(line);
    }
    return out;
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
    this.#bufferBytes = 0;
    const subject = subjects.runLog(this.#lab, this.#runId, this.#host);
    const msgID = `${this.#runId}.${this.#host}.log.${batch.attempt}.${batch.seq}`;
    const previous = this.#inflight;
    this.#inflight = previous.then(() =>
      this.#bus
        .publishDurable(subject, LogBatchSchema, batch, { msgID })
        .catch((err: unknown) => this.#log.error({ err }, "hook output could not be stored on the bus; it is in the host's run log")),
    );
  }

  /** Sends everything buffered and waits until the bus has stored it. */
  async flush(): Promise<void> {
    this.#settleDropped();
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

/**
 * Splits a stream of text into lines, looking at each chunk once; a line longer than
 * `maxChars` is passed on cut and the rest of it, up to its newline, dropped.
 */
export class LineSplitter {
  #buffer = "";
  #skipping = false;
  constructor(
    readonly onLine: (line: string) => void,
    readonly maxChars = 64 * 1024,
  ) {}

  push(chunk: string): void {
    let start = 0;
    if (this.#skipping) {
      const nl = chunk.indexOf("\n");
      if (nl < 0) return;
      this.#skipping = false;
      start = nl + 1;
    }
    for (;;) {
      const nl = chunk.indexOf("\n", start);
      if (nl < 0) break;
      const line = this.#buffer + chunk.slice(start, nl);
      this.#buffer = "";
      start = nl + 1;
      this.onLine(line);
    }
    this.#buffer += chunk.slice(start);
    if (this.#buffer.length > this.maxChars) {
      this.onLine(`${this.#buffer.slice(0, this.maxChars)}… [the rest of this line, up to its newline, is not kept]`);
      this.#buffer = "";
      this.#skipping = true;
    }
  }

  /** The last line, when the stream ended without a newline. */
  end(): void {
    if (this.#buffer) this.onLine(this.#buffer);
    this.#buffer = "";
  }
}

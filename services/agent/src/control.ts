/**
 * The vocabulary of the hook session's control channel (file descriptor 3), defined
 * once: bash/session.sh writes these records (a test holds the two to the same set),
 * BashSession reads them. A record is fields separated by US (0x1f), ended by RS (0x1e).
 */
export const RECORD = {
  /** `V STATUS`: agent code evaluated (eval/query) ended with STATUS. */
  value: "V",
  /** `Q NAME VALUE`: a value the agent's query asked for (`__sb_report`). */
  report: "Q",
  /** `P NAME URL REF DIR`: one registered plugin. */
  plugin: "P",
  /** `P-end`: the plugin list is complete. */
  pluginsEnd: "P-end",
  /** `H INDEX start|end|skip ...`: one hook of a batch. */
  hook: "H",
  /** `B end`: every hook of the batch has reported. */
  batchEnd: "B",
} as const;

/** The output markers on stdout and stderr: `B<index>` (output of hook INDEX follows) and `END` (the batch's last byte). */
export const MARKER = { hook: "B", end: "END" } as const;

export const US = "\x1f";
export const RS = "\x1e";

/** One control record, parsed. */
export type ControlRecord =
  | { type: "value"; status: number }
  | { type: "report"; name: string; value: string }
  | { type: "plugin"; name: string; url: string; ref: string; dir: string }
  | { type: "plugins-end" }
  | { type: "hook-start"; index: number; at: number; name: string }
  | {
      type: "hook-end";
      index: number;
      at: number;
      status: number;
      died: boolean;
      /** The command that ended the hook under errexit, and its file:function:line. */
      command: string;
      location: string;
    }
  | { type: "hook-skip"; index: number; reason: string }
  | { type: "batch-end" };

const usToMs = (value: string | undefined): number => Math.floor(Number(value ?? 0) / 1000);

/** A record's fields as the session wrote them, or undefined for an unknown record. */
export function parseControlRecord(fields: readonly string[]): ControlRecord | undefined {
  const [type, a = "", b = "", c = "", d = "", e = "", f = ""] = fields;
  switch (type) {
    case RECORD.value:
      return { type: "value", status: Number(a) };
    case RECORD.report:
      return { type: "report", name: a, value: b };
    case RECORD.plugin:
      return { type: "plugin", name: a, url: b, ref: c, dir: d };
    case RECORD.pluginsEnd:
      return { type: "plugins-end" };
    case RECORD.batchEnd:
      return { type: "batch-end" };
    case RECORD.hook: {
      const index = Number(a);
      if (b === "start") return { type: "hook-start", index, at: usToMs(c), name: d };
      if (b === "end") return { type: "hook-end", index, at: usToMs(c), status: Number(d), died: e === "1", command: f, location: fields[7] ?? "" };
      if (b === "skip") return { type: "hook-skip", index, reason: c };
      return undefined;
    }
    default:
      return undefined;
  }
}

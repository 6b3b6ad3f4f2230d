import { isMap, isPair, isScalar, LineCounter, parseDocument, type Document, type Node } from "yaml";
import type { Diagnostic } from "@stackbus/protocol";

/** A field path in a manifest: `["hosts", 2, "name"]`. */
export type FieldPath = ReadonlyArray<string | number>;

/** `hosts[2].name`, as messages and diagnostics write a field path. */
export function formatPath(path: FieldPath): string {
  let out = "";
  for (const part of path) out += typeof part === "number" ? `[${part}]` : out === "" ? part : `.${part}`;
  return out;
}

/** A YAML document with the line of every node, for diagnostics that name `file:line`. */
export class YamlSource {
  readonly file: string;
  readonly doc: Document;
  readonly diagnostics: Diagnostic[];
  readonly #lines: LineCounter;

  constructor(file: string, text: string) {
    this.file = file;
    this.#lines = new LineCounter();
    this.doc = parseDocument(text, { lineCounter: this.#lines, uniqueKeys: true, prettyErrors: false });
    this.diagnostics = [
      ...this.doc.errors.map((e) => this.#fromYaml("error", e.message, e.pos[0])),
      ...this.doc.warnings.map((e) => this.#fromYaml("warning", e.message, e.pos[0])),
    ];
  }

  #fromYaml(severity: Diagnostic["severity"], message: string, offset: number): Diagnostic {
    const line = this.#lines.linePos(offset).line;
    return { severity, file: this.file, line, message: `${this.file}:${line}: ${message.split("\n")[0]}` };
  }

  /** The document as plain data (undefined when it has errors or is empty). */
  data(): unknown {
    if (this.doc.errors.length > 0) return undefined;
    return this.doc.toJS({ maxAliasCount: 100 });
  }

  lineOf(offset: number): number {
    return this.#lines.linePos(offset).line;
  }

  /** The line of the node at `path`, or of its closest ancestor that exists; with `key`, of that key in the mapping. */
  line(path: FieldPath, key?: string): number | undefined {
    if (key !== undefined) {
      const map = this.doc.getIn(path, true);
      if (isMap(map)) {
        const pair = map.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === key);
        const range = pair && isScalar(pair.key) ? pair.key.range : undefined;
        if (range) return this.lineOf(range[0]);
      }
    }
    for (let n = path.length; n >= 0; n--) {
      const node = (n === 0 ? this.doc.contents : this.doc.getIn(path.slice(0, n), true)) as Node | null | undefined;
      if (node && typeof node === "object" && "range" in node && node.range) return this.lineOf(node.range[0]);
    }
    return undefined;
  }

  /** The line where the text of a string at `path` starts (the line after `|` or `>` for block scalars). */
  textLine(path: FieldPath): number {
    const node = this.doc.getIn(path, true);
    if (isScalar(node) && node.range) {
      const line = this.lineOf(node.range[0]);
      return node.type === "BLOCK_LITERAL" || node.type === "BLOCK_FOLDED" ? line + 1 : line;
    }
    return 1;
  }

  /** A diagnostic about the field at `path`, naming `file:line: path:`. */
  at(severity: Diagnostic["severity"], path: FieldPath, text: string, key?: string): Diagnostic {
    const fullPath = key === undefined ? path : [...path, key];
    const line = this.line(path, key);
    const where = line === undefined ? this.file : `${this.file}:${line}`;
    const shown = formatPath(fullPath);
    return {
      severity,
      file: this.file,
      ...(line === undefined ? {} : { line }),
      ...(shown === "" ? {} : { path: shown }),
      message: shown === "" ? `${where}: ${text}` : `${where}: ${shown}: ${text}`,
    };
  }
}

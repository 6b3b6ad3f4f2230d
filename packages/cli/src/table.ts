import { stripVTControlCharacters } from "node:util";
import pc from "picocolors";

/** How many columns a string takes on a terminal (colour codes take none). */
export function visibleLength(text: string): number {
  return [...stripVTControlCharacters(text)].length;
}

/** Pads (or, with `cut`, shortens with `…`) to exactly `width` visible columns. */
export function fit(text: string, width: number, cut = true): string {
  const length = visibleLength(text);
  if (length <= width) return text + " ".repeat(width - length);
  if (!cut) return text;
  const plain = [...stripVTControlCharacters(text)];
  return `${plain.slice(0, Math.max(0, width - 1)).join("")}…`;
}

/**
 * A compact table for people: a dim header, one line per row, columns two spaces apart,
 * no rules. With `width`, the last column is shortened so no line is longer than that.
 * Right-aligned columns (numbers, times) are named in `right`.
 */
export function table(head: string[], rows: string[][], options: { width?: number | undefined; right?: number[] } = {}): string {
  const widths = head.map((h, i) => Math.max(visibleLength(h), ...rows.map((r) => visibleLength(r[i] ?? ""))));
  const right = new Set(options.right ?? []);
  const last = head.length - 1;
  const line = (cells: string[], dim: boolean) => {
    const out = cells.map((c, i) => {
      if (i === last) return right.has(i) ? " ".repeat(Math.max(0, (widths[i] ?? 0) - visibleLength(c))) + c : c;
      if (right.has(i)) return " ".repeat(Math.max(0, (widths[i] ?? 0) - visibleLength(c))) + c;
      return fit(c, widths[i] ?? 0, false);
    });
    let text = out.join("  ");
    if (options.width !== undefined && visibleLength(text) > options.width) {
      const before = out.slice(0, last).join("  ");
      text = `${before}  ${fit(cells[last] ?? "", Math.max(1, options.width - visibleLength(before) - 2))}`.trimEnd();
    }
    return dim ? pc.dim(text.trimEnd()) : text.trimEnd();
  };
  return [line(head, true), ...rows.map((r) => line(r, false))].join("\n");
}

/** The terminal's width when output goes to one; undefined when piped (lines are not cut). */
export function terminalWidth(): number | undefined {
  return process.stdout.isTTY ? process.stdout.columns || 80 : undefined;
}

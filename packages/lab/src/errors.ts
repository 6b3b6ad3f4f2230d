import { ErrorCode, StackbusError, type Diagnostic } from "@stackbus/protocol";

const SHOWN = 50;

/**
 * A lab bundle (manifest or one of its local.confs) that does not validate. The message
 * lists the errors; `diagnostics` (also in `data` on the wire) holds every diagnostic,
 * warnings included.
 */
export class InvalidManifestError extends StackbusError<typeof ErrorCode.InvalidManifest> {
  override name = "InvalidManifestError";
  readonly file: string;
  readonly diagnostics: readonly Diagnostic[];

  constructor(file: string, diagnostics: Diagnostic[], what = `${file} is not a valid lab`) {
    const errors = diagnostics.filter((d) => d.severity === "error");
    const lines = errors.slice(0, SHOWN).map((d) => `  ${d.message}`);
    if (errors.length > SHOWN) lines.push(`  ... and ${errors.length - SHOWN} more`);
    super(ErrorCode.InvalidManifest, `${what} (${errors.length} error${errors.length === 1 ? "" : "s"}):\n${lines.join("\n")}`, { file, diagnostics });
    this.file = file;
    this.diagnostics = diagnostics;
  }
}

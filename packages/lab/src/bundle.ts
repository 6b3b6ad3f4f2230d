import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { ConfigApplyRequest, Diagnostic } from "@stackbus/protocol";
import { validateLab, type LabValidation } from "./manifest.js";
import { YamlSource, type FieldPath } from "./yaml.js";

function readError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === "ENOENT") return "no such file";
  if (e.code === "EACCES") return "permission denied";
  if (e.code === "EISDIR") return "it is a directory";
  return e.message;
}

/**
 * Reads the manifest file and every local.conf it references (paths relative to the
 * manifest) into the bundle sent over the bus. File-read problems become diagnostics, not
 * throws. The bundle names the manifest by its absolute path, so `topDir`/`dest` resolve
 * the same wherever the bundle is validated.
 */
export function readLabBundle(path: string): { request: ConfigApplyRequest; diagnostics: Diagnostic[] } {
  const file = resolve(path);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    return {
      request: { file, text: "", files: {} },
      diagnostics: [{ severity: "error", file, message: `${file}: cannot read the lab manifest: ${readError(err)}` }],
    };
  }
  const source = new YamlSource(file, text);
  const data = source.data();
  const refs: Array<{ path: FieldPath; ref: string }> = [];
  if (data !== null && typeof data === "object" && !Array.isArray(data)) {
    const record = data as Record<string, unknown>;
    const common = record["common"] as Record<string, unknown> | undefined;
    if (typeof common?.["localConf"] === "string") refs.push({ path: ["common", "localConf"], ref: common["localConf"] });
    const hosts = record["hosts"];
    if (Array.isArray(hosts)) {
      hosts.forEach((h: unknown, i) => {
        const ref = (h as Record<string, unknown> | null)?.["localConf"];
        if (typeof ref === "string") refs.push({ path: ["hosts", i, "localConf"], ref });
      });
    }
  }
  const files: Record<string, string> = {};
  const diagnostics: Diagnostic[] = [];
  for (const { path, ref } of refs) {
    if (Object.hasOwn(files, ref)) continue;
    const target = resolve(dirname(file), ref);
    try {
      files[ref] = readFileSync(target, "utf8");
    } catch (err) {
      diagnostics.push(source.at("error", path, `cannot read ${target}: ${readError(err)}`));
    }
  }
  return { request: { file, text, files }, diagnostics };
}

/**
 * `stackbus lab validate FILE`, offline: reads the bundle and validates it, every problem
 * once (a local.conf that could not be read is reported by the read, not again as missing
 * from the bundle).
 */
export function validateLabFile(path: string): LabValidation & { request: ConfigApplyRequest } {
  const { request, diagnostics } = readLabBundle(path);
  if (request.text === "" && diagnostics.length > 0) return { ok: false, diagnostics, request };
  const validation = validateLab(request);
  const unread = new Set(diagnostics.map((d) => d.path));
  const rest = validation.diagnostics.filter((d) => !(d.path !== undefined && unread.has(d.path) && d.message.includes("was not sent with the manifest")));
  const all = [...diagnostics, ...rest];
  const ok = validation.ok && !all.some((d) => d.severity === "error");
  return ok && validation.lab ? { ok, lab: validation.lab, diagnostics: all, request } : { ok: false, diagnostics: all, request };
}

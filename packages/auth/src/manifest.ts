import { readLabHosts } from "@stackbus/lab";
import { generateAuth, writeAuth, type AuthOptions, type GeneratedAuth } from "./generate.js";

/**
 * `stackbus auth gen --lab FILE --out DIR`: reads the lab and its hosts from the manifest,
 * generates the identities and configs, and writes them under `outDir`.
 */
export async function authGenFromManifestFile(
  path: string,
  outDir: string,
  options: Omit<AuthOptions, "lab" | "hosts"> & { overwrite?: boolean },
): Promise<{ generated: GeneratedAuth; written: string[] }> {
  const { lab, hosts } = readLabHosts(path);
  const { overwrite, ...rest } = options;
  const generated = await generateAuth({ ...rest, lab, hosts });
  const written = writeAuth(outDir, generated, { overwrite: overwrite ?? false });
  return { generated, written };
}

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { z } from "zod";
import { ManifestSchema, validateLab } from "./manifest.js";
import { labReference, REFERENCE_EXAMPLE } from "./reference.js";

const DOC = new URL("../../../docs/lab.md", import.meta.url);

interface Node {
  description?: string;
  properties?: Record<string, Node>;
  items?: Node;
}

/** Every key of the manifest, as `a.b[].c`, with its schema node. */
function keysOf(node: Node, path = ""): Array<[string, Node]> {
  const out: Array<[string, Node]> = [];
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    const where = path ? `${path}.${key}` : key;
    out.push([where, child], ...keysOf(child, where));
    if (child.items) out.push(...keysOf(child.items, `${where}[]`));
  }
  return out;
}

describe("docs/lab.md - the manifest reference, generated from the schema", () => {
  it("docs/lab.md is what the schema generates now (run `node scripts/docs.mjs` after changing the manifest)", () => {
    assert.equal(readFileSync(DOC, "utf8"), labReference(), "docs/lab.md is stale: run `node scripts/docs.mjs` and commit it");
  });

  it("every key of the manifest has a description, and the reference names it", () => {
    const reference = labReference();
    const keys = keysOf(z.toJSONSchema(ManifestSchema, { io: "input", unrepresentable: "any" }) as Node);
    assert.ok(keys.length > 40, `${keys.length} keys`);
    for (const [key, node] of keys) {
      assert.ok(node.description, `${key} has no description`);
      assert.ok(reference.includes(`| \`${key.split(".").pop()?.replace("[]", "")}\` |`), `${key} is in the reference`);
    }
    for (const recent of ["runner", "devstackUser", "waveSteps", "unstackErrors", "allowSchemes", "maxDownloadBytes"]) {
      assert.match(reference, new RegExp(`\\| \`${recent}\` \\|`), recent);
    }
    assert.match(reference, /### `finally\[\]`/);
    assert.match(reference, /### `plugins\.limits`/);
    assert.match(reference, /\| `allowSchemes` \| list of one of `https`, `http`, `file`, `path` \| `\[https, http\]` \|/);
  });

  it("the reference's example is a valid lab", () => {
    const result = validateLab({ file: "lab.yaml", text: REFERENCE_EXAMPLE, files: { "common.conf": "[[local|localrc]]\nADMIN_PASSWORD=secret\n", "controller.conf": "[[local|localrc]]\nHOST_IP=10.0.0.11\n" } });
    assert.deepEqual(result.diagnostics.filter((d) => d.severity === "error"), []);
    assert.equal(result.ok, true);
    assert.deepEqual(result.lab?.defaults.waveSteps, ["extra", "test-config"]);
  });
});

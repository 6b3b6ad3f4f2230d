import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { Bus, silentLogger } from "@stackbus/bus";
import { ConfigApplyReplySchema, ConfigApplyRequestSchema, subjects } from "@stackbus/protocol";
import { startNats, track, waitFor } from "@stackbus/testkit";

describe("config service main", () => {
  it("connects to $NATS_URL, serves applies, and exits 0 on SIGTERM", async () => {
    const server = await startNats();
    const client = await Bus.connect({ servers: server.url, name: "client", logger: silentLogger() });
    const child = spawn(process.execPath, [fileURLToPath(new URL("./main.js", import.meta.url))], {
      env: { ...process.env, NATS_URL: server.url, STACKBUS_LOG_LEVEL: "warn" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    track(child);
    let stderr = "";
    child.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
    try {
      const request = { file: "lab.yaml", text: "lab: mu\nhosts:\n  - name: h1\n", files: {} };
      const reply = await waitFor(
        "the config service to answer",
        () =>
          client
            .request(subjects.configApply("mu"), ConfigApplyRequestSchema, request, ConfigApplyReplySchema, { timeoutMs: 1000 })
            .catch(() => undefined),
        15_000,
        100,
      );
      assert.equal(reply.revision, 1);
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      child.kill("SIGTERM");
      assert.equal(await exited, 0, stderr);
    } finally {
      child.kill("SIGKILL");
      await client.drain();
      await server.stop();
    }
  });
});

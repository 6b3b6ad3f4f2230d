import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createUser, fromPublic, fromSeed } from "@nats-io/nkeys";
import { canonicalJson, commandSigner, commandVerifier } from "./signing.js";

const seed = () => new TextDecoder().decode(createUser().getSeed());

describe("command signing - proof that the coordinator sent a command, for this host", () => {
  const signer = commandSigner(seed());
  const verifier = commandVerifier(signer.publicKey);
  const command = { lab: "l", runId: "r1", kind: "stack", attempt: 1, step: "install", facts: { a: { X: "1" } } };

  it("verifies what the signer signed, whatever order the receiver's keys come in", () => {
    const signed = signer.sign("sb.l.host.a.cmd", command);
    const reordered = { facts: signed.facts, step: signed.step, attempt: signed.attempt, kind: signed.kind, runId: signed.runId, lab: signed.lab, sig: signed.sig };
    assert.equal(verifier.verify("sb.l.host.a.cmd", reordered), true);
  });

  it("refuses a command without a signature, one for another host's subject, one changed, and one signed by another key", () => {
    const signed = signer.sign("sb.l.host.a.cmd", command);
    assert.equal(verifier.verify("sb.l.host.a.cmd", command), false, "unsigned");
    assert.equal(verifier.verify("sb.l.host.b.cmd", signed), false, "delivered to another host");
    assert.equal(verifier.verify("sb.l.host.a.cancel", signed), false, "delivered to another subject of the host");
    assert.equal(verifier.verify("sb.l.host.a.cmd", { ...signed, step: "clean" }), false, "changed");
    assert.equal(verifier.verify("sb.l.host.a.cmd", { ...signed, facts: { a: { X: "6.6.6.6" } } }), false, "facts changed");
    assert.equal(verifier.verify("sb.l.host.a.cmd", commandSigner(seed()).sign("sb.l.host.a.cmd", command)), false, "another key");
    assert.equal(verifier.verify("sb.l.host.a.cmd", { ...signed, sig: "not-base64!" }), false, "garbage");
  });

  it("signs as the nkey itself signs (Ed25519): a signature made with nkeys verifies, and nkeys verifies ours", () => {
    const text = seed();
    const kp = fromSeed(new TextEncoder().encode(text));
    const ours = commandSigner(text).sign("sb.l.host.a.cmd", command);
    const bytes = new TextEncoder().encode(`sb.l.host.a.cmd\n${canonicalJson(command)}`);
    assert.equal(ours.sig, Buffer.from(kp.sign(bytes)).toString("base64url"));
    assert.equal(fromPublic(kp.getPublicKey()).verify(bytes, Buffer.from(ours.sig, "base64url")), true);
    assert.equal(commandVerifier(kp.getPublicKey()).verify("sb.l.host.a.cmd", { ...command, sig: Buffer.from(kp.sign(bytes)).toString("base64url") }), true);
  });

  it("refuses keys that are not nkeys, naming what was given", () => {
    assert.throws(() => commandVerifier("nonsense"), /"nonsense" is not an nkey public key/);
    assert.throws(() => commandSigner("nonsense"), /not an nkey seed/);
  });

  it("canonical JSON sorts keys at every level and drops undefined", () => {
    assert.equal(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: undefined }], c: "x" } }), '{"a":{"c":"x","d":[2,{"z":1}]},"b":1}');
  });
});

import { createPrivateKey, createPublicKey, sign as ed25519Sign, verify as ed25519Verify, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { createUser, fromPublic, fromSeed, type KeyPair } from "@nats-io/nkeys";
import { ErrorCode, StackbusError } from "@stackbus/protocol";

/**
 * Proof of who sent a command: the coordinator signs each phase command and cancel with
 * an nkey (ed25519), over the subject it sends it on and the message without its `sig`;
 * an agent given the coordinator's public key accepts only messages that verify. So a
 * message that reaches a host's command subject any other way (a stream delivered there
 * by a consumer or a get, a forged request) is refused, and one signed for another host
 * or run is too.
 */
export interface CommandSigner {
  /** The public key agents check against (`U...`). */
  readonly publicKey: string;
  /** The message with its `sig` for `subject`. */
  sign<T extends object>(subject: string, message: T): T & { sig: string };
}

export interface CommandVerifier {
  readonly publicKey: string;
  /** True when `message.sig` is the signer's over `subject` and the rest of `message`. */
  verify(subject: string, message: Readonly<Record<string, unknown>> & { sig?: string | undefined }): boolean;
}

/** JSON with object keys sorted at every level: the same bytes on both sides whatever the key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

function signedBytes(subject: string, message: object): Uint8Array {
  const rest = { ...(message as Record<string, unknown>) };
  delete rest["sig"];
  return new TextEncoder().encode(`${subject}\n${canonicalJson(rest)}`);
}

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** The bytes of an nkey's base32 text (prefix, key, checksum; already checked by nkeys). */
function base32Bytes(text: string): Buffer {
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const c of text) {
    value = ((value << 5) | BASE32.indexOf(c)) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

// DER headers of an Ed25519 private key (PKCS #8) and public key (SPKI) around their 32 raw bytes.
const PKCS8_ED25519 = Buffer.from("302e020100300506032b657004220420", "hex");
const SPKI_ED25519 = Buffer.from("302a300506032b6570032100", "hex");

/**
 * The nkey as a key of Node's crypto, which signs and checks Ed25519 some 100 times
 * faster than the nkeys library's JavaScript (the same signatures: Ed25519 is deterministic).
 */
function privateKeyOf(seed: string): KeyObject {
  // A seed is two prefix bytes, the 32-byte Ed25519 seed, and a 2-byte checksum.
  return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, base32Bytes(seed).subarray(2, 34)]), format: "der", type: "pkcs8" });
}

function publicKeyOf(publicKey: string): KeyObject {
  // A public key is one prefix byte, the 32-byte key, and a 2-byte checksum.
  return createPublicKey({ key: Buffer.concat([SPKI_ED25519, base32Bytes(publicKey).subarray(1, 33)]), format: "der", type: "spki" });
}

/** A signer from an nkey seed (the text of a `.nk` file). */
export function commandSigner(seed: string): CommandSigner {
  let kp: KeyPair;
  try {
    kp = fromSeed(new TextEncoder().encode(seed.trim()));
  } catch (err) {
    throw new StackbusError(ErrorCode.InvalidArgument, "the command signing key is not an nkey seed", {}, { cause: err });
  }
  const key = privateKeyOf(seed.trim());
  return {
    publicKey: kp.getPublicKey(),
    sign: (subject, message) => ({ ...message, sig: ed25519Sign(null, signedBytes(subject, message), key).toString("base64url") }),
  };
}

/** A new signing key: its seed (the text of a `.nk` file) and its signer. */
export function newCommandSigner(): { seed: string; signer: CommandSigner } {
  const seed = new TextDecoder().decode(createUser().getSeed());
  return { seed, signer: commandSigner(seed) };
}

/** A signer from an nkey seed file. */
export function commandSignerFromFile(path: string): CommandSigner {
  let seed: string;
  try {
    seed = readFileSync(path, "utf8");
  } catch (err) {
    throw new StackbusError(ErrorCode.InvalidArgument, `cannot read the command signing key ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { file: path }, { cause: err });
  }
  return commandSigner(seed);
}

/** A verifier of the coordinator's public key. */
export function commandVerifier(publicKey: string): CommandVerifier {
  let kp: KeyPair;
  try {
    kp = fromPublic(publicKey.trim());
  } catch (err) {
    throw new StackbusError(ErrorCode.InvalidArgument, `${JSON.stringify(publicKey)} is not an nkey public key (the coordinator's, U...)`, {}, { cause: err });
  }
  const key = publicKeyOf(kp.getPublicKey());
  return {
    publicKey: kp.getPublicKey(),
    verify(subject, message) {
      if (typeof message.sig !== "string" || message.sig.length === 0) return false;
      try {
        return ed25519Verify(null, signedBytes(subject, message), key, Buffer.from(message.sig, "base64url"));
      } catch {
        return false;
      }
    },
  };
}

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

/** A signer from an nkey seed (the text of a `.nk` file). */
export function commandSigner(seed: string): CommandSigner {
  let kp: KeyPair;
  try {
    kp = fromSeed(new TextEncoder().encode(seed.trim()));
  } catch (err) {
    throw new StackbusError(ErrorCode.InvalidArgument, "the command signing key is not an nkey seed", {}, { cause: err });
  }
  return {
    publicKey: kp.getPublicKey(),
    sign: (subject, message) => ({ ...message, sig: Buffer.from(kp.sign(signedBytes(subject, message))).toString("base64url") }),
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
  return {
    publicKey: kp.getPublicKey(),
    verify(subject, message) {
      if (typeof message.sig !== "string" || message.sig.length === 0) return false;
      try {
        return kp.verify(signedBytes(subject, message), Buffer.from(message.sig, "base64url"));
      } catch {
        return false;
      }
    },
  };
}

import { BadMessageError } from "@stackbus/protocol";
import type { z } from "zod";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Serialises a value after checking it against its schema (the sender's end). */
export function encode<S extends z.ZodType>(subject: string, schema: S, value: z.input<S>): Uint8Array {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw badMessage(subject, parsed.error, "refusing to send");
  return encoder.encode(JSON.stringify(parsed.data));
}

/** Parses bytes received on `subject` with its schema (the receiver's end). */
export function decode<S extends z.ZodType>(subject: string, schema: S, data: Uint8Array): z.output<S> {
  let json: unknown;
  try {
    json = data.length === 0 ? undefined : JSON.parse(decoder.decode(data));
  } catch (err) {
    throw new BadMessageError(subject, `message on ${subject} is not valid JSON: ${(err as Error).message}`, []);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw badMessage(subject, parsed.error, "message");
  return parsed.data;
}

function badMessage(subject: string, error: z.ZodError, what: string): BadMessageError {
  const issues = error.issues.map((i) => `${i.path.length > 0 ? i.path.join(".") : "(message)"}: ${i.message}`);
  return new BadMessageError(subject, `${what} on ${subject} does not match its schema: ${issues.join("; ")}`, issues);
}

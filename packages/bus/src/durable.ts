import type { PubAck } from "@nats-io/jetstream";
import { ErrorCode, StackbusError } from "@stackbus/protocol";
import type { z } from "zod";
import { encode } from "./codec.js";
import type { BusCore } from "./core.js";
import { findViolation } from "./errors.js";
import { sleep } from "./retry.js";

export interface DurableOptions {
  /** Stored once however often it is retried (the stream's duplicate window). */
  msgID?: string;
  /** Keep retrying transient failures until this long has passed. @default 60000 */
  deadlineMs?: number;
}

/** Publishes into a JetStream stream and waits for its ack, retrying until the deadline. */
export async function publishDurable<S extends z.ZodType>(core: BusCore, subject: string, schema: S, value: z.input<S>, options: DurableOptions = {}): Promise<PubAck> {
  const payload = encode(subject, schema, value);
  const deadline = Date.now() + (options.deadlineMs ?? 60_000);
  let delay = 100;
  for (;;) {
    try {
      return await core.js.publish(subject, payload, options.msgID ? { msgID: options.msgID } : {});
    } catch (err) {
      const violation = findViolation(err);
      if (violation) throw core.denials.error(violation, err);
      if (Date.now() + delay > deadline || core.closed) {
        throw new StackbusError(ErrorCode.Unavailable, `could not store a message on ${subject}: ${(err as Error).message}`, { subject }, { cause: err });
      }
      core.log.debug({ subject, err: (err as Error).message }, "durable publish failed; retrying");
      await sleep(delay);
      delay = Math.min(delay * 2, 1_000);
    }
  }
}

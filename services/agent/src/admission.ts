import { ErrorCode, INBOX_ROOT, StackbusError } from "@stackbus/protocol";
import type { CommandVerifier, Logger } from "@stackbus/bus";

/** What the agent's request handlers see of the NATS message they answer. */
interface Delivered {
  reply?: string | undefined;
}

/**
 * Who may make this host act. Every request the agent acts on must come as a request,
 * answered on a reply inbox: a stream message the server delivers onto a host's subject
 * (a push consumer's `deliver_subject`, a get's reply subject) carries a JetStream reply
 * subject or none, and is refused. Phase commands and cancels must also carry the
 * coordinator's signature, over their subject and content, when the agent knows its key.
 */
export function admission(verifier: CommandVerifier | undefined, log: Logger) {
  const refuse = (what: string, why: string): never => {
    log.warn({ what }, `refused ${what}: ${why}`);
    throw new StackbusError(ErrorCode.PermissionDenied, `refused ${what}: ${why}`);
  };
  const requested = (msg: Delivered, what: string): void => {
    if (!msg.reply?.startsWith(`${INBOX_ROOT}.`)) refuse(what, `it was not sent as a request (reply subject ${JSON.stringify(msg.reply ?? "")})`);
  };
  return {
    requested,
    signed(subject: string, msg: Delivered, message: { sig?: string | undefined }, what: string): void {
      requested(msg, what);
      if (verifier && !verifier.verify(subject, message)) refuse(what, message.sig ? "its signature is not the coordinator's" : "it is not signed by the coordinator");
    },
  };
}

export { RunMachine, planAttempt, TIMEOUT_GRACE_MS, RESEND_MS, CANCEL_GRACE_MS, type Decision, type EventDraft } from "./machine.js";

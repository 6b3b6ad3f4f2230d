import type { NatsConnection } from "@nats-io/nats-core";
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { Denials } from "./denials.js";
import type { Logger } from "./logger.js";

/** What the bus's parts share: one connection, its JetStream client, its log and its refusals. */
export interface BusCore {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly log: Logger;
  /** JetStream replicas for what this client creates. */
  readonly replicas: number;
  readonly denials: Denials;
  /** True once the bus is drained. */
  readonly closed: boolean;
  jsm(): Promise<JetStreamManager>;
}

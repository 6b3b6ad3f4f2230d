export {
  Bus,
  defaultNatsUrl,
  natsDigestToHex,
  sleep,
  withRetry,
  AckPolicy,
  DeliverPolicy,
  type BusOptions,
  type TlsSettings,
  type RequestOptions,
  type ServeOptions,
  type Handler,
  type KV,
  type ObjectStore,
  type Msg,
  type Subscription,
  type NatsConnection,
} from "./bus.js";
export { encode, decode } from "./codec.js";
export { PermissionDeniedError, type DeniedOperation } from "./errors.js";
export { createLogger, silentLogger, type Logger } from "./logger.js";
export { onShutdown } from "./signals.js";

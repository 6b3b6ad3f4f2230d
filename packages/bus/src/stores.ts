import { StorageType } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { Objm, setSha256Backend, type ObjectStore } from "@nats-io/obj";
import type { BusCore } from "./core.js";
import { retryTransient } from "./retry.js";

// Object-store digests are computed by Node's crypto rather than the client's
// pure-JS default, which hashed a plugin archive several times slower than it arrived.
setSha256Backend("native");

/** The object store's `SHA-256=<base64url>` digest as stackbus's `sha256-<hex>`. */
export function natsDigestToHex(digest: string): string {
  const b64 = digest.replace(/^SHA-256=/, "").replace(/=+$/, "");
  return `sha256-${Buffer.from(b64, "base64url").toString("hex")}`;
}

/** Opens KV buckets and object stores, creating them when they do not exist. */
export class Stores {
  readonly #core: BusCore;
  readonly #kvm: Kvm;
  readonly #objm: Objm;

  constructor(core: BusCore) {
    this.#core = core;
    this.#kvm = new Kvm(core.js);
    this.#objm = new Objm(core.js);
  }

  kv(bucket: string, options: { history?: number } = {}): Promise<KV> {
    return this.#core.denials.rethrow(() =>
      retryTransient(() => this.#kvm.create(bucket, { history: options.history ?? 1, replicas: this.#core.replicas, timeout: 10_000 })),
    );
  }

  objectStore(bucket: string): Promise<ObjectStore> {
    return this.#core.denials.rethrow(() => retryTransient(() => this.#objm.create(bucket, { replicas: this.#core.replicas, storage: StorageType.File })));
  }
}

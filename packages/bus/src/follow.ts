import { DeliverPolicy } from "@nats-io/jetstream";
import type { BusCore } from "./core.js";
import { sleep, withRetry } from "./retry.js";
import type { StoredMessage } from "./streams.js";

export interface FollowOptions {
  /** The first sequence to deliver. @default the stream's first message */
  startSeq?: number;
  /** Deliver only messages stored after the call. */
  onlyNew?: boolean;
  signal?: AbortSignal;
  /** A consumer that delivers nothing for this long is replaced. @default 5000 */
  quietMs?: number;
}

/** A followed message, with how many more the stream held for the filter when it came. */
export interface FollowedMessage extends StoredMessage {
  pending: number;
}

/**
 * Follows `stream`: stored messages first, then live ones, until the signal aborts or the
 * bus closes. Resumes from the last delivered sequence whenever its consumer fails or goes quiet.
 */
export async function* followStream(core: BusCore, stream: string, filter: string, options: FollowOptions = {}): AsyncGenerator<FollowedMessage> {
  let next = options.startSeq && options.startSeq > 0 ? options.startSeq : 0;
  if (options.onlyNew) {
    const info = await withRetry(`reading stream ${stream}`, async () => (await core.jsm()).streams.info(stream));
    next = info.state.last_seq + 1;
  }
  const quietMs = options.quietMs ?? 5_000;
  while (!options.signal?.aborted && !core.closed) {
    let consumer;
    try {
      // Bounded: a creation the server never answers (its node just died) is given up and
      // tried again, so an abort is seen within seconds.
      consumer = await withRetry(
        `following stream ${stream}`,
        () =>
          core.js.consumers.get(stream, {
            filter_subjects: filter,
            ...(next > 0 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: next } : { deliver_policy: DeliverPolicy.All }),
          }),
        { attemptMs: 5_000, deadlineMs: 5_000 },
      );
    } catch (err) {
      core.log.debug({ stream, err: (err as Error).message }, "cannot follow the stream yet; trying again");
      await sleep(500);
      continue;
    }
    let quietSince = Date.now();
    try {
      while (!options.signal?.aborted) {
        const batch = await consumer.fetch({ max_messages: 256, expires: 1_000 });
        // A pull whose server went away is never answered: end it ourselves and resume.
        let stalled = false;
        const watchdog = setTimeout(() => {
          stalled = true;
          batch.stop();
        }, 4_000);
        let got = 0;
        try {
          for await (const m of batch) {
            got++;
            next = m.seq + 1;
            yield { subject: m.subject, seq: m.seq, data: m.data, time: m.info.timestampNanos / 1e6, pending: m.info.pending };
            if (options.signal?.aborted) return;
          }
        } finally {
          clearTimeout(watchdog);
        }
        if (stalled) break;
        if (got > 0) quietSince = Date.now();
        else if (Date.now() - quietSince > quietMs) break;
      }
    } catch (err) {
      core.log.debug({ stream, err: (err as Error).message }, "following the stream failed; resuming");
      await sleep(250);
    } finally {
      await consumer.delete().catch(() => undefined);
    }
  }
}

import { ErrorCode, StackbusError } from "@stackbus/protocol";
import { bashFd3, type BashScriptOptions } from "@stackbus/testkit";
import { expansionScript, parseExpansionOutput, type Expander } from "./expand.js";

/** An Expander that runs a one-off `bash` (env, cwd given) per batch, for the tests of this package. */
export function bashExpander(options: BashScriptOptions = {}): Expander {
  return async (requests) => {
    if (requests.length === 0) return [];
    let output: string;
    try {
      output = await bashFd3(expansionScript(requests, 3), options);
    } catch (err) {
      throw new StackbusError(ErrorCode.MergeFailed, `expanding local.conf text: ${(err as Error).message}`, {}, { cause: err });
    }
    return parseExpansionOutput(output, requests.length);
  };
}

import { ErrorCode, StackbusError, type Facts } from "@stackbus/protocol";

/** Environment variable naming the file `stackbus_export` appends records to. */
export const FACTS_FILE_VAR = "STACKBUS_FACTS_FILE";
/** Global associative array ("HOST/VAR" -> value) `stackbus_fact` reads. */
export const FACTS_ARRAY = "STACKBUS_FACTS";
/** Function `die` calls to end a hook; the agent redefines it in its session. */
export const DIE_EXIT_HOOK = "__stackbus_die_exit";

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A facts file that is not a sequence of `NAME\0VALUE\0` records with shell-identifier names. */
export class FactsFileError extends StackbusError {
  override name = "FactsFileError";
  readonly record: number;
  constructor(record: number, problem: string) {
    super(ErrorCode.InvalidArgument, `${FACTS_FILE_VAR}: record ${record}: ${problem}`, { record, problem });
    this.record = record;
  }
}

/**
 * Reads the records `stackbus_export` appended (`NAME\0VALUE\0` each, UTF-8) into
 * name -> value; a name exported again takes its last value. An empty file gives {}.
 * @throws FactsFileError naming the 1-based record that is truncated or badly named.
 */
export function parseFactsFile(data: Uint8Array | string): Record<string, string> {
  const text = typeof data === "string" ? data : new TextDecoder().decode(data);
  const facts: Record<string, string> = {};
  if (text.length === 0) return facts;
  if (!text.endsWith("\0")) {
    throw new FactsFileError(Math.floor((text.split("\0").length - 1) / 2) + 1, "truncated: the file does not end with a NUL");
  }
  const fields = text.slice(0, -1).split("\0");
  if (fields.length % 2 !== 0) {
    throw new FactsFileError(Math.ceil(fields.length / 2), "truncated: a name without a value");
  }
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i] ?? "";
    if (!IDENTIFIER.test(name)) {
      throw new FactsFileError(i / 2 + 1, `"${name}" is not a shell variable name`);
    }
    Object.defineProperty(facts, name, { value: fields[i + 1] ?? "", enumerable: true, writable: true, configurable: true });
  }
  return facts;
}

/** Quotes any string (without NUL) as one bash word. */
export function bashQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/**
 * The bash statement that (re)defines the global `STACKBUS_FACTS` array from facts
 * (host -> variable -> value), for the agent to run before each step so that
 * `stackbus_fact HOST VAR` answers. Keys are "HOST/VAR"; every key and value is quoted.
 */
export function factsDeclaration(facts: Facts): string {
  const entries: string[] = [];
  for (const [host, vars] of Object.entries(facts)) {
    for (const [name, value] of Object.entries(vars)) {
      entries.push(`[${bashQuote(`${host}/${name}`)}]=${bashQuote(value)}`);
    }
  }
  return `unset ${FACTS_ARRAY}; declare -gA ${FACTS_ARRAY}=(${entries.join(" ")})`;
}

export { bashlibEntry, stackbusFunctionsPath, BashlibNotFoundError } from "./paths.js";
export { BASHLIB_FUNCTIONS, STACKBUS_FUNCTIONS } from "./functions.js";
export {
  FACTS_FILE_VAR,
  FACTS_ARRAY,
  DIE_EXIT_HOOK,
  FactsFileError,
  parseFactsFile,
  factsDeclaration,
  bashQuote,
} from "./facts.js";

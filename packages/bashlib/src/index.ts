export { bashlibEntry, stackbusFunctionsPath, BashlibNotFoundError } from "./paths.js";
export { BASHLIB_FUNCTIONS, STACKBUS_FUNCTIONS } from "./functions.js";

/**
 * The functions `bash/functions.sh` defines for hooks, in alphabetical order: DevStack's
 * helper names (with DevStack's behaviour, see the README for where we differ) and the
 * stackbus ones. Names starting with `__stackbus_` other than the die hook are internal
 * and left out. For docs and plans; a test keeps this list equal to what bash defines.
 */
export const BASHLIB_FUNCTIONS: readonly string[] = Object.freeze([
  "__stackbus_die_exit",
  "_cleanup_service_list",
  "backtrace",
  "bool_to_int",
  "define_plugin",
  "deprecated",
  "die",
  "die_if_not_set",
  "disable_all_services",
  "disable_negated_services",
  "disable_service",
  "echo_nolog",
  "echo_summary",
  "enable_plugin",
  "enable_service",
  "err",
  "err_if_not_set",
  "export_proxy_variables",
  "function_exists",
  "generate_hex_string",
  "get_extra_file",
  "is_nfs_directory",
  "is_plugin_enabled",
  "is_service_enabled",
  "is_set",
  "isset",
  "plugin_requires",
  "read_password",
  "remove_disabled_services",
  "safe_chmod",
  "safe_chown",
  "stackbus_export",
  "stackbus_fact",
  "sudo_with_proxies",
  "time_start",
  "time_stop",
  "trueorfalse",
  "use_exclusive_service",
  "verify_disabled_services",
  "warn",
]);

/** The functions `bash/stackbus.sh` defines (sourced alone after DevStack's `functions` with --devstack-dir). */
export const STACKBUS_FUNCTIONS: readonly string[] = Object.freeze(["__stackbus_die_exit", "stackbus_export", "stackbus_fact"]);

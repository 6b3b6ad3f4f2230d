# stackbus helper library: the DevStack helper functions hooks call.
#
# The agent sources this file into its bash session before any hook. Sourcing it
# only defines functions and a few variables: it runs nothing with side effects,
# sets no shell options, reads no stdin, and raises no ERR under `set -o errtrace`.
# It may be sourced again; state (services, plugins, timers) is kept.
#
# Parts, each sourced from the directory of this file:
#   lib/common.sh      die, warn, err, deprecated, echo_summary, trueorfalse, isset, ...
#   lib/services.sh    is_service_enabled, enable_service, disable_service, ...
#   lib/plugins.sh     enable_plugin, is_plugin_enabled, define_plugin, plugin_requires
#   lib/ini-config.sh  iniset, iniget, ..., localconf_set, localrc_set
#   lib/distro.sh      GetOSVersion, GetDistro, is_ubuntu, is_fedora, packages
#   lib/process.sh     run_process, stop_process, restart_service, wait_for_service, ...
#   stackbus.sh        stackbus_export, stackbus_fact, __stackbus_die_exit

# This file's directory, without a subshell or dirname (every session sources this file).
__STACKBUS_BASHLIB_DIR=${BASH_SOURCE[0]%/*}
[[ $__STACKBUS_BASHLIB_DIR == "${BASH_SOURCE[0]}" ]] && __STACKBUS_BASHLIB_DIR=.
[[ $__STACKBUS_BASHLIB_DIR == /* ]] || __STACKBUS_BASHLIB_DIR=$PWD/$__STACKBUS_BASHLIB_DIR

source "$__STACKBUS_BASHLIB_DIR/stackbus.sh"
source "$__STACKBUS_BASHLIB_DIR/lib/common.sh"
source "$__STACKBUS_BASHLIB_DIR/lib/services.sh"
source "$__STACKBUS_BASHLIB_DIR/lib/plugins.sh"
source "$__STACKBUS_BASHLIB_DIR/lib/ini-config.sh"
source "$__STACKBUS_BASHLIB_DIR/lib/distro.sh"
source "$__STACKBUS_BASHLIB_DIR/lib/process.sh"

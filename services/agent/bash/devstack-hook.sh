# shellcheck shell=bash
# stackbus DevStack mode: the pause points the agent adds to DevStack's own scripts.
#
# The agent writes one block at the end of the host's local.conf:
#
#   [[local|localrc]]
#   if [[ -n ${STACKBUS_DEVSTACK_HOOK:-} ]]; then source "$STACKBUS_DEVSTACK_HOOK"; fi
#
# stack.sh extracts it into .localrc.auto, and stackrc sources that after DevStack's
# `functions` (in stack.sh, in unstack.sh and clean.sh through openrc, and in the
# unstack.sh that clean.sh starts). So this file runs at the end of the localrc, in that
# script's own shell, and replaces DevStack's run_phase there; nothing in the checkout
# changes. When the agent did not start the script (an operator runs ./stack.sh by
# hand) STACKBUS_DEVSTACK_HOOK is unset and the line does nothing.
#
# At the end of each phase the script tells the agent, over a loopback TCP connection,
# and waits for the answer: `go` when the coordinator starts the next step on this
# host, `stop REASON` when the run is over for it. A connection the agent closes (it
# stopped or died) stops the script as well. What the agent needs besides the answers
# (which hook runs, what failed, DevStack's summary lines) goes to a journal file in
# STACKBUS_DEVSTACK_DIR, outside the checkout.
#
# Environment (set by the agent): STACKBUS_DEVSTACK_HOOK (this file),
# STACKBUS_DEVSTACK_TOP (TOP_DIR), STACKBUS_DEVSTACK_PORT, STACKBUS_DEVSTACK_TOKEN,
# STACKBUS_DEVSTACK_DIR, STACKBUS_FACTS_FILE.

[[ -n ${STACKBUS_DEVSTACK_TOKEN:-} && -n ${STACKBUS_DEVSTACK_PORT:-} && -n ${STACKBUS_DEVSTACK_DIR:-} ]] || return 0
# Only in DevStack's own scripts of this checkout: not in a tool that sources openrc.
__sb_ds_main=${BASH_SOURCE[-1]}
case ${__sb_ds_main##*/} in
    stack.sh | unstack.sh | clean.sh) ;;
    *) return 0 ;;
esac
[[ $(cd "$(dirname "$__sb_ds_main")" && pwd -P) == "${STACKBUS_DEVSTACK_TOP:-}" ]] || return 0
# Once per process (stackrc is sourced once; be sure anyway).
[[ ${__SB_DS_PID:-} == "$BASHPID" ]] && return 0

__sb_ds_xt=$(set +o | grep xtrace)
set +o xtrace
__SB_DS_PID=$BASHPID
__SB_DS_SCRIPT=${__sb_ds_main##*/}
__SB_DS_WRAPPED=0
# While a hook is sourced: the ERR trap and errtrace state to put back (also at exit).
__sb_ds_in_hook=0
__sb_ds_saved_errtrap=
__sb_ds_saved_E=0

# A journal record: fields separated by US (0x1f), one line each, newlines in fields folded.
function __sb_ds_note {
    local IFS=$'\x1f' __sb_line
    __sb_line="$*"
    printf '%s\n' "${__sb_line//$'\n'/ }" >>"$STACKBUS_DEVSTACK_DIR/journal" 2>/dev/null || true
}

# __sb_ds_ask EVENT FIELDS...: tells the agent where the script is and waits for its
# answer. Returns on `go` (after reading the other hosts' facts); ends the script
# otherwise.
function __sb_ds_ask {
    local IFS=$'\x1f' __sb_fd __sb_reply __sb_line
    __sb_line="$STACKBUS_DEVSTACK_TOKEN"$'\x1f'"$BASHPID"$'\x1f'"$__SB_DS_SCRIPT"$'\x1f'"$*"
    if ! exec {__sb_fd}<>"/dev/tcp/127.0.0.1/$STACKBUS_DEVSTACK_PORT"; then
        echo "stackbus: cannot reach the stackbus agent on 127.0.0.1:$STACKBUS_DEVSTACK_PORT; $__SB_DS_SCRIPT stops here" >&2
        exit 1
    fi
    printf '%s\n' "${__sb_line//$'\n'/ }" >&"$__sb_fd"
    IFS= read -r __sb_reply <&"$__sb_fd" || __sb_reply="stop the stackbus agent went away"
    exec {__sb_fd}>&-
    if [[ $__sb_reply == go ]]; then
        if [[ -r $STACKBUS_DEVSTACK_DIR/facts.sh ]]; then
            # shellcheck source=/dev/null
            source "$STACKBUS_DEVSTACK_DIR/facts.sh"
        fi
        return 0
    fi
    echo "stackbus: ${__sb_reply#stop }; $__SB_DS_SCRIPT stops here" >&2
    exit 1
}

# Runs from the ERR trap while a hook is sourced: the command that failed, where, and
# its status, when it ends the script (errexit on, in the script's own shell).
function __sb_ds_err {
    __sb_ds_note E "${EPOCHREALTIME/./}" "$1" "${BASH_SOURCE[1]}:${FUNCNAME[1]}:${BASH_LINENO[0]}" "$2"
}

# __sb_ds_source NAME FILE ARGS...: sources one hook as DevStack does, recording its
# start and end in the journal. While it runs, an ERR trap (with errtrace) notes the
# failing command; it changes nothing else: under errexit the script ends right after,
# as it would without it, and the script's own ERR trap is put back afterwards.
# Puts back the ERR trap and errtrace as they were before the hook.
function __sb_ds_restore_err {
    trap - ERR
    ((__sb_ds_saved_E)) || set +E
    if [[ -n $__sb_ds_saved_errtrap ]]; then eval "$__sb_ds_saved_errtrap"; fi
}

# Returns its argument: sets $? for a function called next.
function __sb_ds_status {
    return "$1"
}

function __sb_ds_source {
    local __sb_name=$1 __sb_path=$2 __sb_rc=0 __sb_errtrap __sb_hadE=0
    shift 2
    __sb_ds_note H start "${EPOCHREALTIME/./}" "$__sb_name"
    __sb_errtrap=$(trap -p ERR)
    [[ $- == *E* ]] && __sb_hadE=1
    __sb_ds_saved_errtrap=$__sb_errtrap
    __sb_ds_saved_E=$__sb_hadE
    __sb_ds_in_hook=1
    set -E
    trap '[[ $- != *e* || $BASHPID != "$__SB_DS_PID" ]] || __sb_ds_err $? "$BASH_COMMAND"' ERR
    $__sb_ds_xt
    # shellcheck source=/dev/null
    source "$__sb_path" "$@"
    __sb_rc=$?
    set +o xtrace
    __sb_ds_restore_err
    __sb_ds_in_hook=0
    __sb_ds_note H end "${EPOCHREALTIME/./}" "$__sb_name" "$__sb_rc"
}

# __sb_ds_plugins FILE [ARGS...]: FILE of each plugin's devstack/, in registration order,
# as DevStack's load_plugin_settings, plugin_override_defaults and run_plugins do.
function __sb_ds_plugins {
    local __sb_file=$1
    shift
    local plugins="${DEVSTACK_PLUGINS}"
    local plugin
    for plugin in ${plugins//,/ }; do
        local dir=${GITDIR[$plugin]}
        [[ -f $dir/devstack/$__sb_file ]] || continue
        if [[ $__sb_file == override-defaults ]]; then
            echo "$plugin has overridden the following defaults"
            cat "$dir/devstack/$__sb_file"
        fi
        __sb_ds_source "$plugin/devstack/$__sb_file" "$dir/devstack/$__sb_file" "$@"
    done
}

function __sb_ds_settings {
    [[ -z $DEVSTACK_PLUGINS ]] && return 0
    echo "Loading plugin settings"
    __sb_ds_plugins settings
}

# The first time a phase ends: note DevStack's summary lines and how the script exits,
# by wrapping stack.sh's echo_summary and exit_trap (defined after the localrc).
# shellcheck disable=SC2317 # the wrappers defined here are called by DevStack, not by this file
function __sb_ds_wrap {
    ((__SB_DS_WRAPPED)) && return 0
    __SB_DS_WRAPPED=1
    if declare -F echo_summary >/dev/null && ! declare -F __sb_ds_devstack_echo_summary >/dev/null; then
        eval "function __sb_ds_devstack_echo_summary $(declare -f echo_summary | tail -n +2)"
        function echo_summary {
            __sb_ds_note S "${EPOCHREALTIME/./}" "$*"
            __sb_ds_devstack_echo_summary "$@"
        }
    fi
    if declare -F exit_trap >/dev/null && ! declare -F __sb_ds_devstack_exit_trap >/dev/null; then
        eval "function __sb_ds_devstack_exit_trap $(declare -f exit_trap | tail -n +2)"
        function exit_trap {
            local __sb_r=$? __sb_ds_flags=$- __sb_cmd=$BASH_COMMAND
            # The script ends while a hook is sourced: DevStack's exit code runs as it would, without the hook's ERR note.
            if ((__sb_ds_in_hook)); then __sb_ds_restore_err; fi
            __sb_ds_exit_note "$__sb_r" "$__sb_cmd"
            if ((__sb_r == 0)); then
                __sb_ds_devstack_exit_trap "$@"
            else
                __sb_ds_status "$__sb_r" || __sb_ds_devstack_exit_trap "$@"
            fi
        }
    fi
}

# The exit status, the last command, the call stack and the shell's options (is xtrace
# on: then DevStack's log names the failing command) when the script exits.
function __sb_ds_exit_note {
    local __sb_stack="" __sb_i
    for ((__sb_i = 2; __sb_i < ${#FUNCNAME[@]}; __sb_i++)); do
        __sb_stack+="${FUNCNAME[__sb_i]}@${BASH_SOURCE[__sb_i + 1]:-}:${BASH_LINENO[__sb_i]} "
    done
    __sb_ds_note X "${EPOCHREALTIME/./}" "$1" "$2" "${BASH_SOURCE[2]:-}" "$__sb_stack" "$__sb_ds_flags"
}

# DevStack's run_phase, keeping the seeds' contract for extras.d: every extras.d/*.sh is
# sourced with the phase's arguments (DevStack itself now skips all but 80-tempest.sh).
# One exception: clean.sh sources every extras.d script with `clean` itself right after
# `run_phase clean`, so there only the scripts DevStack's run_phase takes are sourced,
# and each script gets `clean` as often as DevStack gives it.
function run_phase {
    local mode=$1
    local phase=$2
    __sb_ds_xt=$(set +o | grep xtrace)
    set +o xtrace
    __sb_ds_wrap
    if [[ -d $TOP_DIR/extras.d ]]; then
        local extra_plugin_file_name
        for extra_plugin_file_name in "$TOP_DIR"/extras.d/*.sh; do
            [[ -r $extra_plugin_file_name ]] || continue
            local extra=${extra_plugin_file_name##*/} exceptions="80-tempest.sh"
            # shellcheck disable=SC2076 # DevStack's own test: a literal substring, not a regex
            if [[ $mode == clean && $__SB_DS_SCRIPT == clean.sh && ! ($exceptions =~ "$extra") ]]; then
                continue
            fi
            # shellcheck disable=SC2086 # DevStack passes the phase unquoted: no second argument when empty
            __sb_ds_source "extras.d/$extra" "$extra_plugin_file_name" $mode $phase
        done
    fi
    if [[ $mode == source ]]; then
        __sb_ds_settings
        $__sb_ds_xt
        verify_disabled_services
        set +o xtrace
    elif [[ $mode == override_defaults ]]; then
        if [[ -n $DEVSTACK_PLUGINS ]]; then
            echo "Overriding Configuration Defaults"
            __sb_ds_plugins override-defaults
        fi
    else
        # shellcheck disable=SC2086
        __sb_ds_plugins plugin.sh $mode $phase
    fi
    __sb_ds_ask phase "$mode" "$phase"
    $__sb_ds_xt
}

# unstack.sh and clean.sh load the plugins' settings themselves (they have no
# `run_phase source`): the end of that is where their `source` step ends.
function load_plugin_settings {
    __sb_ds_xt=$(set +o | grep xtrace)
    set +o xtrace
    __sb_ds_settings
    __sb_ds_ask settings
    $__sb_ds_xt
}

if [[ -r $STACKBUS_DEVSTACK_DIR/stackbus.sh ]]; then
    # stackbus_export and stackbus_fact, for hooks that share values between hosts.
    # shellcheck source=/dev/null
    source "$STACKBUS_DEVSTACK_DIR/stackbus.sh"
fi

# The end of the localrc: DEST and every plugin's GITDIR are as DevStack computed them.
# The agent puts the plugins there (fetched through stackbus, no host clones one), and
# the prepare step ends here.
__sb_ds_localrc=(localrc "${DEST:-}" "${LOGFILE:-}")
for __sb_ds_p in ${DEVSTACK_PLUGINS//,/ }; do
    __sb_ds_localrc+=("$__sb_ds_p" "${GITREPO[$__sb_ds_p]:-}" "${GITBRANCH[$__sb_ds_p]:-}" "${GITDIR[$__sb_ds_p]:-}")
done
__sb_ds_ask "${__sb_ds_localrc[@]}"
unset __sb_ds_localrc __sb_ds_p
$__sb_ds_xt

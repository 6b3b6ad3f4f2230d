# stackbus-specific helpers for hooks.
#
# Sourced by functions.sh, and on its own after DevStack's real `functions` when
# the agent runs with --devstack-dir. Defines functions only.
#
#   stackbus_export VAR [VAR...]   publish variables of this host to the other hosts
#   stackbus_fact HOST VAR [DEF]   print a variable another host published (DEF if it did not)
#   __stackbus_die_exit RC         how `die` ends the hook (the agent redefines it)
#
# Contract with the agent:
#   STACKBUS_FACTS_FILE  file the agent reads after each step; stackbus_export
#                        appends one record per variable: NAME NUL VALUE NUL.
#   STACKBUS_FACTS       global associative array "HOST/VAR" -> value, which the
#                        agent fills (declare -gA) before each step.

# stackbus_export VAR [VAR...]
# Appends NAME\0VALUE\0 to $STACKBUS_FACTS_FILE for every VAR, in argument order;
# a later export of the same name wins. Values may hold any byte but NUL.
# Returns 1, writing nothing, when any VAR is not a shell identifier or is unset,
# or when STACKBUS_FACTS_FILE is not set.
function stackbus_export {
    local name
    if [[ -z ${STACKBUS_FACTS_FILE:-} ]]; then
        echo "stackbus_export: STACKBUS_FACTS_FILE is not set; facts can only be exported inside a stackbus run" >&2
        return 1
    fi
    if [[ $# -eq 0 ]]; then
        echo "stackbus_export: usage: stackbus_export VAR [VAR...]" >&2
        return 1
    fi
    for name in "$@"; do
        if [[ ! $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
            echo "stackbus_export: '$name' is not a valid variable name" >&2
            return 1
        fi
        if [[ ! -v $name ]]; then
            echo "stackbus_export: $name is not set" >&2
            return 1
        fi
    done
    for name in "$@"; do
        printf '%s\0%s\0' "$name" "${!name}" >> "$STACKBUS_FACTS_FILE" || return 1
    done
}

# stackbus_fact HOST VAR [DEFAULT]
# Prints (with a trailing newline) the value HOST exported as VAR, from the
# STACKBUS_FACTS array. When HOST has not exported VAR: prints DEFAULT if one is
# given (it may be empty), else fails closed: status 1 and a message naming both,
# so `VAR=$(stackbus_fact HOST VAR)` ends a hook under errexit as any failing
# command does.
function stackbus_fact {
    if [[ $# -lt 2 || $# -gt 3 || -z $1 || -z $2 ]]; then
        echo "stackbus_fact: usage: stackbus_fact HOST VAR [DEFAULT]" >&2
        return 1
    fi
    local key="$1/$2"
    if [[ $(declare -p STACKBUS_FACTS 2>/dev/null) == "declare -A"* && -n ${STACKBUS_FACTS[$key]+set} ]]; then
        printf '%s\n' "${STACKBUS_FACTS[$key]}"
        return 0
    fi
    if [[ $# -eq 3 ]]; then
        printf '%s\n' "$3"
        return 0
    fi
    if [[ $(declare -p STACKBUS_FACTS 2>/dev/null) != "declare -A"* ]]; then
        echo "stackbus_fact: no facts are known in this session (STACKBUS_FACTS is not set): host $1 has not exported $2; give a default as a third argument if it may be missing" >&2
    else
        echo "stackbus_fact: host $1 has not exported $2 in this run; give a default as a third argument if it may be missing" >&2
    fi
    return 1
}

# __stackbus_die_exit RC
# Called by `die` (after it printed its messages) to end the hook with status RC.
# The default exits the shell, as DevStack's die does. The agent, whose session
# must outlive a failing hook, redefines this function after sourcing the library;
# re-sourcing the library keeps a redefinition. When the redefinition returns,
# `die` returns RC to its caller.
if ! declare -F __stackbus_die_exit >/dev/null; then
    function __stackbus_die_exit {
        exit "${1:-1}"
    }
fi

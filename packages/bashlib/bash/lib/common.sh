# Errors, warnings, messages and small helpers (DevStack's functions-common).
#
# Messages name the hook's file and line: `die $LINENO "msg"` and `warn $LINENO "msg"`
# print `[ERROR] <file>:<line> msg` / `[WARNING] <file>:<line> msg`, where <file> is
# the file that called die/warn.

# Runs "$@" as root: directly when the shell already is root, else through sudo.
function __stackbus_sudo {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    else
        sudo "$@"
    fi
}

# sudo_with_proxies CMD [ARG...]
# Runs CMD as root with http_proxy, https_proxy and no_proxy passed through.
function sudo_with_proxies {
    __stackbus_sudo env http_proxy="${http_proxy:-}" https_proxy="${https_proxy:-}" \
        no_proxy="${no_proxy:-}" "$@"
}

# True when $1 is a shell variable name (optionally an array element NAME[...]).
function __stackbus_is_var_ref {
    [[ ${1:-} =~ ^[A-Za-z_][A-Za-z0-9_]*(\[[^]]*\])?$ ]]
}

# backtrace LEVEL
# Prints "[Call Trace]" and one FILE:LINE:FUNCTION frame per caller, outermost
# first, down to LEVEL frames above the caller of backtrace.
function backtrace {
    local level=${1:-1}
    local deep=$(( ${#BASH_SOURCE[@]} - 1 ))
    echo "[Call Trace]"
    while [[ $level -le $deep ]]; do
        echo "${BASH_SOURCE[$deep]}:${BASH_LINENO[$deep-1]}:${FUNCNAME[$deep-1]}"
        deep=$(( deep - 1 ))
    done
}

# Writes "[ERROR] FILE:LINE MSG" to stderr and, when $LOGDIR is a directory,
# appends it to $LOGDIR/error.log.
function __stackbus_err_at {
    local msg="[ERROR] $1:$2 $3"
    echo "$msg" >&2
    if [[ -n ${LOGDIR:-} && -d ${LOGDIR:-} ]]; then
        { echo "$msg" >> "$LOGDIR/error.log"; } 2>/dev/null || true
    fi
}

# Splits die/warn/err arguments: "LINE MSG..." when the first is a line number,
# else the whole argument list is the message and DEFAULT_LINE is used.
# Sets __stackbus_line and __stackbus_msg.
function __stackbus_line_and_msg {
    local default_line=$1
    shift
    if [[ $# -ge 1 && $1 =~ ^[0-9]+$ ]]; then
        __stackbus_line=$1
        shift
    else
        __stackbus_line=$default_line
    fi
    __stackbus_msg="$*"
}

# Prints the call trace and "[ERROR] FILE:LINE MSG" on stderr, then ends the hook
# through __stackbus_die_exit RC. Returns RC if that returns.
function __stackbus_die_at {
    local rc=$1 file=$2 line=$3 msg=$4
    if [[ $rc -eq 0 ]]; then
        rc=1
    fi
    backtrace 3 >&2
    __stackbus_err_at "$file" "$line" "$msg"
    __stackbus_die_exit "$rc"
    return "$rc"
}

# die [LINENO] MESSAGE...
# Prints the call trace and "[ERROR] <file>:<line> MESSAGE" on stderr (and to
# $LOGDIR/error.log), then ends the hook with the status of the previous command,
# or 1 when that was 0. <file> is the caller's file; <line> is the first argument
# when it is a number (the `die $LINENO "msg"` convention), else the caller's line.
function die {
    local rc=$?
    local __stackbus_line __stackbus_msg
    __stackbus_line_and_msg "${BASH_LINENO[0]}" "$@"
    __stackbus_die_at "$rc" "${BASH_SOURCE[1]:-main}" "$__stackbus_line" "$__stackbus_msg"
}

# die_if_not_set LINENO VAR MESSAGE...
# Dies with MESSAGE when VAR is unset or empty, or when the previous command failed.
function die_if_not_set {
    local rc=$?
    local line=${1:-} evar=${2:-}
    shift 2 || shift $#
    if ! is_set "$evar" || [[ $rc -ne 0 ]]; then
        __stackbus_die_at "$rc" "${BASH_SOURCE[1]:-main}" "$line" "$*"
        return
    fi
    return 0
}

# err [LINENO] MESSAGE...
# Prints "[ERROR] <file>:<line> MESSAGE" on stderr without ending the hook.
# Returns the status of the previous command.
function err {
    local rc=$?
    local __stackbus_line __stackbus_msg
    __stackbus_line_and_msg "${BASH_LINENO[0]}" "$@"
    __stackbus_err_at "${BASH_SOURCE[1]:-main}" "$__stackbus_line" "$__stackbus_msg"
    return $rc
}

# err_if_not_set LINENO VAR MESSAGE...
# Like die_if_not_set, but only prints the error. Returns the previous status.
function err_if_not_set {
    local rc=$?
    local line=${1:-} evar=${2:-}
    shift 2 || shift $#
    if ! is_set "$evar" || [[ $rc -ne 0 ]]; then
        __stackbus_err_at "${BASH_SOURCE[1]:-main}" "$line" "$*"
    fi
    return $rc
}

# Prints "[WARNING] FILE:LINE MSG" on stdout.
function __stackbus_warn_at {
    echo "[WARNING] $1:$2 $3"
}

# warn [LINENO] MESSAGE...
# Prints "[WARNING] <file>:<line> MESSAGE" on stdout. Like DevStack's warn it
# returns the status of the previous command, so `warn` leaves $? as it found it.
function warn {
    local rc=$?
    local __stackbus_line __stackbus_msg
    __stackbus_line_and_msg "${BASH_LINENO[0]}" "$@"
    __stackbus_warn_at "${BASH_SOURCE[1]:-main}" "$__stackbus_line" "$__stackbus_msg"
    return $rc
}

# deprecated TEXT
# Prints "WARNING: TEXT" on stderr and appends "\nTEXT" to DEPRECATED_TEXT.
function deprecated {
    local text=${1:-}
    DEPRECATED_TEXT+="\n$text"
    echo "WARNING: $text" >&2
}

# echo_summary TEXT...
# Prints a summary line on stdout, with `echo -e` escapes interpreted.
function echo_summary {
    echo -e "$*"
}

# echo_nolog TEXT...
function echo_nolog {
    echo "$@"
}

# trueorfalse DEFAULT VARNAME
# Prints True or False for the value of the variable VARNAME: 1 yes Yes YES true
# True TRUE -> True; 0 no No NO false False FALSE -> False; anything else,
# including unset, -> DEFAULT. Dies when VARNAME is missing (a `$FOO` that
# expanded to nothing).
function trueorfalse {
    local default=${1:-}
    if [[ -z ${2:-} ]]; then
        __stackbus_die_at 1 "${BASH_SOURCE[1]:-main}" "${BASH_LINENO[0]}" "variable to normalize required"
        return
    fi
    local testval=""
    if __stackbus_is_var_ref "$2"; then
        testval=${!2:-}
    fi
    case "$testval" in
        1 | [yY]es | YES | [tT]rue | TRUE) echo "True" ;;
        0 | [nN]o | NO | [fF]alse | FALSE) echo "False" ;;
        *) echo "$default" ;;
    esac
}

# bool_to_int VALUE: prints 1 for True, else 0.
function bool_to_int {
    if [[ ${1:-} == "True" ]]; then
        echo 1
    else
        echo 0
    fi
}

# isset VARNAME: true when the variable is set (even to the empty string).
function isset {
    [[ -v ${1:-} ]]
}

# is_set VARNAME: true when the variable is set and not empty.
function is_set {
    __stackbus_is_var_ref "${1:-}" && [[ -n ${!1:-} ]]
}

# function_exists NAME: true when NAME is a shell function.
function function_exists {
    declare -F "${1:-}" >/dev/null
}

# generate_hex_string BYTES
# Prints 2*BYTES random hexadecimal characters.
function generate_hex_string {
    local size=${1:-16} hex
    hex=$(od -An -v -tx1 -N"$size" /dev/urandom) || return 1
    printf '%s\n' "${hex//[[:space:]]/}"
}

# export_proxy_variables
# Exports http_proxy, https_proxy and no_proxy, each only when it is set.
function export_proxy_variables {
    local name
    for name in http_proxy https_proxy no_proxy; do
        if isset "$name"; then
            # shellcheck disable=SC2163 # exports the variable $name names
            export "$name"
        fi
    done
}

# read_password VAR [MESSAGE]
# Never prompts (hooks have no terminal): keeps VAR when it is set and not empty,
# else sets it to 20 random hex characters. The generated value is local to this
# host; set passwords in local.conf, or share one with stackbus_export/stackbus_fact.
function read_password {
    local var=${1:-}
    if ! __stackbus_is_var_ref "$var"; then
        __stackbus_die_at 1 "${BASH_SOURCE[1]:-main}" "${BASH_LINENO[0]}" "read_password: '$var' is not a variable name"
        return
    fi
    if [[ -z ${!var:-} ]]; then
        local pw
        pw=$(generate_hex_string 10) || return 1
        printf -v "$var" '%s' "$pw"
    fi
    return 0
}

# Milliseconds since the epoch, without a fork.
function __stackbus_now_ms {
    local us=${EPOCHREALTIME/[.,]/}
    echo $(( us / 1000 ))
}

if ! declare -p _TIME_START >/dev/null 2>&1; then
    declare -A -g _TIME_START=()
fi
if ! declare -p _TIME_TOTAL >/dev/null 2>&1; then
    declare -A -g _TIME_TOTAL=()
fi

# time_start NAME
# Starts the named timer; dies when it is already running.
function time_start {
    local name=${1:-}
    if [[ -z $name ]]; then
        return 0
    fi
    if [[ -n ${_TIME_START[$name]:-} ]]; then
        __stackbus_die_at 1 "${BASH_SOURCE[1]:-main}" "${BASH_LINENO[0]}" "Trying to start the clock on $name, but it's already been started"
        return
    fi
    _TIME_START[$name]=$(__stackbus_now_ms)
}

# time_stop NAME
# Stops the named timer and adds the elapsed milliseconds to _TIME_TOTAL[NAME];
# dies when it was not started.
function time_stop {
    local name=${1:-}
    if [[ -z $name ]]; then
        return 0
    fi
    local start=${_TIME_START[$name]:-}
    if [[ -z $start ]]; then
        __stackbus_die_at 1 "${BASH_SOURCE[1]:-main}" "${BASH_LINENO[0]}" "Trying to stop the clock on $name, but it was never started"
        return
    fi
    local end
    end=$(__stackbus_now_ms)
    _TIME_START[$name]=""
    _TIME_TOTAL[$name]=$(( ${_TIME_TOTAL[$name]:-0} + end - start ))
}

# is_nfs_directory DIR: true when DIR lives on NFS.
function is_nfs_directory {
    local fstype
    fstype=$(stat -f -L -c %T "${1:-.}" 2>/dev/null) || return 1
    [[ $fstype == nfs ]]
}

# Runs "CMD ARG... PATH" as root unless PATH (or its directory) is on NFS,
# where root may not change ownership or mode.
function __stackbus_safe_permission_operation {
    local target=${!#}
    local dir=$target
    if [[ ! -d $dir ]]; then
        dir=$(dirname -- "$dir")
    fi
    if is_nfs_directory "$dir"; then
        return 0
    fi
    __stackbus_sudo "$@"
}

# safe_chown [OPTIONS] OWNER PATH...: chown as root, skipped on NFS.
function safe_chown {
    __stackbus_safe_permission_operation chown "$@"
}

# safe_chmod [OPTIONS] MODE PATH...: chmod as root, skipped on NFS.
function safe_chmod {
    __stackbus_safe_permission_operation chmod "$@"
}

# get_extra_file URL
# Prints the local path of URL: a file:// URL is used in place; anything else is
# downloaded once into $FILES (wget, else curl) and reused afterwards.
function get_extra_file {
    local url=${1:-}
    if [[ $url == file://* ]]; then
        echo "${url#file://}"
        return 0
    fi
    local dir=${FILES:-.}
    local path="$dir/${url##*/}"
    if [[ ! -f $path ]]; then
        local rc=0
        if command -v wget >/dev/null; then
            wget --progress=dot:giga --tries="${EXTRA_FILES_RETRY:-3}" -c "$url" -O "$path" >&2 || rc=$?
        else
            curl -fsSL --retry "${EXTRA_FILES_RETRY:-3}" -o "$path" "$url" >&2 || rc=$?
        fi
        if [[ $rc -ne 0 ]]; then
            rm -f -- "$path"
            __stackbus_die_at "$rc" "${BASH_SOURCE[1]:-main}" "${BASH_LINENO[0]}" "$url could not be downloaded"
            return
        fi
    fi
    echo "$path"
}

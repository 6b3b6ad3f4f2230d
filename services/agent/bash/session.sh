# stackbus agent: the control functions of a hook session.
# Sourced once when the session starts, before the helper library. Everything the agent
# learns about a hook comes through file descriptor 3, which hooks never see (each hook
# runs with fd 3 closed), so hook output cannot forge a result.

__SB_PID=$BASHPID
__sb_errexit=0
__sb_dying=0
__sb_stop=0
__sb_rc=0
# The command that ended the running hook under errexit, and where (file:function:line).
__sb_fail_cmd=
__sb_fail_at=
__SB_HV_LOADED=0
# With --devstack-dir: the DevStack checkout (set by __sb_devstack_setup).
__SB_DEVSTACK_DIR=

# One control record: fields separated by US (0x1f), ended by RS (0x1e). A held record
# goes out first, in the same write.
__sb_ctl() { local IFS=$'\x1f'; printf '%s%s\x1e' "$__sb_held" "$*" >&3; __sb_held=; }
# Holds a record until the next one is written: a hook's end record waits for the next
# hook's start (or the batch end, which follows at once), so each hook boundary costs
# one write to the agent instead of two. Its clock reading is taken when it is held.
__sb_held=
__sb_hold() { local IFS=$'\x1f'; __sb_held+="$*"$'\x1e'; }
# A marker on stdout and stderr: output after it belongs to the hook it names (B<index>),
# or to no hook (END); one marker per hook keeps the output path cheap.
__sb_mark() { printf '\x1eSB%s:%s\x1e\n' "$__SB_NONCE" "$1"; printf '\x1eSB%s:%s\x1e\n' "$__SB_NONCE" "$1" >&2; }

# The helper library's die calls this. Inside the session shell it must not exit the
# shell: it marks the hook as dying and returns, and the ERR trap unwinds to the hook's
# caller. In a subshell it exits that subshell, as DevStack's die does.
__stackbus_die_exit() {
  if [[ $BASHPID == "$__SB_PID" ]]; then
    __sb_dying=1
    return "${1:-1}"
  fi
  exit "${1:-1}"
}

# Runs one hook with errexit semantics when __sb_errexit is set (stack.sh's set -o errexit):
# the first failing command outside a condition ends the hook, also inside functions the
# hook calls. A die ends the hook in every phase. The shell itself survives, so variables
# and functions persist to later hooks and phases.
#   __sb_invoke source FILE ARGS...   source FILE with ARGS as its positional parameters
#   __sb_invoke noargs FILE           source FILE with no positional parameters
#   __sb_invoke call FUNCTION ARGS... call a shell function
#   __sb_invoke devstack FILE         source FILE of the DevStack checkout with no positional
#                                     parameters and TOP_DIR the checkout, as its own scripts
#                                     have it (lib/* find lib/databases, lib/nova_plugins, ...
#                                     there); the session's TOP_DIR is back after it, however
#                                     the file ended
# shellcheck disable=SC1090 # hooks are sourced from paths known only at run time
__sb_invoke() {
  local __sb_k=$1 __sb_f=$2
  shift 2
  __sb_rc=0
  set -E
  # The trap runs in the frame of the command that failed, so its `return` unwinds that
  # frame (the hook's, or a function it called); __sb_on_err says whether to.
  trap '__sb_st=$?; __sb_on_err "${FUNCNAME[0]-}" "$BASH_COMMAND" || return "$__sb_st"' ERR
  case $__sb_k in
    source) source "$__sb_f" "$@" ;;
    noargs) set -- ; source "$__sb_f" ;;
    call) "$__sb_f" "$@" ;;
    devstack) __sb_top_dir=$TOP_DIR; TOP_DIR=$__SB_DEVSTACK_DIR; set -- ; source "$__sb_f" ;;
  esac
  __sb_rc=$?
  if [[ $__sb_k == devstack ]]; then TOP_DIR=$__sb_top_dir; fi
  trap - ERR
  set +E
}

# Decides what a failing command does under the emulated errexit (the ERR trap of
# __sb_invoke). Its rules are set -e's, because the ERR trap fires exactly where errexit
# would act: not in a condition (if, while, until), not in a && or || list but for its
# last command, not after !. Then:
# - in a subshell (BASHPID is not the session's): with errexit, the subshell exits with
#   the status, as set -e ends it;
# - in the session's shell, with errexit or after die: returns 1 (unwind this frame),
#   except in __sb_invoke itself, where the hook has returned;
# - otherwise: 0 (go on, as without errexit).
__sb_on_err() {
  if [[ $BASHPID != "$__SB_PID" ]]; then
    (( __sb_errexit )) && exit "$__sb_st"
    return 0
  fi
  if (( __sb_errexit || __sb_dying )) && [[ $1 != __sb_invoke ]]; then
    # The first frame to unwind holds the failing command (a die names its own place).
    if [[ -z $__sb_fail_at ]] && (( ! __sb_dying )); then
      __sb_fail_cmd=$2
      __sb_fail_at="${BASH_SOURCE[1]-}:${FUNCNAME[1]-}:${BASH_LINENO[0]-}"
    fi
    return 1
  fi
  return 0
}

# Starts a batch of hooks. $1: 1 for errexit (stack phases), 0 to go on past failures.
__sb_batch() {
  __sb_errexit=$1
  __sb_stop=0
  __sb_dying=0
}

# __sb_hook INDEX KIND NAME FILE ARGS...
# Reports start and end (exit status, microsecond clock) on fd 3, the end held until the
# next record; skips a missing file and, after an errexit failure, every later hook of
# the batch.
__sb_hook() {
  local __sb_i=$1 __sb_kind=$2 __sb_name=$3 __sb_file=$4
  shift 4
  if (( __sb_stop )); then __sb_ctl H "$__sb_i" skip stopped; return 0; fi
  if [[ $__sb_kind != call && ! -f $__sb_file ]]; then __sb_ctl H "$__sb_i" skip missing; return 0; fi
  __sb_run_hook "$__sb_i" "$__sb_kind" "$__sb_name" "$__sb_file" "$@"
}

__sb_run_hook() {
  local __sb_i=$1 __sb_kind=$2 __sb_name=$3 __sb_file=$4
  shift 4
  __sb_ctl H "$__sb_i" start "${EPOCHREALTIME/./}" "$__sb_name"
  __sb_mark "B$__sb_i"
  __sb_dying=0
  __sb_fail_cmd=
  __sb_fail_at=
  # stderr joins stdout for the hook, as stack.sh sends both to one log: lines keep the order
  # they were printed in (two pipes would lose it).
  __sb_invoke "$__sb_kind" "$__sb_file" "$@" </dev/null 3>&- 2>&1
  local __sb_status=$__sb_rc
  set +e
  __sb_hold H "$__sb_i" end "${EPOCHREALTIME/./}" "$__sb_status" "$__sb_dying" "${__sb_fail_cmd//$'\n'/ }" "$__sb_fail_at"
  # errexit ends the batch at a failing hook; die ends it in every phase (DevStack's die
  # exits unstack.sh and clean.sh too).
  if (( (__sb_status != 0 && __sb_errexit) || __sb_dying )); then __sb_stop=1; fi
  __sb_dying=0
  return 0
}

# The hypervisor plugin: loaded when nova is enabled and the file is readable
# (lib/nova does this when stack.sh sources it).
__sb_hv_load() {
  local __sb_i=$1
  if (( __sb_stop )); then __sb_ctl H "$__sb_i" skip stopped; return 0; fi
  local file="$TOP_DIR/lib/nova_plugins/hypervisor-${VIRT_DRIVER-}"
  if [[ -z ${VIRT_DRIVER-} ]] || ! is_service_enabled nova || [[ ! -r $file ]]; then
    __sb_ctl H "$__sb_i" skip inactive
    return 0
  fi
  # With --devstack-dir, DevStack's lib/nova has just sourced $NOVA_PLUGINS/hypervisor-$VIRT_DRIVER
  # on the same conditions: when that is this very file, it is loaded once, as in stack.sh.
  if [[ -n $__SB_DEVSTACK_DIR && -n ${NOVA_PLUGINS-} && $file -ef $NOVA_PLUGINS/hypervisor-$VIRT_DRIVER ]]; then
    __SB_HV_LOADED=1
    __sb_ctl H "$__sb_i" skip "loaded by lib/nova"
    return 0
  fi
  __sb_run_hook "$__sb_i" noargs "lib/nova_plugins/hypervisor-$VIRT_DRIVER" "$file"
  (( __sb_rc == 0 )) && __SB_HV_LOADED=1
  return 0
}

# __sb_hv_call INDEX FUNCTION SERVICE: call a hypervisor function when the plugin is
# loaded and SERVICE (n-cpu, or nova for clean-up) is enabled.
__sb_hv_call() {
  local __sb_i=$1 fn=$2 svc=$3
  if (( __sb_stop )); then __sb_ctl H "$__sb_i" skip stopped; return 0; fi
  if (( ! __SB_HV_LOADED )) || ! declare -F "$fn" >/dev/null || ! is_service_enabled "$svc"; then
    __sb_ctl H "$__sb_i" skip inactive
    return 0
  fi
  __sb_run_hook "$__sb_i" call "$fn" "$fn"
}

# Ends a batch: the end marker follows every byte of output of the batch on both streams.
__sb_batch_end() {
  __sb_mark END
  __sb_ctl B end
}

# Reads the next script the agent sends, exactly $1 bytes, into __sb_script in one read
# (the caller evaluates it at the top level, where a script read from stdin would run).
__sb_read() { local LC_ALL=C; IFS= read -r -N "$1" __sb_script; }

# Evaluates agent code (not a hook) and reports its status.
__sb_eval_done() { __sb_ctl V "$1"; }

# Reports the registered plugins (enable_plugin), one P record each (name, url, ref, dir)
# and a P-end record, on fd 3.
__sb_list_plugins() {
  local p
  for p in ${DEVSTACK_PLUGINS//,/ }; do
    __sb_ctl P "$p" "${GITREPO[$p]-}" "${GITBRANCH[$p]-}" "${GITDIR[$p]-}"
  done
  __sb_ctl P-end
}

# Reports a named value to the agent (plans, queries).
__sb_report() { __sb_ctl Q "$1" "$2"; }

# With --devstack-dir (DIR, the DevStack checkout, whose functions the preamble sourced):
# DevStack's die made safe for the session, and stack.sh's read_password, which DevStack's
# files do not define, without its prompt and its file: a password the localrc does not set
# is generated (as stack.sh does when nobody types one) and kept in the session only.
# shellcheck disable=SC2317 # read_password is called by hooks, not by this file
__sb_devstack_setup() {
  __SB_DEVSTACK_DIR=$1
  __sb_wrap_devstack_die
  declare -F read_password >/dev/null && return 0
  read_password() {
    local __sb_var=$1 __sb_pw
    if [[ -z ${!__sb_var:-} ]]; then
      __sb_pw=$(generate_hex_string 10) || return
      printf -v "$__sb_var" '%s' "$__sb_pw"
    fi
  }
}

# DevStack's GetDistro (DISTRO, os_VENDOR, os_RELEASE, os_CODENAME, os_PACKAGE), unless it
# would install lsb_release first (DevStack's GetOSVersion does, with sudo, when it is
# missing outside the RHEL family): then DISTRO stays unset and the hook fails saying why.
__sb_devstack_distro() {
  if ! command -v lsb_release >/dev/null 2>&1 && ! grep -Eqs '^ID="?(almalinux|centos|rocky|rhel)' /etc/os-release; then
    echo "lsb_release is not installed: DISTRO is not set (DevStack's GetDistro would install lsb-release first)" >&2
    return 1
  fi
  GetDistro
}

# With --devstack-dir the session sources DevStack's own functions, whose die ends with
# `exit`: that would end the session shell. Replace it with DevStack's die as it reads,
# printing through DevStack's own backtrace and err from the same frame depth (so the
# message names the hook's file and line, and err appends to $LOGDIR/error.log), but
# ending like the helper library's die: in the session shell the hook unwinds and the
# shell survives; in a subshell it exits, as DevStack's die does.
# shellcheck disable=SC2317 # the die defined here is called by hooks, not by this file
__sb_wrap_devstack_die() {
  declare -F die >/dev/null || return 0
  declare -F __sb_devstack_die >/dev/null && return 0
  eval "__sb_devstack_die() $(declare -f die | tail -n +2)"
  if ! declare -F backtrace >/dev/null || ! declare -F err >/dev/null; then
    # A die without DevStack's helpers: run it in a subshell, whose exit ends only that.
    die() {
      local __sb_prev=$?
      if [[ $BASHPID != "$__SB_PID" ]]; then
        trap - ERR
        (exit "$__sb_prev")
        __sb_devstack_die "$@"
        return $?
      fi
      __sb_dying=1
      ( trap - ERR; (exit "$__sb_prev"); __sb_devstack_die "$@" )
      local __sb_st=$?
      return $(( __sb_st == 0 ? 1 : __sb_st ))
    }
    return 0
  fi
  die() {
    local exitcode=$? __sb_xt
    __sb_xt=$(set +o | grep xtrace)
    set +o xtrace
    local line=$1
    shift
    if [ "$exitcode" == 0 ]; then
      exitcode=1
    fi
    backtrace 2
    err "$line" "$*"
    if [[ $BASHPID != "$__SB_PID" ]]; then
      exit "$exitcode"
    fi
    __sb_dying=1
    $__sb_xt
    return "$exitcode"
  }
}

# Services and processes (DevStack's run_process family, minimal versions).
#
# With systemd running (/run/systemd/system exists; STACKBUS_PROCESS_MODE=systemd
# or background overrides the detection), run_process writes a unit
# devstack@NAME.service into $SYSTEMD_DIR (default /etc/systemd/system) and starts
# it, as DevStack does. Without systemd (containers, CI), it starts the command in
# the background in its own session (as USER when given; GROUP is only applied
# by systemd), logging to $LOGDIR/NAME.log (or $SERVICE_DIR/NAME.log) and
# recording the pid in $SERVICE_DIR/NAME.pid (SERVICE_DIR defaults to
# $DEST/status); stop_process then signals that process group. The command is
# split on blanks, as systemd's ExecStart would, and not run through a shell.

# STACKBUS_PROCESS_MODE=systemd|background overrides the detection.
function __stackbus_has_systemd {
    case ${STACKBUS_PROCESS_MODE:-} in
        systemd) return 0 ;;
        background) return 1 ;;
    esac
    [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null
}

# run_process NAME COMMAND [GROUP] [USER] [ENV_VARS]
# Starts COMMAND (an absolute path and its arguments) as service NAME when NAME is
# enabled. GROUP/USER select the unix group and user (default $STACK_USER);
# ENV_VARS is a blank-separated list of NAME=VALUE assignments.
function run_process {
    local service=${1:-} command=${2:-} group=${3:-} user=${4:-} env_vars=${5:-}
    if ! is_service_enabled "$service"; then
        return 0
    fi
    if [[ $command != /* ]]; then
        __stackbus_die_at 1 "${BASH_SOURCE[1]:-main}" "${BASH_LINENO[0]}" \
            "run_process $service: the command \"$command\" does not start with an absolute path"
        return
    fi
    user=${user:-${STACK_USER:-}}
    if __stackbus_has_systemd; then
        __stackbus_run_under_systemd "$service" "$command" "$group" "$user" "$env_vars"
    else
        __stackbus_run_in_background "$service" "$command" "$group" "$user" "$env_vars"
    fi
}

function __stackbus_run_under_systemd {
    local service=$1 command=$2 group=$3 user=$4 env_vars=$5
    local unit="devstack@$service.service"
    local unitfile="${SYSTEMD_DIR:-/etc/systemd/system}/$unit"
    __stackbus_sudo mkdir -p -- "${unitfile%/*}" || return
    iniset -sudo "$unitfile" Unit Description "Devstack $service"
    iniset -sudo "$unitfile" Service Environment "\"PATH=$PATH\""
    if [[ -n $user ]]; then
        iniset -sudo "$unitfile" Service User "$user"
    fi
    if [[ -n $group ]]; then
        iniset -sudo "$unitfile" Service Group "$group"
    fi
    if [[ -n $env_vars ]]; then
        iniadd_literal -sudo "$unitfile" Service Environment "$env_vars"
    fi
    iniset -sudo "$unitfile" Service ExecStart "$command"
    iniset -sudo "$unitfile" Service KillMode process
    iniset -sudo "$unitfile" Service TimeoutStopSec 300
    iniset -sudo "$unitfile" Install WantedBy multi-user.target
    __stackbus_sudo systemctl daemon-reload || return
    __stackbus_sudo systemctl enable "$unit" || return
    __stackbus_sudo systemctl start "$unit"
}

function __stackbus_service_dir {
    echo "${SERVICE_DIR:-${DEST:-/opt/stack}/status}"
}

function __stackbus_run_in_background {
    local service=$1 command=$2 user=$4 env_vars=$5
    local dir log
    dir=$(__stackbus_service_dir)
    mkdir -p -- "$dir" || return
    if [[ -n ${LOGDIR:-} ]]; then
        mkdir -p -- "$LOGDIR" || return
    fi
    log="${LOGDIR:-$dir}/$service.log"
    local -a as_user=() envs cmd
    if [[ -n $user && $user != "$(id -un)" ]]; then
        if [[ $EUID -eq 0 ]]; then
            as_user=(runuser -u "$user" --)
        else
            as_user=(sudo -u "$user" --)
        fi
    fi
    __stackbus_split_words "$env_vars"
    envs=("${__stackbus_words[@]}")
    __stackbus_split_words "$command"
    cmd=("${__stackbus_words[@]}")
    setsid "${as_user[@]}" env "${envs[@]}" "${cmd[@]}" >> "$log" 2>&1 < /dev/null &
    echo $! > "$dir/$service.pid"
}

# stop_process NAME
# Stops service NAME when it is enabled: stops and disables its systemd unit, or
# sends SIGTERM to the process group recorded by run_process.
function stop_process {
    local service=${1:-}
    if ! is_service_enabled "$service"; then
        return 0
    fi
    if __stackbus_has_systemd; then
        local unit="devstack@$service.service"
        if __stackbus_sudo systemctl is-enabled "$unit" >/dev/null 2>&1; then
            __stackbus_sudo systemctl stop "$unit"
            __stackbus_sudo systemctl disable "$unit"
        fi
        return 0
    fi
    local pidfile pid
    pidfile="$(__stackbus_service_dir)/$service.pid"
    if [[ -f $pidfile ]]; then
        pid=$(<"$pidfile")
        if [[ $pid =~ ^[0-9]+$ ]]; then
            __stackbus_sudo kill -TERM -- "-$pid" 2>/dev/null || __stackbus_sudo kill -TERM "$pid" 2>/dev/null || true
        fi
        rm -f -- "$pidfile"
    fi
    return 0
}

# Runs `systemctl VERB NAME` (or `service NAME VERB` without systemd) as root.
function __stackbus_service_command {
    local verb=$1 name=$2
    if __stackbus_has_systemd; then
        __stackbus_sudo systemctl "$verb" "$name"
    else
        __stackbus_sudo service "$name" "$verb"
    fi
}

# start_service NAME / stop_service NAME / restart_service NAME / reload_service NAME
# The system's service manager, for system services (mysql, rabbitmq-server, ...).
function start_service {
    __stackbus_service_command start "${1:-}"
}

function stop_service {
    __stackbus_service_command stop "${1:-}"
}

function restart_service {
    __stackbus_service_command restart "${1:-}"
}

function reload_service {
    if __stackbus_has_systemd; then
        __stackbus_sudo systemctl reload-or-restart "${1:-}"
    else
        __stackbus_sudo service "${1:-}" reload
    fi
}

# wait_for_service TIMEOUT URL
# Polls URL (curl, no proxy, certificates not checked) once a second until it
# answers with anything but 503; returns 0 then, or 124 after TIMEOUT seconds.
function wait_for_service {
    local timeout=${1:-60} url=${2:-}
    local deadline=$(( SECONDS + timeout )) code
    while :; do
        code=$(curl -k --noproxy '*' -s -o /dev/null -m 5 -w '%{http_code}' "$url" 2>/dev/null) || code=${code:-000}
        if [[ $code != 000 && $code != 503 ]]; then
            return 0
        fi
        if [[ $SECONDS -ge $deadline ]]; then
            return 124
        fi
        sleep 1
    done
}

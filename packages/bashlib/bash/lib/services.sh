# Service enablement (DevStack's ENABLED_SERVICES / DISABLED_SERVICES rules).
#
# ENABLED_SERVICES and DISABLED_SERVICES are comma-separated lists. Sourcing this
# file does not give ENABLED_SERVICES a default: the host's configuration does.
#
# is_service_enabled matches a plain name exactly against the list; a name holding
# a regex character (one of * + ? [ ] ( ) { } ^ $ | \) is matched as a bash regex
# against ",$ENABLED_SERVICES," the way DevStack does for every name, so callers
# such as `is_service_enabled "n-.*"` keep working. On top of the list:
#
#   name        also true when                       unless DISABLED_SERVICES has
#   nova        any n-* service is enabled           -
#   glance      any g-* service                      -
#   neutron     any q-* service                      -
#               any neutron-* service                an entry starting with neutron
#   swift       any s-* service                      -
#   trove       any tr-* service                     -
#   cinder      any c-* service                      an entry starting with cinder
#   keystone    key                                  an entry starting with keystone
#   placement   placement-api (not placement-client) -
#   n-cpu-*     n-cpu                                -
#   s-*         swift                                -
#
# and when a function is_<name>_enabled exists (plugins define these, e.g.
# is_k8s_enabled), its result counts too. The table is what DevStack answers once
# lib/{keystone,nova,glance,cinder,neutron,swift,placement} are sourced.
# disable_service of a group name does not disable its members (as in DevStack):
# `disable_service nova` leaves n-cpu enabled and `is_service_enabled nova` true.

# Word-splits all arguments on blanks, without globbing, into __stackbus_words.
function __stackbus_split_words {
    local -
    set -f
    local IFS=$' \t\n'
    # shellcheck disable=SC2206 # splitting on IFS is the point; globbing is off (set -f)
    __stackbus_words=($*)
}

# Word-splits all arguments on commas and blanks into __stackbus_words.
function __stackbus_split_list {
    local -
    set -f
    local IFS=$', \t\n'
    # shellcheck disable=SC2206 # splitting on IFS is the point; globbing is off (set -f)
    __stackbus_words=($*)
}

# _cleanup_service_list LIST
# Prints LIST with ",," replaced by "," (one pass) and a leading and a trailing
# comma removed.
function _cleanup_service_list {
    local list=${1:-}
    list=${list//,,/,}
    list=${list#,}
    list=${list%,}
    printf '%s\n' "$list"
}

# The same as _cleanup_service_list, into the variable named $1, without a fork.
function __stackbus_cleanup_into {
    local list=${2:-}
    list=${list//,,/,}
    list=${list#,}
    list=${list%,}
    printf -v "$1" '%s' "$list"
}

function __stackbus_service_listed {
    local service=$1 list=",${ENABLED_SERVICES:-},"
    if [[ $service == *[][*+?\(\)\{\}^\$\|\\]* ]]; then
        [[ $list =~ ,${service}, ]]
    else
        [[ $list == *",$service,"* ]]
    fi
}

function __stackbus_service_group_enabled {
    local enabled=",${ENABLED_SERVICES:-}" disabled=",${DISABLED_SERVICES:-}"
    case $1 in
        nova) [[ $enabled == *,n-* ]] ;;
        glance) [[ $enabled == *,g-* ]] ;;
        neutron)
            [[ $enabled == *,q-* ]] || [[ $enabled == *,neutron-* && $disabled != *,neutron* ]]
            ;;
        swift) [[ $enabled == *,s-* ]] ;;
        trove) [[ $enabled == *,tr-* ]] ;;
        cinder) [[ $enabled == *,c-* && $disabled != *,cinder* ]] ;;
        keystone) [[ $enabled, == *,key,* && $disabled != *,keystone* ]] ;;
        placement) [[ $enabled == *,placement-api* ]] ;;
        n-cpu-*) [[ $enabled == *,n-cpu* ]] ;;
        s-*) [[ $enabled == *,swift* ]] ;;
        *) return 1 ;;
    esac
}

# is_service_enabled SERVICE...
# True when any SERVICE is enabled: listed in ENABLED_SERVICES, enabled through
# its group (table above), or approved by an is_<SERVICE>_enabled function.
function is_service_enabled {
    local -
    set +o xtrace
    local enabled=1 service
    __stackbus_split_words "$@"
    local -a services=("${__stackbus_words[@]}")
    for service in "${services[@]}"; do
        if __stackbus_service_listed "$service"; then
            enabled=0
        fi
        if declare -F "is_${service}_enabled" >/dev/null; then
            if "is_${service}_enabled"; then
                enabled=0
            fi
        fi
        if __stackbus_service_group_enabled "$service"; then
            enabled=0
        fi
    done
    return $enabled
}

# enable_service SERVICE...
# Appends each SERVICE that is not already enabled to ENABLED_SERVICES, then
# drops negated entries (disable_negated_services). A service named in
# DISABLED_SERVICES is not enabled: a warning names the caller's file and line.
function enable_service {
    local -
    set +o xtrace
    local __stackbus_list=${ENABLED_SERVICES:-} service
    __stackbus_split_words "$@"
    local -a wanted=("${__stackbus_words[@]}")
    for service in "${wanted[@]}"; do
        if [[ ",${DISABLED_SERVICES:-}," == *",$service,"* ]]; then
            __stackbus_warn_at "${BASH_SOURCE[1]:-main}" "${BASH_LINENO[0]}" \
                "Attempt to enable_service ${service} when it has been disabled"
            continue
        fi
        if ! is_service_enabled "$service"; then
            __stackbus_list+=",$service"
        fi
    done
    __stackbus_cleanup_into ENABLED_SERVICES "$__stackbus_list"
    disable_negated_services
}

# disable_service SERVICE...
# Adds every SERVICE to DISABLED_SERVICES and removes it from ENABLED_SERVICES.
function disable_service {
    local -
    set +o xtrace
    local disabled=${DISABLED_SERVICES:-} enabled=",${ENABLED_SERVICES:-}," service
    __stackbus_split_words "$@"
    local -a unwanted=("${__stackbus_words[@]}")
    for service in "${unwanted[@]}"; do
        disabled+=",$service"
        if is_service_enabled "$service"; then
            enabled=${enabled//",$service,"/,}
        fi
    done
    __stackbus_cleanup_into DISABLED_SERVICES "$disabled"
    __stackbus_cleanup_into ENABLED_SERVICES "$enabled"
}

# disable_all_services
# Empties ENABLED_SERVICES (DISABLED_SERVICES is left alone).
function disable_all_services {
    ENABLED_SERVICES=""
}

# disable_negated_services
# Removes every "-name" entry of ENABLED_SERVICES together with every "name"
# entry; entries may be separated by commas and blanks. Order is kept.
function disable_negated_services {
    local -
    set +o xtrace
    local remaining="" negated="" service
    __stackbus_split_list "${ENABLED_SERVICES:-}"
    for service in "${__stackbus_words[@]}"; do
        if [[ $service == -* ]]; then
            negated+=",${service#-}"
        else
            remaining+=",$service"
        fi
    done
    ENABLED_SERVICES=$(remove_disabled_services "$remaining" "$negated")
}

# remove_disabled_services LIST REMOVE
# Prints LIST without the entries named in REMOVE; both may be separated by
# commas or blanks. The result is comma-separated.
function remove_disabled_services {
    local -
    set +o xtrace
    local result="" service remove keep
    __stackbus_split_list "${2:-}"
    local -a removals=("${__stackbus_words[@]}")
    __stackbus_split_list "${1:-}"
    for service in "${__stackbus_words[@]}"; do
        keep=1
        for remove in "${removals[@]}"; do
            if [[ $remove == "$service" ]]; then
                keep=0
                break
            fi
        done
        if [[ $keep -eq 1 ]]; then
            result+=",$service"
        fi
    done
    _cleanup_service_list "$result"
}

# verify_disabled_services
# Dies when a service listed in DISABLED_SERVICES is in ENABLED_SERVICES, i.e.
# ENABLED_SERVICES was edited directly after a disable_service.
function verify_disabled_services {
    local service
    __stackbus_split_list "${ENABLED_SERVICES:-}"
    for service in "${__stackbus_words[@]}"; do
        if [[ ",${DISABLED_SERVICES:-}," == *",$service,"* ]]; then
            __stackbus_die_at 1 "${BASH_SOURCE[1]:-main}" "${BASH_LINENO[0]}" \
                "ENABLED_SERVICES directly modified to overcome 'disable_service ${service}'"
            return
        fi
    done
    return 0
}

# use_exclusive_service OPTIONS_VAR OUT_VAR SELECTION
# With OPTIONS_VAR holding blank-separated choices (e.g. DATABASE_BACKENDS="mysql
# postgresql"): enables the choice equal to SELECTION, disables every other one
# and sets OUT_VAR=SELECTION. Returns 1 and changes nothing when SELECTION is
# empty or not a substring of the options (as in DevStack, a substring that is no
# choice, e.g. "sql", disables them all).
function use_exclusive_service {
    local -
    set +o xtrace
    local options="" out=${2:-} selection=${3:-} opt
    if __stackbus_is_var_ref "${1:-}"; then
        options=${!1:-}
    fi
    if [[ -z $selection || $options != *"$selection"* ]]; then
        return 1
    fi
    __stackbus_split_words "$options"
    local -a choices=("${__stackbus_words[@]}")
    for opt in "${choices[@]}"; do
        if [[ $opt == "$selection" ]]; then
            enable_service "$opt"
        else
            disable_service "$opt"
        fi
    done
    if __stackbus_is_var_ref "$out"; then
        printf -v "$out" '%s' "$selection"
    fi
    return 0
}

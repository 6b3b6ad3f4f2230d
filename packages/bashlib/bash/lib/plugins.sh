# External plugin registration (DevStack's enable_plugin and friends).
#
# State, kept across re-sourcing:
#   DEVSTACK_PLUGINS   comma-joined plugin names in registration order; it starts
#                      with a comma once a plugin is enabled (",alpha,beta").
#   GITREPO[name]      the plugin's git URL
#   GITDIR[name]       its checkout directory, $DEST/name at enable_plugin time
#   GITBRANCH[name]    its git ref (default: master)
# Nothing is cloned here: the plugin fetcher and agent read these.

DEVSTACK_PLUGINS=${DEVSTACK_PLUGINS:-""}
if ! declare -p GITREPO >/dev/null 2>&1; then
    declare -A -g GITREPO=()
fi
if ! declare -p GITDIR >/dev/null 2>&1; then
    declare -A -g GITDIR=()
fi
if ! declare -p GITBRANCH >/dev/null 2>&1; then
    declare -A -g GITBRANCH=()
fi

# enable_plugin NAME URL [GITREF]
# Registers a plugin: appends ",NAME" to DEVSTACK_PLUGINS and records its URL,
# ref (default master) and checkout dir ($DEST/NAME, with DEST as it is now).
# A name enabled twice dies with "Plugin attempted to be enabled twice: NAME URL
# GITREF", naming the file and line of the second enable_plugin.
function enable_plugin {
    local name=${1:-} url=${2:-} branch=${3:-master}
    if [[ -z $name ]]; then
        __stackbus_die_at 1 "${BASH_SOURCE[1]:-main}" "${BASH_LINENO[0]}" \
            "enable_plugin needs NAME and GITURL"
        return
    fi
    if is_plugin_enabled "$name"; then
        __stackbus_die_at 1 "${BASH_SOURCE[1]:-main}" "${BASH_LINENO[0]}" \
            "Plugin attempted to be enabled twice: ${name} ${url} ${branch}"
        return
    fi
    DEVSTACK_PLUGINS+=",$name"
    GITREPO[$name]=$url
    GITDIR[$name]=${DEST:-}/$name
    GITBRANCH[$name]=$branch
}

# is_plugin_enabled NAME
# True when NAME was registered with enable_plugin (an exact name, not a pattern).
function is_plugin_enabled {
    [[ -n ${1:-} && ",${DEVSTACK_PLUGINS:-}," == *",$1,"* ]]
}

# define_plugin NAME
# Does nothing. Plugins declare their name in devstack/settings for tools that
# read the file as text.
function define_plugin {
    :
}

# plugin_requires NAME OTHER
# Does nothing (as in DevStack); tools read these lines from the plugin's
# settings file as text.
function plugin_requires {
    :
}

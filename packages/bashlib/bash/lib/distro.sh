# Distribution checks and package installation (DevStack's distro and package
# functions), working through apt-get on Debian/Ubuntu and dnf on Fedora/RHEL.
#
# The os-release file is $STACKBUS_OS_RELEASE (default /etc/os-release). Commands
# that need root run directly when the shell is root, else through sudo.
# OFFLINE=True turns apt_get, apt_get_update and yum_install into no-ops.

# GetOSVersion
# Sets and exports, from os-release:
#   os_VENDOR    Debian, Ubuntu, Fedora, CentOSStream, RedHatEnterpriseLinux,
#                RockyLinux, AlmaLinux, openEuler, ... (what lsb_release -i says,
#                or NAME without blanks for the RHEL family)
#   os_RELEASE   VERSION_ID, e.g. 12, 24.04, 40, 9
#   os_CODENAME  VERSION_CODENAME; on the RHEL family the text in parentheses of
#                VERSION; else n/a
#   os_PACKAGE   deb for Debian, Ubuntu and their derivatives, else rpm
function GetOSVersion {
    local file=${STACKBUS_OS_RELEASE:-/etc/os-release}
    local line key value id="" id_like="" name="" version="" version_id="" codename=""
    if [[ ! -r $file ]]; then
        __stackbus_die_at 1 "${BASH_SOURCE[1]:-main}" "${BASH_LINENO[0]}" "cannot read $file to determine the distribution"
        return
    fi
    while IFS= read -r line || [[ -n $line ]]; do
        [[ $line =~ ^([A-Z_]+)=(.*)$ ]] || continue
        key=${BASH_REMATCH[1]}
        value=${BASH_REMATCH[2]}
        if [[ $value == \"*\" || $value == \'*\' ]]; then
            value=${value:1:${#value}-2}
        fi
        case $key in
            ID) id=$value ;;
            ID_LIKE) id_like=$value ;;
            NAME) name=$value ;;
            VERSION) version=$value ;;
            VERSION_ID) version_id=$value ;;
            VERSION_CODENAME) codename=$value ;;
        esac
    done < "$file"

    case $id in
        debian) os_VENDOR=Debian ;;
        ubuntu) os_VENDOR=Ubuntu ;;
        fedora) os_VENDOR=Fedora ;;
        openEuler | openeuler) os_VENDOR=openEuler ;;
        *) os_VENDOR=${name//[[:space:]]/} ;;
    esac
    os_RELEASE=${version_id:-n/a}
    if [[ -z $codename && $id =~ ^(almalinux|centos|rocky|rhel)$ && $version =~ \(([^\)]*)\) ]]; then
        codename=${BASH_REMATCH[1]}
    fi
    os_CODENAME=${codename:-n/a}
    if [[ " $id $id_like " == *" debian "* || " $id $id_like " == *" ubuntu "* ]]; then
        os_PACKAGE=deb
    else
        os_PACKAGE=rpm
    fi
    export os_VENDOR os_RELEASE os_CODENAME os_PACKAGE
}

# GetDistro
# Calls GetOSVersion and sets and exports DISTRO: the codename on Debian, Ubuntu
# and their derivatives (bookworm, noble), f<release> on Fedora, rhel<major> on
# the RHEL family, openEuler-<release> on openEuler. Dies on any other
# distribution.
function GetDistro {
    GetOSVersion || return
    if [[ $os_PACKAGE == deb ]]; then
        export DISTRO=$os_CODENAME
        return 0
    fi
    case $os_VENDOR in
        *Fedora*) DISTRO="f$os_RELEASE" ;;
        *Red*Hat* | *CentOS* | *AlmaLinux* | *Scientific* | *OracleServer* | *RockyLinux* | *Virtuozzo*)
            DISTRO="rhel${os_RELEASE%%.*}"
            ;;
        *openEuler*) DISTRO="openEuler-$os_RELEASE" ;;
        *)
            __stackbus_die_at 1 "${BASH_SOURCE[1]:-main}" "${BASH_LINENO[0]}" "Unable to determine DISTRO, can not continue."
            return
            ;;
    esac
    export DISTRO
}

# is_arch ARCH: true when `uname -m` is ARCH (x86_64, aarch64, ...).
function is_arch {
    [[ "$(uname -m)" == "${1:-}" ]]
}

# is_ubuntu: true on Debian, Ubuntu and their derivatives (os_PACKAGE=deb).
function is_ubuntu {
    if [[ -z ${os_PACKAGE:-} ]]; then
        GetOSVersion || return 1
    fi
    [[ $os_PACKAGE == deb ]]
}

# is_fedora: true on Fedora and the RHEL family (RHEL, CentOS, Rocky, Alma,
# Oracle, Virtuozzo, openEuler).
function is_fedora {
    if [[ -z ${os_VENDOR:-} ]]; then
        GetOSVersion || return 1
    fi
    case $os_VENDOR in
        Fedora | "Red Hat" | openEuler | RedHatEnterpriseServer | RedHatEnterprise | RedHatEnterpriseLinux | \
            RockyLinux | CentOS | CentOSStream | AlmaLinux | OracleServer | Virtuozzo)
            return 0
            ;;
    esac
    return 1
}

# is_openeuler: true on openEuler.
function is_openeuler {
    if [[ -z ${os_VENDOR:-} ]]; then
        GetOSVersion || return 1
    fi
    [[ $os_VENDOR == openEuler ]]
}

# is_suse: true on openSUSE/SLES (DevStack dropped SUSE; kept for older plugins).
function is_suse {
    if [[ -z ${os_VENDOR:-} ]]; then
        GetOSVersion || return 1
    fi
    [[ $os_VENDOR == *SUSE* || $os_VENDOR == *SLES* ]]
}

# exit_distro_not_supported [WHAT]
# Dies with "Support for $DISTRO is incomplete[: no support for WHAT]".
function exit_distro_not_supported {
    if [[ -z ${DISTRO:-} ]]; then
        GetDistro || return
    fi
    local msg="Support for $DISTRO is incomplete."
    if [[ $# -gt 0 ]]; then
        msg="Support for $DISTRO is incomplete: no support for $*"
    fi
    __stackbus_die_at 1 "${BASH_SOURCE[1]:-main}" "${BASH_LINENO[0]}" "$msg"
}

# apt_get OPERATION [PACKAGE...]
# apt-get --assume-yes with DEBIAN_FRONTEND=noninteractive, --force-confold and
# the proxy variables, as root, stdin from /dev/null. Returns apt-get's status.
function apt_get {
    if [[ ${OFFLINE:-} == True || $# -eq 0 ]]; then
        return 0
    fi
    local rc=0
    __stackbus_sudo env DEBIAN_FRONTEND=noninteractive \
        http_proxy="${http_proxy:-}" https_proxy="${https_proxy:-}" no_proxy="${no_proxy:-}" \
        apt-get --option "Dpkg::Options::=--force-confold" --assume-yes "$@" < /dev/null || rc=$?
    return $rc
}

# apt_get_update
# `apt-get update` once per session (again only with RETRY_UPDATE=True), retried
# every 30 s for up to 300 s; dies when it never succeeds. Sets REPOS_UPDATED=True.
function apt_get_update {
    if [[ ${REPOS_UPDATED:-} == True && ${RETRY_UPDATE:-} != True ]]; then
        return 0
    fi
    if [[ ${OFFLINE:-} == True ]]; then
        return 0
    fi
    local deadline=$(( SECONDS + ${STACKBUS_APT_UPDATE_TIMEOUT:-300} ))
    until __stackbus_sudo env http_proxy="${http_proxy:-}" https_proxy="${https_proxy:-}" \
        no_proxy="${no_proxy:-}" apt-get update < /dev/null; do
        if [[ $SECONDS -ge $deadline ]]; then
            __stackbus_die_at 1 "${BASH_SOURCE[1]:-main}" "${BASH_LINENO[0]}" "Failed to update apt repos, we're dead now"
            return
        fi
        sleep 30
    done
    REPOS_UPDATED=True
}

# update_package_repo
# Refreshes the package index (apt only) unless NO_UPDATE_REPOS=True.
function update_package_repo {
    NO_UPDATE_REPOS=${NO_UPDATE_REPOS:-False}
    REPOS_UPDATED=${REPOS_UPDATED:-False}
    RETRY_UPDATE=${RETRY_UPDATE:-False}
    if [[ $NO_UPDATE_REPOS == True ]]; then
        return 0
    fi
    if is_ubuntu; then
        apt_get_update
    fi
}

# real_install_package PACKAGE...: apt-get install or dnf install, no index refresh.
function real_install_package {
    if is_ubuntu; then
        apt_get install "$@"
    elif is_fedora; then
        yum_install "$@"
    else
        exit_distro_not_supported "installing packages"
    fi
}

# install_package PACKAGE...
# Refreshes the package index when needed and installs the packages; on failure
# refreshes it again and retries once.
function install_package {
    update_package_repo || return
    if ! real_install_package "$@"; then
        RETRY_UPDATE=True update_package_repo || return
        real_install_package "$@"
    fi
}

# is_package_installed PACKAGE...
# True when every PACKAGE is installed (dpkg state "install ok installed", or
# `rpm -q`). False for no arguments and for removed packages whose configuration
# files remain.
function is_package_installed {
    if [[ $# -eq 0 ]]; then
        return 1
    fi
    if [[ -z ${os_PACKAGE:-} ]]; then
        GetOSVersion || return 1
    fi
    if [[ $os_PACKAGE == deb ]]; then
        local states state
        states=$(dpkg-query -W -f='${Status}\n' "$@" 2>/dev/null) || return 1
        while IFS= read -r state; do
            if [[ $state != "install ok installed" ]]; then
                return 1
            fi
        done <<< "$states"
        return 0
    fi
    rpm --quiet -q "$@"
}

# uninstall_package PACKAGE...: apt-get purge, or dnf remove (errors ignored).
function uninstall_package {
    if is_ubuntu; then
        apt_get purge "$@"
    elif is_fedora; then
        __stackbus_sudo dnf remove -y "$@" || :
    else
        exit_distro_not_supported "uninstalling packages"
    fi
}

# yum_install PACKAGE...: dnf install -y as root with the proxy variables.
function yum_install {
    if [[ ${OFFLINE:-} == True ]]; then
        return 0
    fi
    sudo_with_proxies dnf install -y "$@"
}

# INI files and local.conf editing (DevStack's inc/ini-config).
#
# Files are read and rewritten by one awk program (below). The layout rules are
# DevStack's:
#   - a section [S] is the run of lines from a line starting with "[S]" to the
#     next line starting with "[" that holds a "]" (that line included, as a sed
#     range; so of two back-to-back [S] blocks only the first is "the section");
#   - an option line starts with the option name, then blanks, then "=";
#   - a new option is inserted right after every "[S]" header line, written as
#     "option = value"; a new section is appended as a blank line then "[S]";
#   - an existing option keeps its spacing; only the text after "= " changes.
# Unlike DevStack, section and option names are matched literally (DevStack splices
# them into sed regexes, so "." matched any character and "[" or "/" broke the
# call), and values are written literally except that iniset squeezes blank runs
# (DevStack's unquoted echo; it also expanded globs, which we do not).
# Every function accepts a leading -sudo (reads and writes then run as root);
# with an empty section or option the editing functions do nothing.

# shellcheck disable=SC2016 # an awk program: its $ fields are awk's, not the shell's
__STACKBUS_INI_AWK='
function starts(s, p) { return substr(s, 1, length(p)) == p }
function is_header(line, name) { return starts(line, "[" name "]") }
function any_header(line) { return line ~ /^\[.*\]/ }
function is_meta(line) { return line ~ /^\[\[.+[|].*\]\]/ }
function blank(c) { return c == " " || c == "\t" }
# Length of the "key<blanks>=<blanks>" prefix of line, 0 when line does not set key.
function prefix_len(line, key,   rest) {
    if (!starts(line, key)) return 0
    rest = substr(line, length(key) + 1)
    if (!match(rest, /^[ \t]*=[ \t]*/)) return 0
    return length(key) + RLENGTH
}
function squeeze(s) {
    gsub(/[ \t\n]+/, " ", s)
    sub(/^ /, "", s)
    sub(/ $/, "", s)
    return s
}
function has_header(name,   i) {
    for (i = 1; i <= n; i++) if (is_header(L[i], name)) return 1
    return 0
}
# inr[i] = 1 for lines of every range opened by a [name] header line.
function mark_section(name,   i, open) {
    open = 0
    for (i = 1; i <= n; i++) {
        if (open) {
            inr[i] = 1
            if (any_header(L[i])) open = 0
        } else if (is_header(L[i], name)) {
            inr[i] = 1
            open = 1
        } else inr[i] = 0
    }
}
# blk[i] = 1 for lines of every range opened by a line starting with meta;
# hdr[i] = 1 for those opening lines.
function mark_block(meta,   i, open) {
    open = 0
    for (i = 1; i <= n; i++) {
        hdr[i] = 0
        if (open) {
            blk[i] = 1
            if (is_meta(L[i])) open = 0
        } else if (starts(L[i], meta)) {
            blk[i] = 1
            hdr[i] = 1
            open = 1
        } else blk[i] = 0
    }
}
# cand[i] = 1 for the lines of the [[meta]] blocks that set key, in section name
# (anywhere in the block when name is empty); returns their count.
function mark_lc_options(meta, name, key,   i, open, count) {
    mark_block(meta)
    open = 0
    count = 0
    for (i = 1; i <= n; i++) {
        cand[i] = 0
        if (!blk[i]) { open = 0; continue }
        if (name == "") {
            if (!hdr[i] && prefix_len(L[i], key)) cand[i] = 1
        } else if (open) {
            if (any_header(L[i])) open = 0
            else if (prefix_len(L[i], key)) cand[i] = 1
        } else if (!hdr[i] && is_header(L[i], name)) open = 1
        count += cand[i]
    }
    return count
}
function lc_has_section(meta, name,   i) {
    mark_block(meta)
    for (i = 1; i <= n; i++) if (blk[i] && !hdr[i] && is_header(L[i], name)) return 1
    return 0
}
function insert_after(i, text,   joined) {
    joined = (i in ins) ? ins[i] "\n" text : text
    ins[i] = joined
}
function insert_after_headers(name, text,   i) {
    for (i = 1; i <= n; i++) if (is_header(L[i], name)) insert_after(i, text)
}
function insert_after_meta(text,   i) {
    for (i = 1; i <= n; i++) if (hdr[i]) insert_after(i, text)
}
function insert_after_lc_section(name, text,   i) {
    for (i = 1; i <= n; i++) if (blk[i] && !hdr[i] && is_header(L[i], name)) insert_after(i, text)
}
function replace_values(key, value, mark,   i, p) {
    for (i = 1; i <= n; i++) {
        if (mark == "inr" && !inr[i]) continue
        if (mark == "cand" && !cand[i]) continue
        p = prefix_len(L[i], key)
        if (p) L[i] = substr(L[i], 1, p) value
    }
}
function uncomment(line, key,   i, c, run, best, from, keep) {
    best = 0
    for (i = 1; i <= length(line); i++) {
        c = substr(line, i, 1)
        if (blank(c)) {
            if (best) break
            continue
        }
        if (i == 1 || blank(substr(line, i - 1, 1))) run = i
        if (c != "#") continue
        from = i + 1
        while (blank(substr(line, from, 1))) from++
        if (prefix_len(substr(line, from), key)) {
            if (!best) best = run
            keep = from
        }
    }
    if (!best) return line
    return substr(line, 1, best - 1) substr(line, keep)
}
function emit(   i) {
    for (i = 1; i <= n; i++) {
        if (!(i in drop)) print L[i]
        if (i in ins) print ins[i]
    }
}
{ L[++n] = $0 }
END {
    op = ENVIRON["__STACKBUS_INI_OP"]
    sec = ENVIRON["__STACKBUS_INI_SECTION"]
    key = ENVIRON["__STACKBUS_INI_OPTION"]
    val = ENVIRON["__STACKBUS_INI_VALUE"]
    meta = "[[" ENVIRON["__STACKBUS_INI_GROUP"] "|" ENVIRON["__STACKBUS_INI_CONF"] "]]"
    if (op == "get" || op == "getm" || op == "has") {
        mark_section(sec)
        out = ""
        found = 0
        for (i = 1; i <= n; i++) {
            if (!inr[i]) continue
            p = prefix_len(L[i], key)
            if (!p) continue
            piece = (op == "get") ? L[i] : substr(L[i], p + 1)
            out = found ? out "\n" piece : piece
            found = 1
        }
        if (op == "has") exit(found ? 0 : 1)
        if (op == "get" && found) out = substr(out, index(out, "=") + 1)
        print squeeze(out)
        exit 0
    }
    if (op == "sections") {
        out = ""
        for (i = 1; i <= n; i++) {
            if (!any_header(L[i])) continue
            for (r = length(L[i]); r > 1; r--) if (substr(L[i], r, 1) == "]") break
            out = out " " substr(L[i], 2, r - 2) substr(L[i], r + 1)
        }
        print squeeze(out)
        exit 0
    }
    if (op == "set") {
        if (!has_header(sec)) { L[++n] = ""; L[++n] = "[" sec "]" }
        mark_section(sec)
        found = 0
        for (i = 1; i <= n; i++) if (inr[i] && prefix_len(L[i], key)) found = 1
        if (found) replace_values(key, val, "inr")
        else insert_after_headers(sec, key " = " val)
    } else if (op == "setm") {
        if (!has_header(sec)) { L[++n] = ""; L[++n] = "[" sec "]" }
        else {
            mark_section(sec)
            for (i = 1; i <= n; i++) if (inr[i] && prefix_len(L[i], key)) drop[i] = 1
        }
        if (val != "") {
            count = split(val, values, "\n")
            text = key " = " values[1]
            for (v = 2; v <= count; v++) text = text "\n" key " = " values[v]
            insert_after_headers(sec, text)
        }
    } else if (op == "addlit") {
        insert_after_headers(sec, key " = " val)
    } else if (op == "del") {
        mark_section(sec)
        for (i = 1; i <= n; i++) if (inr[i] && prefix_len(L[i], key)) drop[i] = 1
    } else if (op == "comment") {
        mark_section(sec)
        for (i = 1; i <= n; i++) if (inr[i] && prefix_len(L[i], key)) L[i] = "#" L[i]
    } else if (op == "uncomment") {
        mark_section(sec)
        for (i = 1; i <= n; i++) if (inr[i]) L[i] = uncomment(L[i], key)
    } else if (op == "lchassec") {
        exit(lc_has_section(meta, sec) ? 0 : 1)
    } else if (op == "lchasopt") {
        exit(mark_lc_options(meta, sec, key) ? 0 : 1)
    } else if (op == "lcupdate") {
        mark_lc_options(meta, sec, key)
        replace_values(key, val, "cand")
    } else if (op == "lcadd") {
        mark_block(meta)
        if (sec == "") insert_after_meta(key "=" val)
        else insert_after_lc_section(sec, key "=" val)
    } else if (op == "lcaddsec") {
        mark_block(meta)
        insert_after_meta("[" sec "]\n" key "=" val)
    } else if (op == "lcset") {
        mark_block(meta)
        present = 0
        for (i = 1; i <= n; i++) if (hdr[i]) present = 1
        if (!present) {
            L[++n] = ""
            L[++n] = meta
            if (sec != "") L[++n] = "[" sec "]"
            L[++n] = key "=" val
        } else if (sec != "" && !lc_has_section(meta, sec)) {
            insert_after_meta("[" sec "]\n" key "=" val)
        } else if (mark_lc_options(meta, sec, key)) {
            replace_values(key, val, "cand")
        } else if (sec == "") {
            insert_after_meta(key "=" val)
        } else {
            insert_after_lc_section(sec, key "=" val)
        }
    } else {
        print "stackbus ini: unknown operation " op > "/dev/stderr"
        exit 2
    }
    emit()
}
'

# Runs the awk program over FILE ($2; nothing when it does not exist), as root
# when $1 is 1. The operation and its arguments come from __STACKBUS_INI_* in
# the environment.
function __stackbus_ini_awk {
    local sudo=$1 file=$2
    local awk=${STACKBUS_AWK:-awk}
    if [[ $sudo == 1 ]]; then
        if __stackbus_sudo test -e "$file"; then
            __stackbus_sudo cat -- "$file" | "$awk" "$__STACKBUS_INI_AWK"
        else
            "$awk" "$__STACKBUS_INI_AWK" < /dev/null
        fi
    elif [[ -e $file ]]; then
        if [[ ! -r $file ]]; then
            echo "stackbus ini: cannot read $file (use -sudo for root-owned files)" >&2
            return 1
        fi
        "$awk" "$__STACKBUS_INI_AWK" < "$file"
    else
        "$awk" "$__STACKBUS_INI_AWK" < /dev/null
    fi
}

# Rewrites FILE ($2) with the awk program's output, as root when $1 is 1. The
# file is written in place (its owner and mode are kept) or created.
function __stackbus_ini_edit {
    local sudo=$1 file=$2 content
    if ! content=$(__stackbus_ini_awk "$sudo" "$file" && printf x); then
        return 1
    fi
    content=${content%x}
    if [[ $sudo == 1 ]]; then
        printf '%s' "$content" | __stackbus_sudo tee -- "$file" >/dev/null
    else
        printf '%s' "$content" > "$file"
    fi
}

# Sets the variable named $1 to $2 with blank runs squeezed to one space and
# leading/trailing blanks removed.
function __stackbus_squeeze_into {
    local -
    set -f
    local IFS=$' \t\n'
    # shellcheck disable=SC2206 # splitting on blanks is the point; globbing is off (set -f)
    local -a __stackbus_sq=($2)
    IFS=' '
    printf -v "$1" '%s' "${__stackbus_sq[*]}"
}

# iniset [-sudo] FILE SECTION OPTION VALUE
# Sets OPTION in SECTION: replaces the value of every OPTION line of the section
# in place, or inserts "OPTION = VALUE" after the [SECTION] header, appending the
# section (and creating FILE) when missing. Blank runs in VALUE are squeezed.
function iniset {
    local -
    set +o xtrace
    local sudo=0
    if [[ ${1:-} == -sudo ]]; then
        sudo=1
        shift
    fi
    local file=${1:-} section=${2:-} option=${3:-} value=${4:-}
    if [[ -z $section || -z $option ]]; then
        return 0
    fi
    __stackbus_squeeze_into value "$value"
    local -x __STACKBUS_INI_OP=set __STACKBUS_INI_SECTION=$section \
        __STACKBUS_INI_OPTION=$option __STACKBUS_INI_VALUE=$value
    __stackbus_ini_edit "$sudo" "$file"
}

# iniget [-sudo] FILE SECTION OPTION
# Prints the value of OPTION in SECTION (blank runs squeezed); an empty line when
# the option, the section or the file is missing.
function iniget {
    local -
    set +o xtrace
    local sudo=0
    if [[ ${1:-} == -sudo ]]; then
        sudo=1
        shift
    fi
    local -x __STACKBUS_INI_OP=get __STACKBUS_INI_SECTION=${2:-} __STACKBUS_INI_OPTION=${3:-}
    __stackbus_ini_awk "$sudo" "${1:-}"
}

# iniget_multiline [-sudo] FILE SECTION OPTION
# Prints every value of OPTION in SECTION, space-separated.
function iniget_multiline {
    local -
    set +o xtrace
    local sudo=0
    if [[ ${1:-} == -sudo ]]; then
        sudo=1
        shift
    fi
    local -x __STACKBUS_INI_OP=getm __STACKBUS_INI_SECTION=${2:-} __STACKBUS_INI_OPTION=${3:-}
    __stackbus_ini_awk "$sudo" "${1:-}"
}

# ini_has_option [-sudo] FILE SECTION OPTION
# True when SECTION has an OPTION line, even with an empty value.
function ini_has_option {
    local -
    set +o xtrace
    local sudo=0
    if [[ ${1:-} == -sudo ]]; then
        sudo=1
        shift
    fi
    local -x __STACKBUS_INI_OP=has __STACKBUS_INI_SECTION=${2:-} __STACKBUS_INI_OPTION=${3:-}
    __stackbus_ini_awk "$sudo" "${1:-}" >/dev/null
}

# iniget_sections [-sudo] FILE
# Prints the names of all sections, space-separated ("[ ccc ]" gives "ccc").
function iniget_sections {
    local -
    set +o xtrace
    local sudo=0
    if [[ ${1:-} == -sudo ]]; then
        sudo=1
        shift
    fi
    local -x __STACKBUS_INI_OP=sections
    __stackbus_ini_awk "$sudo" "${1:-}"
}

# iniset_multiline [-sudo] FILE SECTION OPTION VALUE...
# Replaces all OPTION lines of SECTION by one "OPTION = VALUE" line per value, in
# the given order, right after the header (appending the section when missing).
# Values are split on blanks.
function iniset_multiline {
    local -
    set +o xtrace
    local sudo=0
    if [[ ${1:-} == -sudo ]]; then
        sudo=1
        shift
    fi
    local file=${1:-} section=${2:-} option=${3:-}
    if [[ -z $section || -z $option ]]; then
        return 0
    fi
    shift 3
    __stackbus_split_words "$@"
    local values=""
    # shellcheck disable=SC2154 # __stackbus_words is set by __stackbus_split_words (services.sh)
    if [[ ${#__stackbus_words[@]} -gt 0 ]]; then
        printf -v values '%s\n' "${__stackbus_words[@]}"
        values=${values%$'\n'}
    fi
    local -x __STACKBUS_INI_OP=setm __STACKBUS_INI_SECTION=$section \
        __STACKBUS_INI_OPTION=$option __STACKBUS_INI_VALUE=$values
    __stackbus_ini_edit "$sudo" "$file"
}

# iniadd [-sudo] FILE SECTION OPTION VALUE...
# Adds values to a multi-line OPTION, after the ones it has (see iniset_multiline).
function iniadd {
    local -
    set +o xtrace
    local sudo=""
    if [[ ${1:-} == -sudo ]]; then
        sudo=-sudo
        shift
    fi
    local file=${1:-} section=${2:-} option=${3:-} existing
    shift 3 || shift $#
    existing=$(iniget_multiline ${sudo:+"$sudo"} "$file" "$section" "$option") || return 1
    __stackbus_split_words "$existing" "$@"
    iniset_multiline ${sudo:+"$sudo"} "$file" "$section" "$option" "${__stackbus_words[@]}"
}

# iniadd_literal [-sudo] FILE SECTION OPTION VALUE
# Inserts "OPTION = VALUE" right after the [SECTION] header, keeping the other
# OPTION lines; VALUE is written as given. Does nothing when the section is missing.
function iniadd_literal {
    local -
    set +o xtrace
    local sudo=0
    if [[ ${1:-} == -sudo ]]; then
        sudo=1
        shift
    fi
    local file=${1:-} section=${2:-} option=${3:-}
    if [[ -z $section || -z $option ]]; then
        return 0
    fi
    local -x __STACKBUS_INI_OP=addlit __STACKBUS_INI_SECTION=$section \
        __STACKBUS_INI_OPTION=$option __STACKBUS_INI_VALUE=${4:-}
    __stackbus_ini_edit "$sudo" "$file"
}

# inidelete [-sudo] FILE SECTION OPTION
# Deletes every OPTION line of SECTION. A missing section is fine.
function inidelete {
    local -
    set +o xtrace
    local sudo=0
    if [[ ${1:-} == -sudo ]]; then
        sudo=1
        shift
    fi
    local file=${1:-} section=${2:-} option=${3:-}
    if [[ -z $section || -z $option || ! -e $file ]]; then
        return 0
    fi
    local -x __STACKBUS_INI_OP=del __STACKBUS_INI_SECTION=$section __STACKBUS_INI_OPTION=$option
    __stackbus_ini_edit "$sudo" "$file"
}

# inicomment [-sudo] FILE SECTION OPTION
# Comments out (prefixes "#" to) every OPTION line of SECTION.
function inicomment {
    local -
    set +o xtrace
    local sudo=0
    if [[ ${1:-} == -sudo ]]; then
        sudo=1
        shift
    fi
    local file=${1:-} section=${2:-} option=${3:-}
    if [[ -z $section || -z $option || ! -e $file ]]; then
        return 0
    fi
    local -x __STACKBUS_INI_OP=comment __STACKBUS_INI_SECTION=$section __STACKBUS_INI_OPTION=$option
    __stackbus_ini_edit "$sudo" "$file"
}

# iniuncomment [-sudo] FILE SECTION OPTION
# Uncomments OPTION lines of SECTION: "#OPTION = x", "# OPTION=x" and "##OPTION=x"
# become "OPTION = x" / "OPTION=x".
function iniuncomment {
    local -
    set +o xtrace
    local sudo=0
    if [[ ${1:-} == -sudo ]]; then
        sudo=1
        shift
    fi
    local file=${1:-} section=${2:-} option=${3:-}
    if [[ -z $section || -z $option || ! -e $file ]]; then
        return 0
    fi
    local -x __STACKBUS_INI_OP=uncomment __STACKBUS_INI_SECTION=$section __STACKBUS_INI_OPTION=$option
    __stackbus_ini_edit "$sudo" "$file"
}

# local.conf editing. A meta section is the run of lines from a "[[GROUP|CONF]]"
# header to the next "[[...|...]]" header; inside it, [SECTION] runs to the next
# line starting with "[". Options are written "option=value" (no blanks: what
# DevStack writes, and the form a localrc line must have to be valid bash); an
# existing option keeps its spacing. Names are matched literally and must start
# the line (DevStack's unanchored match also took commented-out lines as present).

# True when $1 asks for root ("-sudo", "sudo", "sudo ").
function __stackbus_lc_sudo {
    case ${1:-} in
        -sudo | sudo | "sudo ") echo 1 ;;
        *) echo 0 ;;
    esac
}

# localconf_has_section FILE GROUP CONF SECTION
function localconf_has_section {
    local -x __STACKBUS_INI_OP=lchassec __STACKBUS_INI_GROUP=${2:-} __STACKBUS_INI_CONF=${3:-} \
        __STACKBUS_INI_SECTION=${4:-}
    [[ -n ${4:-} ]] && __stackbus_ini_awk 0 "${1:-}" >/dev/null
}

# localconf_has_option FILE GROUP CONF SECTION OPTION
# SECTION may be empty: the option is then looked for anywhere in the meta section
# (the form of [[local|localrc]]).
function localconf_has_option {
    local -x __STACKBUS_INI_OP=lchasopt __STACKBUS_INI_GROUP=${2:-} __STACKBUS_INI_CONF=${3:-} \
        __STACKBUS_INI_SECTION=${4:-} __STACKBUS_INI_OPTION=${5:-}
    [[ -n ${5:-} ]] && __stackbus_ini_awk 0 "${1:-}" >/dev/null
}

# localconf_update_option SUDO FILE GROUP CONF SECTION OPTION VALUE
# Replaces the value of existing OPTION lines; changes nothing when there are none.
function localconf_update_option {
    local sudo
    sudo=$(__stackbus_lc_sudo "${1:-}")
    local -x __STACKBUS_INI_OP=lcupdate __STACKBUS_INI_GROUP=${3:-} __STACKBUS_INI_CONF=${4:-} \
        __STACKBUS_INI_SECTION=${5:-} __STACKBUS_INI_OPTION=${6:-} __STACKBUS_INI_VALUE=${7:-}
    if [[ -z ${6:-} || ! -e ${2:-} ]]; then
        return 0
    fi
    __stackbus_ini_edit "$sudo" "$2"
}

# localconf_add_option SUDO FILE GROUP CONF SECTION OPTION VALUE
# Inserts "OPTION=VALUE" after the [SECTION] line of the meta section, or after
# the meta header when SECTION is empty; nothing when either is missing.
function localconf_add_option {
    local sudo
    sudo=$(__stackbus_lc_sudo "${1:-}")
    local -x __STACKBUS_INI_OP=lcadd __STACKBUS_INI_GROUP=${3:-} __STACKBUS_INI_CONF=${4:-} \
        __STACKBUS_INI_SECTION=${5:-} __STACKBUS_INI_OPTION=${6:-} __STACKBUS_INI_VALUE=${7:-}
    if [[ -z ${6:-} || ! -e ${2:-} ]]; then
        return 0
    fi
    __stackbus_ini_edit "$sudo" "$2"
}

# localconf_add_section_and_option SUDO FILE GROUP CONF SECTION OPTION VALUE
# Inserts "[SECTION]" and "OPTION=VALUE" right after the meta header.
function localconf_add_section_and_option {
    local sudo
    sudo=$(__stackbus_lc_sudo "${1:-}")
    local -x __STACKBUS_INI_OP=lcaddsec __STACKBUS_INI_GROUP=${3:-} __STACKBUS_INI_CONF=${4:-} \
        __STACKBUS_INI_SECTION=${5:-} __STACKBUS_INI_OPTION=${6:-} __STACKBUS_INI_VALUE=${7:-}
    if [[ -z ${5:-} || -z ${6:-} || ! -e ${2:-} ]]; then
        return 0
    fi
    __stackbus_ini_edit "$sudo" "$2"
}

# localconf_set [-sudo] FILE GROUP CONF SECTION OPTION VALUE
# Sets OPTION=VALUE in [[GROUP|CONF]] (SECTION empty for [[local|localrc]]):
#   - meta section missing: appends a blank line, "[[GROUP|CONF]]", "[SECTION]"
#     (when given) and "OPTION=VALUE" (creating FILE);
#   - SECTION missing in it: inserts "[SECTION]" and "OPTION=VALUE" after the header;
#   - OPTION missing: inserts "OPTION=VALUE" after [SECTION] (or the header);
#   - else replaces the value in place.
# Does nothing when GROUP, CONF, OPTION or VALUE is empty.
function localconf_set {
    local -
    set +o xtrace
    local sudo=0
    if [[ ${1:-} == -sudo ]]; then
        sudo=1
        shift
    fi
    local file=${1:-} group=${2:-} conf=${3:-} section=${4:-} option=${5:-} value=${6:-}
    if [[ -z $group || -z $conf || -z $option || -z $value ]]; then
        return 0
    fi
    local -x __STACKBUS_INI_OP=lcset __STACKBUS_INI_GROUP=$group __STACKBUS_INI_CONF=$conf \
        __STACKBUS_INI_SECTION=$section __STACKBUS_INI_OPTION=$option __STACKBUS_INI_VALUE=$value
    __stackbus_ini_edit "$sudo" "$file"
}

# localrc_set [-sudo] FILE OPTION VALUE
# localconf_set FILE local localrc "" OPTION VALUE: sets a localrc variable.
function localrc_set {
    local sudo=()
    if [[ ${1:-} == -sudo ]]; then
        sudo=(-sudo)
        shift
    fi
    localconf_set "${sudo[@]}" "${1:-}" local localrc "" "${2:-}" "${3:-}"
}

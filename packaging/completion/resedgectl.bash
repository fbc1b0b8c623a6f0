# resedgectl(1) bash completion: commands, options, output formats, files,
# and (best effort, 2 s at most) names of existing inventory items.
# Install as /usr/share/bash-completion/completions/resedgectl.

_resedgectl_global_opts="--config --hub --ca --cert --key --output -o --verbose -v --help -h --version"

_resedgectl_cmd_opts() {
    case "$1" in
        "apps list") echo "--limit --search --namespace --metadata --orderby --all --next" ;;
        *" list") echo "--limit --search --group --expression --metadata --orderby --all --next" ;;
        *" create") echo "--set --set-file --metadata --group --expression --file -f --dry-run" ;;
        *" update") echo "--set --set-file --metadata --group --expression --file -f --if-match --dry-run" ;;
        *" delete") echo "--cascade --dry-run --if-match" ;;
        "clusters import") echo "--create-groups --dry-run" ;;
        "config set"|"config unset") echo "--dry-run" ;;
        "clusters enroll-code") echo "--ttl" ;;
        "clusters history") echo "--limit --all --next" ;;
        "clusters revert") echo "--to --dry-run" ;;
        "clusters files") echo "--rev" ;;
        "audit") echo "--entity --actor --limit --all --next" ;;
        "users add"|"users enroll-code") echo "--role --ttl" ;;
        "login") echo "--code --ca-fingerprint" ;;
    esac
}

_resedgectl_subcommands() {
    case "$1" in
        groups|namespaces|policies) echo "list get create update delete" ;;
        clusters) echo "list get create update delete import enroll-code revoke status history revert unpin files" ;;
        apps) echo "list get create update delete status" ;;
        users) echo "add enroll-code revoke" ;;
    esac
}

# Names of existing items, from the hub the command line points at.
_resedgectl_names() {
    local noun=$1; shift
    timeout 2 resedgectl "$@" "$noun" list --limit 1000 2>/dev/null | awk 'NR > 1 { print $1 }'
}

_resedgectl() {
    local cur prev words cword
    if declare -F _init_completion >/dev/null; then
        _init_completion || return
    else
        cur=${COMP_WORDS[COMP_CWORD]}; prev=${COMP_WORDS[COMP_CWORD-1]}
        words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD
    fi

    case "$prev" in
        --config|--ca|--cert|--key|--file|-f)
            COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --output|-o)
            COMPREPLY=($(compgen -W "table json yaml" -- "$cur")); return ;;
        --role)
            COMPREPLY=($(compgen -W "admin operator appteam technician" -- "$cur")); return ;;
        --ttl)
            COMPREPLY=($(compgen -W "30m 1h 24h 7d" -- "$cur")); return ;;
        --hub|--limit|--search|--namespace|--group|--expression|--metadata|--orderby|--next|--set|--if-match|--set-file|--entity|--actor|--code|--ca-fingerprint|--to|--rev)
            return ;;
    esac

    # The positional words so far, skipping options and their values;
    # connection options are kept to reach the same hub for names.
    local i w pos=() conn=() takes_value=" --config --hub --ca --cert --key --output -o --limit --search --group --expression --metadata --orderby --namespace --next --set --set-file --file -f --if-match --entity --actor --ttl --role --code --ca-fingerprint --to --rev "
    for ((i = 1; i < cword; i++)); do
        w=${words[i]}
        if [[ $w == -* ]]; then
            if [[ $takes_value == *" $w "* && $w != *=* ]]; then
                case "$w" in --config|--hub|--ca|--cert|--key) conn+=("$w" "${words[i+1]}") ;; esac
                ((i++))
            fi
            continue
        fi
        pos+=("$w")
    done

    if [[ $cur == -* ]]; then
        local cmd="${pos[*]:0:2}"
        COMPREPLY=($(compgen -W "$_resedgectl_global_opts $(_resedgectl_cmd_opts "$cmd")" -- "$cur"))
        return
    fi
    case ${#pos[@]} in
        0)
            COMPREPLY=($(compgen -W "groups clusters namespaces apps policies select config audit users login" -- "$cur")) ;;
        1)
            case "${pos[0]}" in
                config) COMPREPLY=($(compgen -W "set unset $(_resedgectl_names clusters "${conn[@]}")" -- "$cur")) ;;
                select|audit|login) ;;
                *) COMPREPLY=($(compgen -W "$(_resedgectl_subcommands "${pos[0]}")" -- "$cur")) ;;
            esac ;;
        2)
            case "${pos[1]}" in
                import) COMPREPLY=($(compgen -f -- "$cur")) ;;
                get|update|delete|enroll-code|revoke|history|revert|unpin|files|status)
                    COMPREPLY=($(compgen -W "$(_resedgectl_names "${pos[0]}" "${conn[@]}")" -- "$cur")) ;;
            esac ;;
    esac
}
complete -F _resedgectl resedgectl

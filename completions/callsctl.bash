#!/bin/bash

__callsctl_cursor_index_in_current_word() {
    local remaining="${COMP_LINE}"

    local word
    for word in "${COMP_WORDS[@]::COMP_CWORD}"; do
        remaining="${remaining##*([[:space:]])"${word}"*([[:space:]])}"
    done

    local -ir index="$((COMP_POINT - ${#COMP_LINE} + ${#remaining}))"
    if [[ "${index}" -le 0 ]]; then
        printf 0
    else
        printf %s "${index}"
    fi
}

# positional arguments:
#
# - 1: the current (sub)command's count of positional arguments
#
# required variables:
#
# - repeating_flags: the repeating flags that the current (sub)command can accept
# - non_repeating_flags: the non-repeating flags that the current (sub)command can accept
# - repeating_options: the repeating options that the current (sub)command can accept
# - non_repeating_options: the non-repeating options that the current (sub)command can accept
# - positional_number: value ignored
# - unparsed_words: unparsed words from the current command line
#
# modified variables:
#
# - non_repeating_flags: remove flags for this (sub)command that are already on the command line
# - non_repeating_options: remove options for this (sub)command that are already on the command line
# - positional_number: set to the current positional number
# - unparsed_words: remove all flags, options, and option values for this (sub)command
__callsctl_offer_flags_options() {
    local -ir positional_count="${1}"
    positional_number=0

    local was_flag_option_terminator_seen=false
    local is_parsing_option_value=false

    local -ar unparsed_word_indices=("${!unparsed_words[@]}")
    local -i word_index
    for word_index in "${unparsed_word_indices[@]}"; do
        if "${is_parsing_option_value}"; then
            # This word is an option value:
            # Reset marker for next word iff not currently the last word
            [[ "${word_index}" -ne "${unparsed_word_indices[${#unparsed_word_indices[@]} - 1]}" ]] && is_parsing_option_value=false
            unset "unparsed_words[${word_index}]"
            # Do not process this word as a flag or an option
            continue
        fi

        local word="${unparsed_words["${word_index}"]}"
        if ! "${was_flag_option_terminator_seen}"; then
            case "${word}" in
            --)
                unset "unparsed_words[${word_index}]"
                # by itself -- is a flag/option terminator, but if it is the last word, it is the start of a completion
                if [[ "${word_index}" -ne "${unparsed_word_indices[${#unparsed_word_indices[@]} - 1]}" ]]; then
                    was_flag_option_terminator_seen=true
                fi
                continue
                ;;
            -*)
                # ${word} is a flag or an option
                # If ${word} is an option, mark that the next word to be parsed is an option value
                local option
                for option in "${repeating_options[@]}" "${non_repeating_options[@]}"; do
                    [[ "${word}" = "${option}" ]] && is_parsing_option_value=true && break
                done

                # Remove ${word} from ${non_repeating_flags} or ${non_repeating_options} so it isn't offered again
                local not_found=true
                local -i index
                for index in "${!non_repeating_flags[@]}"; do
                    if [[ "${non_repeating_flags[${index}]}" = "${word}" ]]; then
                        unset "non_repeating_flags[${index}]"
                        non_repeating_flags=("${non_repeating_flags[@]}")
                        not_found=false
                        break
                    fi
                done
                if "${not_found}"; then
                    for index in "${!non_repeating_flags[@]}"; do
                        if [[ "${non_repeating_flags[${index}]}" = "${word}" ]]; then
                            unset "non_repeating_flags[${index}]"
                            non_repeating_flags=("${non_repeating_flags[@]}")
                            break
                        fi
                    done
                fi
                unset "unparsed_words[${word_index}]"
                continue
                ;;
            esac
        fi

        # ${word} is neither a flag, nor an option, nor an option value
        if [[ "${positional_number}" -lt "${positional_count}" || "${positional_count}" -lt 0 ]]; then
            # ${word} is a positional
            ((positional_number++))
            unset "unparsed_words[${word_index}]"
        else
            if [[ -z "${word}" ]]; then
                # Could be completing a flag, option, or subcommand
                positional_number=-1
            else
                # ${word} is a subcommand or invalid, so stop processing this (sub)command
                positional_number=-2
            fi
            break
        fi
    done

    unparsed_words=("${unparsed_words[@]}")

    if\
        ! "${was_flag_option_terminator_seen}"\
        && ! "${is_parsing_option_value}"\
        && [[ ("${cur}" = -* && "${positional_number}" -ge 0) || "${positional_number}" -eq -1 ]]
    then
        COMPREPLY+=($(compgen -W "${repeating_flags[*]} ${non_repeating_flags[*]} ${repeating_options[*]} ${non_repeating_options[*]}" -- "${cur}"))
    fi
}

__callsctl_add_completions() {
    local completion
    while IFS='' read -r completion; do
        COMPREPLY+=("${completion}")
    done < <(IFS=$'\n' compgen "${@}" -- "${cur}")
}

__callsctl_custom_complete() {
    if [[ -n "${cur}" || -z ${COMP_WORDS[${COMP_CWORD}]} || "${COMP_LINE:${COMP_POINT}:1}" != ' ' ]]; then
        local -ar words=("${COMP_WORDS[@]}")
    else
        local -ar words=("${COMP_WORDS[@]::${COMP_CWORD}}" '' "${COMP_WORDS[@]:${COMP_CWORD}}")
    fi

    "${COMP_WORDS[0]}" "${@}" "${words[@]}"
}

_callsctl() {
    local state
    state="$(shopt -p;shopt -po)"
    trap "${state//$'\n'/;}" RETURN
    shopt -s extglob
    set +o history +o posix

    local -xr SAP_SHELL=bash
    local -x SAP_SHELL_VERSION
    SAP_SHELL_VERSION="$(IFS='.';printf %s "${BASH_VERSINFO[*]}")"
    local -r SAP_SHELL_VERSION

    local -r cur="${2}"
    local -r prev="${3}"

    local -i positional_number
    local -a unparsed_words=("${COMP_WORDS[@]:1:${COMP_CWORD}}")

    local -a repeating_flags=()
    local -a non_repeating_flags=(--version -h --help)
    local -a repeating_options=()
    local -a non_repeating_options=()
    __callsctl_offer_flags_options 0

    # Offer subcommand / subcommand argument completions
    local -r subcommand="${unparsed_words[0]}"
    unset 'unparsed_words[0]'
    unparsed_words=("${unparsed_words[@]}")
    case "${subcommand}" in
    serve|doctor|probe|ports|config|channel|calls|token|loadtest|version|help)
        # Offer subcommand argument completions
        "_callsctl_${subcommand}"
        ;;
    *)
        # Offer subcommand completions
        COMPREPLY+=($(compgen -W 'serve doctor probe ports config channel calls token loadtest version help' -- "${cur}"))
        ;;
    esac
}

_callsctl_serve() {
    repeating_flags=()
    non_repeating_flags=(--json --no-color -q --quiet -v --verbose --no-udp-candidates --version -h --help)
    repeating_options=(--stun-server --stun-url --turn-url)
    non_repeating_options=(--data-dir --rtc-listen --api-listen --ice-host-override --token-secret-file --admin-key-file --drain-timeout --max-participants --audio-slots --max-connections --max-connections-per-address --fanout-threads --realtime-priority --log-format --log-level --turn-secret-file --turn-ttl --cluster-db --cluster-db-password-file --cluster-node-id --cluster-public-url --cluster-heartbeat-timeout --config)
    __callsctl_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--data-dir')
        __callsctl_add_completions -d
        return
        ;;
    '--rtc-listen')
        return
        ;;
    '--api-listen')
        return
        ;;
    '--ice-host-override')
        return
        ;;
    '--stun-server')
        return
        ;;
    '--token-secret-file')
        __callsctl_add_completions -f
        return
        ;;
    '--admin-key-file')
        __callsctl_add_completions -f
        return
        ;;
    '--drain-timeout')
        return
        ;;
    '--max-participants')
        return
        ;;
    '--audio-slots')
        return
        ;;
    '--max-connections')
        return
        ;;
    '--max-connections-per-address')
        return
        ;;
    '--fanout-threads')
        return
        ;;
    '--realtime-priority')
        return
        ;;
    '--log-format')
        return
        ;;
    '--log-level')
        return
        ;;
    '--stun-url')
        return
        ;;
    '--turn-url')
        return
        ;;
    '--turn-secret-file')
        __callsctl_add_completions -f
        return
        ;;
    '--turn-ttl')
        return
        ;;
    '--cluster-db')
        return
        ;;
    '--cluster-db-password-file')
        __callsctl_add_completions -f
        return
        ;;
    '--cluster-node-id')
        return
        ;;
    '--cluster-public-url')
        return
        ;;
    '--cluster-heartbeat-timeout')
        return
        ;;
    '--config')
        __callsctl_add_completions -o plusdirs -fX '!*.@(toml)'
        return
        ;;
    esac
}

_callsctl_doctor() {
    repeating_flags=()
    non_repeating_flags=(--json --no-color -q --quiet -v --verbose --strict --self-test --version -h --help)
    repeating_options=(--stun-url --turn-url)
    non_repeating_options=(--data-dir --url --rtcd-url --site-url --site-token-file --ice-host-override --config --rtc-port --turn-secret-file --token-file --token-secret-file --admin-key-file --channel --role --cluster-db --cluster-node-id --ca-file --only --skip --timeout --junit)
    __callsctl_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--data-dir')
        __callsctl_add_completions -d
        return
        ;;
    '--url'|'--rtcd-url')
        return
        ;;
    '--site-url')
        return
        ;;
    '--site-token-file')
        __callsctl_add_completions -f
        return
        ;;
    '--ice-host-override')
        return
        ;;
    '--config')
        __callsctl_add_completions -f
        return
        ;;
    '--rtc-port')
        return
        ;;
    '--stun-url')
        return
        ;;
    '--turn-url')
        return
        ;;
    '--turn-secret-file')
        __callsctl_add_completions -f
        return
        ;;
    '--token-file')
        __callsctl_add_completions -f
        return
        ;;
    '--token-secret-file')
        __callsctl_add_completions -f
        return
        ;;
    '--admin-key-file')
        __callsctl_add_completions -f
        return
        ;;
    '--channel')
        return
        ;;
    '--role')
        return
        ;;
    '--cluster-db')
        return
        ;;
    '--cluster-node-id')
        return
        ;;
    '--ca-file')
        __callsctl_add_completions -f
        return
        ;;
    '--only')
        return
        ;;
    '--skip')
        return
        ;;
    '--timeout')
        return
        ;;
    '--junit')
        __callsctl_add_completions -f
        return
        ;;
    esac
}

_callsctl_probe() {
    repeating_flags=()
    non_repeating_flags=(--version -h --help)
    repeating_options=()
    non_repeating_options=()
    __callsctl_offer_flags_options 0

    # Offer subcommand / subcommand argument completions
    local -r subcommand="${unparsed_words[0]}"
    unset 'unparsed_words[0]'
    unparsed_words=("${unparsed_words[@]}")
    case "${subcommand}" in
    stun|turn|nat)
        # Offer subcommand argument completions
        "_callsctl_probe_${subcommand}"
        ;;
    *)
        # Offer subcommand completions
        COMPREPLY+=($(compgen -W 'stun turn nat' -- "${cur}"))
        ;;
    esac
}

_callsctl_probe_stun() {
    repeating_flags=()
    non_repeating_flags=(--json --no-color -q --quiet -v --verbose --version -h --help)
    repeating_options=()
    non_repeating_options=(--data-dir --transport --count --timeout --rto --retries --ca-file)
    __callsctl_offer_flags_options 1

    # Offer option value completions
    case "${prev}" in
    '--data-dir')
        __callsctl_add_completions -d
        return
        ;;
    '--transport')
        __callsctl_add_completions -W 'udp'$'\n''tcp'$'\n''tls'
        return
        ;;
    '--count')
        return
        ;;
    '--timeout')
        return
        ;;
    '--rto')
        return
        ;;
    '--retries')
        return
        ;;
    '--ca-file')
        __callsctl_add_completions -f
        return
        ;;
    esac
}

_callsctl_probe_turn() {
    repeating_flags=()
    non_repeating_flags=(--json --no-color -q --quiet -v --verbose --version -h --help)
    repeating_options=()
    non_repeating_options=(--data-dir --user --password-file --secret-file --rest-user --ttl --transport --count --peer --ca-file --timeout --rto --retries)
    __callsctl_offer_flags_options 1

    # Offer option value completions
    case "${prev}" in
    '--data-dir')
        __callsctl_add_completions -d
        return
        ;;
    '--user')
        return
        ;;
    '--password-file')
        __callsctl_add_completions -f
        return
        ;;
    '--secret-file')
        __callsctl_add_completions -f
        return
        ;;
    '--rest-user')
        return
        ;;
    '--ttl')
        return
        ;;
    '--transport')
        __callsctl_add_completions -W 'udp'$'\n''tcp'$'\n''tls'
        return
        ;;
    '--count')
        return
        ;;
    '--peer')
        return
        ;;
    '--ca-file')
        __callsctl_add_completions -f
        return
        ;;
    '--timeout')
        return
        ;;
    '--rto')
        return
        ;;
    '--retries')
        return
        ;;
    esac
}

_callsctl_probe_nat() {
    repeating_flags=()
    non_repeating_flags=(--json --no-color -q --quiet -v --verbose --hairpin --version -h --help)
    repeating_options=()
    non_repeating_options=(--data-dir --servers --timeout)
    __callsctl_offer_flags_options 1

    # Offer option value completions
    case "${prev}" in
    '--data-dir')
        __callsctl_add_completions -d
        return
        ;;
    '--servers')
        return
        ;;
    '--timeout')
        return
        ;;
    esac
}

_callsctl_ports() {
    repeating_flags=()
    non_repeating_flags=(--version -h --help)
    repeating_options=()
    non_repeating_options=()
    __callsctl_offer_flags_options 0

    # Offer subcommand / subcommand argument completions
    local -r subcommand="${unparsed_words[0]}"
    unset 'unparsed_words[0]'
    unparsed_words=("${unparsed_words[@]}")
    case "${subcommand}" in
    check)
        # Offer subcommand argument completions
        "_callsctl_ports_${subcommand}"
        ;;
    *)
        # Offer subcommand completions
        COMPREPLY+=($(compgen -W 'check' -- "${cur}"))
        ;;
    esac
}

_callsctl_ports_check() {
    repeating_flags=()
    non_repeating_flags=(--json --no-color -q --quiet -v --verbose --local --version -h --help)
    repeating_options=()
    non_repeating_options=(--data-dir --host --udp --tcp --bind-address --timeout)
    __callsctl_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--data-dir')
        __callsctl_add_completions -d
        return
        ;;
    '--host')
        return
        ;;
    '--udp')
        return
        ;;
    '--tcp')
        return
        ;;
    '--bind-address')
        return
        ;;
    '--timeout')
        return
        ;;
    esac
}

_callsctl_config() {
    repeating_flags=()
    non_repeating_flags=(--version -h --help)
    repeating_options=()
    non_repeating_options=()
    __callsctl_offer_flags_options 0

    # Offer subcommand / subcommand argument completions
    local -r subcommand="${unparsed_words[0]}"
    unset 'unparsed_words[0]'
    unparsed_words=("${unparsed_words[@]}")
    case "${subcommand}" in
    generate|validate|show|import-rtcd)
        # Offer subcommand argument completions
        "_callsctl_config_${subcommand}"
        ;;
    *)
        # Offer subcommand completions
        COMPREPLY+=($(compgen -W 'generate validate show import-rtcd' -- "${cur}"))
        ;;
    esac
}

_callsctl_config_generate() {
    repeating_flags=()
    non_repeating_flags=(--json --no-color -q --quiet -v --verbose --nginx-stream --force --version -h --help)
    repeating_options=(--chat-server-cidr --cluster-node)
    non_repeating_options=(--data-dir --domain --public-ip --ice-host-override --turn-domain --mattermost-url --rtc-port --api-port --turn-port --turns-port --relay-ports --turn-secret --turn-secret-file --admin-key-file --token-secret-file --upstream-host --kubernetes-kind --image --callsctl-path --tls-cert --tls-key --max-participants --test-mode --turn-credential-minutes --rtcd-admin-key-file --offloader-admin-key-file --media-nodes --internal-host --coturn-version --cluster-db-url-file --out)
    __callsctl_offer_flags_options 1

    # Offer option value completions
    case "${prev}" in
    '--data-dir')
        __callsctl_add_completions -d
        return
        ;;
    '--domain')
        return
        ;;
    '--public-ip')
        return
        ;;
    '--ice-host-override')
        return
        ;;
    '--turn-domain')
        return
        ;;
    '--mattermost-url')
        return
        ;;
    '--rtc-port')
        return
        ;;
    '--api-port')
        return
        ;;
    '--turn-port')
        return
        ;;
    '--turns-port')
        return
        ;;
    '--relay-ports')
        return
        ;;
    '--turn-secret')
        return
        ;;
    '--turn-secret-file')
        __callsctl_add_completions -f
        return
        ;;
    '--admin-key-file')
        __callsctl_add_completions -f
        return
        ;;
    '--token-secret-file')
        __callsctl_add_completions -f
        return
        ;;
    '--chat-server-cidr')
        return
        ;;
    '--upstream-host')
        return
        ;;
    '--kubernetes-kind')
        return
        ;;
    '--image')
        return
        ;;
    '--callsctl-path')
        return
        ;;
    '--tls-cert')
        return
        ;;
    '--tls-key')
        return
        ;;
    '--max-participants')
        return
        ;;
    '--test-mode')
        return
        ;;
    '--turn-credential-minutes')
        return
        ;;
    '--rtcd-admin-key-file')
        __callsctl_add_completions -f
        return
        ;;
    '--offloader-admin-key-file')
        __callsctl_add_completions -f
        return
        ;;
    '--media-nodes')
        return
        ;;
    '--internal-host')
        return
        ;;
    '--coturn-version')
        return
        ;;
    '--cluster-db-url-file')
        __callsctl_add_completions -f
        return
        ;;
    '--cluster-node')
        return
        ;;
    '--out')
        __callsctl_add_completions -d
        return
        ;;
    esac

    # Offer positional completions
    case "${positional_number}" in
    1)
        __callsctl_add_completions -W 'callsctl'$'\n''rtcd'$'\n''mattermost-plugin'$'\n''coturn'$'\n''nginx'$'\n''kubernetes'$'\n''systemd'$'\n''firewall'$'\n''calls-offloader'$'\n''grafana'$'\n''bundle'
        return
        ;;
    esac
}

_callsctl_config_validate() {
    repeating_flags=()
    non_repeating_flags=(--json --no-color -q --quiet -v --verbose --strict --resolve --version -h --help)
    repeating_options=()
    non_repeating_options=(--data-dir --bundle)
    __callsctl_offer_flags_options -1

    # Offer option value completions
    case "${prev}" in
    '--data-dir')
        __callsctl_add_completions -d
        return
        ;;
    '--bundle')
        __callsctl_add_completions -d
        return
        ;;
    esac

    # Offer positional completions
    case "${positional_number}" in
    *)
        __callsctl_add_completions -f
        return
        ;;
    esac
}

_callsctl_config_show() {
    repeating_flags=()
    non_repeating_flags=(--json --no-color -q --quiet -v --verbose --effective --version -h --help)
    repeating_options=()
    non_repeating_options=(--data-dir --config)
    __callsctl_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--data-dir')
        __callsctl_add_completions -d
        return
        ;;
    '--config')
        __callsctl_add_completions -o plusdirs -fX '!*.@(toml)'
        return
        ;;
    esac
}

_callsctl_config_import-rtcd() {
    repeating_flags=()
    non_repeating_flags=(--json --no-color -q --quiet -v --verbose --force --version -h --help)
    repeating_options=()
    non_repeating_options=(--data-dir --out)
    __callsctl_offer_flags_options 1

    # Offer option value completions
    case "${prev}" in
    '--data-dir')
        __callsctl_add_completions -d
        return
        ;;
    '--out')
        __callsctl_add_completions -f
        return
        ;;
    esac

    # Offer positional completions
    case "${positional_number}" in
    1)
        __callsctl_add_completions -o plusdirs -fX '!*.@(toml)'
        return
        ;;
    esac
}

_callsctl_channel() {
    repeating_flags=()
    non_repeating_flags=(--version -h --help)
    repeating_options=()
    non_repeating_options=()
    __callsctl_offer_flags_options 0

    # Offer subcommand / subcommand argument completions
    local -r subcommand="${unparsed_words[0]}"
    unset 'unparsed_words[0]'
    unparsed_words=("${unparsed_words[@]}")
    case "${subcommand}" in
    enable|disable|reset|status|list|history|testmode)
        # Offer subcommand argument completions
        "_callsctl_channel_${subcommand}"
        ;;
    *)
        # Offer subcommand completions
        COMPREPLY+=($(compgen -W 'enable disable reset status list history testmode' -- "${cur}"))
        ;;
    esac
}

_callsctl_channel_enable() {
    repeating_flags=()
    non_repeating_flags=(--json --no-color -q --quiet -v --verbose --version -h --help)
    repeating_options=()
    non_repeating_options=(--data-dir --actor --cluster-db --cluster-db-password-file --config)
    __callsctl_offer_flags_options -1

    # Offer option value completions
    case "${prev}" in
    '--data-dir')
        __callsctl_add_completions -d
        return
        ;;
    '--actor')
        return
        ;;
    '--cluster-db')
        return
        ;;
    '--cluster-db-password-file')
        __callsctl_add_completions -f
        return
        ;;
    '--config')
        __callsctl_add_completions -o plusdirs -fX '!*.@(toml)'
        return
        ;;
    esac
}

_callsctl_channel_disable() {
    repeating_flags=()
    non_repeating_flags=(--json --no-color -q --quiet -v --verbose --version -h --help)
    repeating_options=()
    non_repeating_options=(--data-dir --actor --cluster-db --cluster-db-password-file --config)
    __callsctl_offer_flags_options -1

    # Offer option value completions
    case "${prev}" in
    '--data-dir')
        __callsctl_add_completions -d
        return
        ;;
    '--actor')
        return
        ;;
    '--cluster-db')
        return
        ;;
    '--cluster-db-password-file')
        __callsctl_add_completions -f
        return
        ;;
    '--config')
        __callsctl_add_completions -o plusdirs -fX '!*.@(toml)'
        return
        ;;
    esac
}

_callsctl_channel_reset() {
    repeating_flags=()
    non_repeating_flags=(--json --no-color -q --quiet -v --verbose --version -h --help)
    repeating_options=()
    non_repeating_options=(--data-dir --actor --cluster-db --cluster-db-password-file --config)
    __callsctl_offer_flags_options -1

    # Offer option value completions
    case "${prev}" in
    '--data-dir')
        __callsctl_add_completions -d
        return
        ;;
    '--actor')
        return
        ;;
    '--cluster-db')
        return
        ;;
    '--cluster-db-password-file')
        __callsctl_add_completions -f
        return
        ;;
    '--config')
        __callsctl_add_completions -o plusdirs -fX '!*.@(toml)'
        return
        ;;
    esac
}

_callsctl_channel_status() {
    repeating_flags=()
    non_repeating_flags=(--json --no-color -q --quiet -v --verbose --version -h --help)
    repeating_options=()
    non_repeating_options=(--data-dir --cluster-db --cluster-db-password-file --config)
    __callsctl_offer_flags_options 1

    # Offer option value completions
    case "${prev}" in
    '--data-dir')
        __callsctl_add_completions -d
        return
        ;;
    '--cluster-db')
        return
        ;;
    '--cluster-db-password-file')
        __callsctl_add_completions -f
        return
        ;;
    '--config')
        __callsctl_add_completions -o plusdirs -fX '!*.@(toml)'
        return
        ;;
    esac
}

_callsctl_channel_list() {
    repeating_flags=()
    non_repeating_flags=(--json --no-color -q --quiet -v --verbose --enabled --disabled --version -h --help)
    repeating_options=()
    non_repeating_options=(--data-dir --cluster-db --cluster-db-password-file --config)
    __callsctl_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--data-dir')
        __callsctl_add_completions -d
        return
        ;;
    '--cluster-db')
        return
        ;;
    '--cluster-db-password-file')
        __callsctl_add_completions -f
        return
        ;;
    '--config')
        __callsctl_add_completions -o plusdirs -fX '!*.@(toml)'
        return
        ;;
    esac
}

_callsctl_channel_history() {
    repeating_flags=()
    non_repeating_flags=(--json --no-color -q --quiet -v --verbose --version -h --help)
    repeating_options=()
    non_repeating_options=(--data-dir --limit --cluster-db --cluster-db-password-file --config)
    __callsctl_offer_flags_options 1

    # Offer option value completions
    case "${prev}" in
    '--data-dir')
        __callsctl_add_completions -d
        return
        ;;
    '--limit')
        return
        ;;
    '--cluster-db')
        return
        ;;
    '--cluster-db-password-file')
        __callsctl_add_completions -f
        return
        ;;
    '--config')
        __callsctl_add_completions -o plusdirs -fX '!*.@(toml)'
        return
        ;;
    esac
}

_callsctl_channel_testmode() {
    repeating_flags=()
    non_repeating_flags=(--json --no-color -q --quiet -v --verbose --version -h --help)
    repeating_options=()
    non_repeating_options=(--data-dir --actor --cluster-db --cluster-db-password-file --config)
    __callsctl_offer_flags_options 1

    # Offer option value completions
    case "${prev}" in
    '--data-dir')
        __callsctl_add_completions -d
        return
        ;;
    '--actor')
        return
        ;;
    '--cluster-db')
        return
        ;;
    '--cluster-db-password-file')
        __callsctl_add_completions -f
        return
        ;;
    '--config')
        __callsctl_add_completions -o plusdirs -fX '!*.@(toml)'
        return
        ;;
    esac

    # Offer positional completions
    case "${positional_number}" in
    1)
        __callsctl_add_completions -W 'on'$'\n''off'$'\n''status'
        return
        ;;
    esac
}

_callsctl_calls() {
    repeating_flags=()
    non_repeating_flags=(--version -h --help)
    repeating_options=()
    non_repeating_options=()
    __callsctl_offer_flags_options 0

    # Offer subcommand / subcommand argument completions
    local -r subcommand="${unparsed_words[0]}"
    unset 'unparsed_words[0]'
    unparsed_words=("${unparsed_words[@]}")
    case "${subcommand}" in
    list|end|remove)
        # Offer subcommand argument completions
        "_callsctl_calls_${subcommand}"
        ;;
    *)
        # Offer subcommand completions
        COMPREPLY+=($(compgen -W 'list end remove' -- "${cur}"))
        ;;
    esac
}

_callsctl_calls_list() {
    repeating_flags=()
    non_repeating_flags=(--json --no-color -q --quiet -v --verbose --version -h --help)
    repeating_options=()
    non_repeating_options=(--data-dir --url --admin-key-file --timeout)
    __callsctl_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--data-dir')
        __callsctl_add_completions -d
        return
        ;;
    '--url')
        return
        ;;
    '--admin-key-file')
        __callsctl_add_completions -f
        return
        ;;
    '--timeout')
        return
        ;;
    esac
}

_callsctl_calls_end() {
    repeating_flags=()
    non_repeating_flags=(--json --no-color -q --quiet -v --verbose --version -h --help)
    repeating_options=()
    non_repeating_options=(--data-dir --url --admin-key-file --timeout)
    __callsctl_offer_flags_options 1

    # Offer option value completions
    case "${prev}" in
    '--data-dir')
        __callsctl_add_completions -d
        return
        ;;
    '--url')
        return
        ;;
    '--admin-key-file')
        __callsctl_add_completions -f
        return
        ;;
    '--timeout')
        return
        ;;
    esac
}

_callsctl_calls_remove() {
    repeating_flags=()
    non_repeating_flags=(--json --no-color -q --quiet -v --verbose --version -h --help)
    repeating_options=()
    non_repeating_options=(--data-dir --url --admin-key-file --timeout)
    __callsctl_offer_flags_options 1

    # Offer option value completions
    case "${prev}" in
    '--data-dir')
        __callsctl_add_completions -d
        return
        ;;
    '--url')
        return
        ;;
    '--admin-key-file')
        __callsctl_add_completions -f
        return
        ;;
    '--timeout')
        return
        ;;
    esac
}

_callsctl_token() {
    repeating_flags=()
    non_repeating_flags=(--version -h --help)
    repeating_options=()
    non_repeating_options=()
    __callsctl_offer_flags_options 0

    # Offer subcommand / subcommand argument completions
    local -r subcommand="${unparsed_words[0]}"
    unset 'unparsed_words[0]'
    unparsed_words=("${unparsed_words[@]}")
    case "${subcommand}" in
    create)
        # Offer subcommand argument completions
        "_callsctl_token_${subcommand}"
        ;;
    *)
        # Offer subcommand completions
        COMPREPLY+=($(compgen -W 'create' -- "${cur}"))
        ;;
    esac
}

_callsctl_token_create() {
    repeating_flags=()
    non_repeating_flags=(--json --no-color -q --quiet -v --verbose --version -h --help)
    repeating_options=()
    non_repeating_options=(--data-dir --channel --user --role --ttl --token-secret-file)
    __callsctl_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--data-dir')
        __callsctl_add_completions -d
        return
        ;;
    '--channel')
        return
        ;;
    '--user')
        return
        ;;
    '--role')
        return
        ;;
    '--ttl')
        return
        ;;
    '--token-secret-file')
        __callsctl_add_completions -f
        return
        ;;
    esac
}

_callsctl_loadtest() {
    repeating_flags=()
    non_repeating_flags=(--json --no-color -q --quiet -v --verbose --version -h --help)
    repeating_options=(--join-url --channel)
    non_repeating_options=(--data-dir --url --token-secret-file --admin-key-file --calls --participants --speakers --presenters --duration --ramp --transport --role --server-pid --max-loss --max-join-failures --join-timeout --report)
    __callsctl_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--data-dir')
        __callsctl_add_completions -d
        return
        ;;
    '--url')
        return
        ;;
    '--join-url')
        return
        ;;
    '--token-secret-file')
        __callsctl_add_completions -f
        return
        ;;
    '--admin-key-file')
        __callsctl_add_completions -f
        return
        ;;
    '--channel')
        return
        ;;
    '--calls')
        return
        ;;
    '--participants')
        return
        ;;
    '--speakers')
        return
        ;;
    '--presenters')
        return
        ;;
    '--duration')
        return
        ;;
    '--ramp')
        return
        ;;
    '--transport')
        return
        ;;
    '--role')
        return
        ;;
    '--server-pid')
        return
        ;;
    '--max-loss')
        return
        ;;
    '--max-join-failures')
        return
        ;;
    '--join-timeout')
        return
        ;;
    '--report')
        __callsctl_add_completions -o plusdirs -fX '!*.@(html)'
        return
        ;;
    esac
}

_callsctl_version() {
    repeating_flags=()
    non_repeating_flags=(--json --no-color -q --quiet -v --verbose --version -h --help)
    repeating_options=()
    non_repeating_options=(--data-dir)
    __callsctl_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--data-dir')
        __callsctl_add_completions -d
        return
        ;;
    esac
}

_callsctl_help() {
    repeating_flags=()
    non_repeating_flags=(--version)
    repeating_options=()
    non_repeating_options=()
    __callsctl_offer_flags_options -1
}

complete -o filenames -F _callsctl callsctl

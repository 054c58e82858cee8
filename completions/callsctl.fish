function __callsctl_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __callsctl_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __callsctl_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __callsctl_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __callsctl_parse_tokens -S
    set -l unparsed_tokens (__callsctl_tokens -pc)
    switch $unparsed_tokens[1]
    case 'callsctl'
        __callsctl_parse_subcommand 0 'version' 'h/help'
        switch $unparsed_tokens[1]
        case 'serve'
            __callsctl_parse_subcommand 0 'data-dir=' 'json' 'no-color' 'q/quiet' 'v/verbose' 'rtc-listen=' 'api-listen=' 'ice-host-override=' 'stun-server=+' 'token-secret-file=' 'no-udp-candidates' 'admin-key-file=' 'drain-timeout=' 'max-participants=' 'audio-slots=' 'max-connections=' 'max-connections-per-address=' 'fanout-threads=' 'realtime-priority=' 'log-format=' 'log-level=' 'stun-url=+' 'turn-url=+' 'turn-secret-file=' 'turn-ttl=' 'cluster-db=' 'cluster-db-password-file=' 'cluster-node-id=' 'cluster-public-url=' 'cluster-heartbeat-timeout=' 'config=' 'version' 'h/help'
        case 'doctor'
            __callsctl_parse_subcommand 0 'data-dir=' 'json' 'no-color' 'q/quiet' 'v/verbose' 'url=' 'site-url=' 'site-token-file=' 'ice-host-override=' 'config=' 'rtc-port=' 'stun-url=+' 'turn-url=+' 'turn-secret-file=' 'token-file=' 'token-secret-file=' 'admin-key-file=' 'channel=' 'role=' 'cluster-db=' 'cluster-node-id=' 'ca-file=' 'only=' 'skip=' 'timeout=' 'junit=' 'strict' 'self-test' 'version' 'h/help'
        case 'probe'
            __callsctl_parse_subcommand 0 'version' 'h/help'
            switch $unparsed_tokens[1]
            case 'stun'
                __callsctl_parse_subcommand 1 'data-dir=' 'json' 'no-color' 'q/quiet' 'v/verbose' 'transport=' 'count=' 'timeout=' 'rto=' 'retries=' 'ca-file=' 'version' 'h/help'
            case 'turn'
                __callsctl_parse_subcommand 1 'data-dir=' 'json' 'no-color' 'q/quiet' 'v/verbose' 'user=' 'password-file=' 'secret-file=' 'rest-user=' 'ttl=' 'transport=' 'count=' 'peer=' 'ca-file=' 'timeout=' 'rto=' 'retries=' 'version' 'h/help'
            case 'nat'
                __callsctl_parse_subcommand 1 'data-dir=' 'json' 'no-color' 'q/quiet' 'v/verbose' 'servers=' 'hairpin' 'timeout=' 'version' 'h/help'
            end
        case 'ports'
            __callsctl_parse_subcommand 0 'version' 'h/help'
            switch $unparsed_tokens[1]
            case 'check'
                __callsctl_parse_subcommand 0 'data-dir=' 'json' 'no-color' 'q/quiet' 'v/verbose' 'local' 'host=' 'udp=' 'tcp=' 'bind-address=' 'timeout=' 'version' 'h/help'
            end
        case 'config'
            __callsctl_parse_subcommand 0 'version' 'h/help'
            switch $unparsed_tokens[1]
            case 'generate'
                __callsctl_parse_subcommand 1 'data-dir=' 'json' 'no-color' 'q/quiet' 'v/verbose' 'domain=' 'public-ip=' 'ice-host-override=' 'turn-domain=' 'mattermost-url=' 'rtc-port=' 'api-port=' 'turn-port=' 'turns-port=' 'relay-ports=' 'turn-secret=' 'turn-secret-file=' 'admin-key-file=' 'token-secret-file=' 'chat-server-cidr=+' 'nginx-stream' 'upstream-host=' 'kubernetes-kind=' 'image=' 'callsctl-path=' 'tls-cert=' 'tls-key=' 'max-participants=' 'test-mode=' 'turn-credential-minutes=' 'rtcd-admin-key-file=' 'offloader-admin-key-file=' 'media-nodes=' 'internal-host=' 'coturn-version=' 'cluster-db-url-file=' 'cluster-node=+' 'out=' 'force' 'version' 'h/help'
            case 'validate'
                __callsctl_parse_subcommand -r 1 'data-dir=' 'json' 'no-color' 'q/quiet' 'v/verbose' 'strict' 'resolve' 'bundle=' 'version' 'h/help'
            case 'show'
                __callsctl_parse_subcommand 0 'data-dir=' 'json' 'no-color' 'q/quiet' 'v/verbose' 'effective' 'config=' 'version' 'h/help'
            case 'import-rtcd'
                __callsctl_parse_subcommand 1 'data-dir=' 'json' 'no-color' 'q/quiet' 'v/verbose' 'out=' 'force' 'version' 'h/help'
            end
        case 'channel'
            __callsctl_parse_subcommand 0 'version' 'h/help'
            switch $unparsed_tokens[1]
            case 'enable'
                __callsctl_parse_subcommand -r 1 'data-dir=' 'json' 'no-color' 'q/quiet' 'v/verbose' 'actor=' 'cluster-db=' 'cluster-db-password-file=' 'config=' 'version' 'h/help'
            case 'disable'
                __callsctl_parse_subcommand -r 1 'data-dir=' 'json' 'no-color' 'q/quiet' 'v/verbose' 'actor=' 'cluster-db=' 'cluster-db-password-file=' 'config=' 'version' 'h/help'
            case 'reset'
                __callsctl_parse_subcommand -r 1 'data-dir=' 'json' 'no-color' 'q/quiet' 'v/verbose' 'actor=' 'cluster-db=' 'cluster-db-password-file=' 'config=' 'version' 'h/help'
            case 'status'
                __callsctl_parse_subcommand 1 'data-dir=' 'json' 'no-color' 'q/quiet' 'v/verbose' 'cluster-db=' 'cluster-db-password-file=' 'config=' 'version' 'h/help'
            case 'list'
                __callsctl_parse_subcommand 0 'data-dir=' 'json' 'no-color' 'q/quiet' 'v/verbose' 'enabled' 'disabled' 'cluster-db=' 'cluster-db-password-file=' 'config=' 'version' 'h/help'
            case 'history'
                __callsctl_parse_subcommand 1 'data-dir=' 'json' 'no-color' 'q/quiet' 'v/verbose' 'limit=' 'cluster-db=' 'cluster-db-password-file=' 'config=' 'version' 'h/help'
            case 'testmode'
                __callsctl_parse_subcommand 1 'data-dir=' 'json' 'no-color' 'q/quiet' 'v/verbose' 'actor=' 'cluster-db=' 'cluster-db-password-file=' 'config=' 'version' 'h/help'
            end
        case 'calls'
            __callsctl_parse_subcommand 0 'version' 'h/help'
            switch $unparsed_tokens[1]
            case 'list'
                __callsctl_parse_subcommand 0 'data-dir=' 'json' 'no-color' 'q/quiet' 'v/verbose' 'url=' 'admin-key-file=' 'timeout=' 'version' 'h/help'
            case 'end'
                __callsctl_parse_subcommand 1 'data-dir=' 'json' 'no-color' 'q/quiet' 'v/verbose' 'url=' 'admin-key-file=' 'timeout=' 'version' 'h/help'
            case 'remove'
                __callsctl_parse_subcommand 1 'data-dir=' 'json' 'no-color' 'q/quiet' 'v/verbose' 'url=' 'admin-key-file=' 'timeout=' 'version' 'h/help'
            end
        case 'token'
            __callsctl_parse_subcommand 0 'version' 'h/help'
            switch $unparsed_tokens[1]
            case 'create'
                __callsctl_parse_subcommand 0 'data-dir=' 'json' 'no-color' 'q/quiet' 'v/verbose' 'channel=' 'user=' 'role=' 'ttl=' 'token-secret-file=' 'version' 'h/help'
            end
        case 'loadtest'
            __callsctl_parse_subcommand 0 'data-dir=' 'json' 'no-color' 'q/quiet' 'v/verbose' 'url=' 'join-url=+' 'token-secret-file=' 'admin-key-file=' 'channel=+' 'calls=' 'participants=' 'speakers=' 'presenters=' 'duration=' 'ramp=' 'transport=' 'role=' 'server-pid=' 'max-loss=' 'max-join-failures=' 'join-timeout=' 'report=' 'version' 'h/help'
        case 'version'
            __callsctl_parse_subcommand 0 'data-dir=' 'json' 'no-color' 'q/quiet' 'v/verbose' 'version' 'h/help'
        case 'help'
            __callsctl_parse_subcommand -r 1 'version'
        end
    end
end

function __callsctl_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __callsctl_parse_subcommand -S -a positional_count
    argparse -s r -- $argv
    set -l option_specs $argv[2..]
    set -l is_repeating_positional $_flag_r
    set -el _flag_r
    set -a commands $unparsed_tokens[1]
    set positional_index 0
    while true
        set -e unparsed_tokens[1]
        argparse -sn "$commands" $option_specs -- $unparsed_tokens 2> /dev/null
        set unparsed_tokens $argv
        set positional_index (math $positional_index + 1)
        for non_repeating_flag_or_option in $non_repeating_flags_or_options
            if set -ql "_flag_$(string replace -a - _ -- $non_repeating_flag_or_option)"
                set non_repeating_flags_or_options_absent 1
                break
            end
        end
        test (count $unparsed_tokens) -eq 0 -o \( -z "$is_repeating_positional" -a "$positional_index" -gt "$positional_count" \) && break
    end
end

function __callsctl_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __callsctl_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__callsctl_tokens -p)
    if test -z "$(__callsctl_tokens -t)"
        set -l index (count (__callsctl_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'callsctl' -f
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl" version' -l 'version' -d 'Show the version.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_positional "callsctl" -eq 1' -fa 'serve' -d 'Run the embedded media server (SFU) on embedded defaults or the given settings.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_positional "callsctl" -eq 1' -fa 'doctor' -d 'Diagnose a calls deployment end to end and rank the most likely cause of trouble.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_positional "callsctl" -eq 1' -fa 'probe' -d 'Probe STUN and TURN servers and NAT behaviour, with verdicts and exit codes.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_positional "callsctl" -eq 1' -fa 'ports' -d 'Check the deployment\'s ports locally or from outside.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_positional "callsctl" -eq 1' -fa 'config' -d 'Write, check and show configs for a whole calls deployment.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_positional "callsctl" -eq 1' -fa 'channel' -d 'Allow or forbid calls per channel, and switch test mode.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_positional "callsctl" -eq 1' -fa 'calls' -d 'List the calls running on a media server, end a call, or remove a participant.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_positional "callsctl" -eq 1' -fa 'token' -d 'Create join tokens signed with the server\'s secret.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_positional "callsctl" -eq 1' -fa 'loadtest' -d 'Load a media server with real participants and report joins, loss and server cost.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_positional "callsctl" -eq 1' -fa 'version' -d 'Print callsctl\'s version and the system libraries it runs on.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_positional "callsctl" -eq 1' -fa 'help' -d 'Show subcommand help information.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl serve" data-dir' -l 'data-dir' -d 'Where callsctl keeps its data (calls.db, secrets).' -rfa '(__callsctl_complete_directories)'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl serve" json' -l 'json' -d 'Print machine-readable JSON on standard output.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl serve" no-color' -l 'no-color' -d 'Never use colour (also when NO_COLOR is set).'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl serve" q quiet' -s 'q' -l 'quiet' -d 'Print only errors and the essential result.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl serve" v verbose' -s 'v' -l 'verbose' -d 'Print more detail about what is being done.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl serve" rtc-listen' -l 'rtc-listen' -d 'Media address, UDP and TCP. Default: 0.0.0.0:8443.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl serve" api-listen' -l 'api-listen' -d 'HTTP/WebSocket API address. Default: 0.0.0.0:8045.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl serve" ice-host-override' -l 'ice-host-override' -d 'IP or hostname advertised in ICE candidates (resolved at start).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl serve"' -l 'stun-server' -d 'STUN server used once at start to learn the public IP (repeatable).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl serve" token-secret-file' -l 'token-secret-file' -d 'File with the secret that signs join tokens (base64). Default: token-secret in the data directory.' -rF
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl serve" no-udp-candidates' -l 'no-udp-candidates' -d 'Diagnostic: offer only the TCP candidate in answers (forces ICE-TCP, to test TCP 8443).'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl serve" admin-key-file' -l 'admin-key-file' -d 'File with the admin API bearer key. Default: admin-key in the data directory (generated).' -rF
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl serve" drain-timeout' -l 'drain-timeout' -d 'After SIGTERM, how long running calls may go on before the process exits. Default: 30.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl serve" max-participants' -l 'max-participants' -d 'Participants allowed in one call; the next join is refused with a reason. Default: unlimited (the docs advise 50).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl serve" audio-slots' -l 'audio-slots' -d 'Audio streams each participant receives: the call\'s current speakers (loudest first, never itself), whatever the call\'s size. 1-16, default 3.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl serve" max-connections' -l 'max-connections' -d 'API connections open at once (HTTP and WebSocket); the next one gets a 503. Default: half the open-file limit, at most 100000.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl serve" max-connections-per-address' -l 'max-connections-per-address' -d 'API connections open at once from one IP address; 0 is no limit. Default 2048. Behind a reverse proxy every client comes from the proxy\'s address: raise it.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl serve" fanout-threads' -l 'fanout-threads' -d 'Helper threads that share a large call\'s audio fan-out (one packet to hundreds of listeners) with the media thread. 0-16; default: one less than the processors, at most 3.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl serve" realtime-priority' -l 'realtime-priority' -d 'Run the media threads with real-time scheduling (SCHED_RR) at this priority, so a busy machine does not delay forwarding. 1-99; default 0 (normal scheduling).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl serve" log-format' -l 'log-format' -d 'Log lines on standard error: text, or json (one object per line: time, level, msg, logger and the metadata such as session.id and call.channel).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl serve" log-level' -l 'log-level' -d 'Log level: debug, info, warn or error (default info; --verbose is debug, --quiet is warn).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl serve"' -l 'stun-url' -d 'STUN URL handed to clients in the join answer (repeatable).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl serve"' -l 'turn-url' -d 'TURN URL handed to clients with fresh credentials (repeatable; needs --turn-secret-file).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl serve" turn-secret-file' -l 'turn-secret-file' -d 'File with the TURN server\'s shared secret (coturn static-auth-secret).' -rF
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl serve" turn-ttl' -l 'turn-ttl' -d 'Lifetime of TURN credentials in seconds. Default: 86400.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl serve" cluster-db' -l 'cluster-db' -d 'Join a cluster: the PostgreSQL the nodes share (channel settings, node registry, call placement). Default: one node on SQLite.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl serve" cluster-db-password-file' -l 'cluster-db-password-file' -d 'File with the cluster database\'s password (when the URL holds none).' -rF
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl serve" cluster-node-id' -l 'cluster-node-id' -d 'This node\'s id in the cluster, unique per node. Default: the host name.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl serve" cluster-public-url' -l 'cluster-public-url' -d 'The URL clients reach this node\'s API at directly; joins for a call on this node are redirected there.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl serve" cluster-heartbeat-timeout' -l 'cluster-heartbeat-timeout' -d 'Seconds without a heartbeat after which a node counts as gone and its calls may start elsewhere. 2-60, default 5.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl serve" config' -l 'config' -d 'Config file (TOML). Default: $CALLSCTL_CONFIG, else callsctl.toml in the data directory if present.' -rfa '(for p in (string match -e -- \'*/\' (commandline -t);or printf \n)*.\'toml\';printf %s\n $p;end;__fish_complete_directories (commandline -t) \'\')'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl serve" version' -l 'version' -d 'Show the version.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl serve" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl doctor" data-dir' -l 'data-dir' -d 'Where callsctl keeps its data (calls.db, secrets).' -rfa '(__callsctl_complete_directories)'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl doctor" json' -l 'json' -d 'Print machine-readable JSON on standard output.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl doctor" no-color' -l 'no-color' -d 'Never use colour (also when NO_COLOR is set).'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl doctor" q quiet' -s 'q' -l 'quiet' -d 'Print only errors and the essential result.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl doctor" v verbose' -s 'v' -l 'verbose' -d 'Print more detail about what is being done.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl doctor" rtcd-url url' -l 'url' -l 'rtcd-url' -d 'The media server\'s API (callsctl serve or rtcd).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl doctor" site-url' -l 'site-url' -d 'The Mattermost site: checks HTTPS, the Calls plugin, and the ICE servers it hands clients.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl doctor" site-token-file' -l 'site-token-file' -d 'File holding a Mattermost access token, to read the Calls plugin\'s client config.' -rF
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl doctor" ice-host-override' -l 'ice-host-override' -d 'The host clients send media to (default: the --url host).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl doctor" config' -l 'config' -d 'A callsctl.toml, or a bundle folder from `callsctl config generate bundle`: the deployment to check (flags win).' -rF
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl doctor" rtc-port' -l 'rtc-port' -d 'The RTC port, UDP and TCP (default: 8443, or the config\'s).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl doctor"' -l 'stun-url' -d 'A STUN server to check (repeatable).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl doctor"' -l 'turn-url' -d 'A TURN server to check (repeatable).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl doctor" turn-secret-file' -l 'turn-secret-file' -d 'File holding the TURN REST shared secret.' -rF
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl doctor" token-file' -l 'token-file' -d 'File holding a join token.' -rF
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl doctor" token-secret-file' -l 'token-secret-file' -d 'File holding the token secret, to make a join token (serve\'s token-secret).' -rF
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl doctor" admin-key-file' -l 'admin-key-file' -d 'File holding the media server\'s admin key, to mint a join token through its admin API.' -rF
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl doctor" channel' -l 'channel' -d 'Channel in which a call must be allowed to start.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl doctor" role' -l 'role' -d 'Where this runs: client (where users are) or server (the media host).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl doctor" cluster-db' -l 'cluster-db' -d 'With --role server on a cluster node: the cluster\'s PostgreSQL (default: $CALLSCTL_CLUSTER_DB, else [cluster] of --config). Adds CLU001 (it answers) and CLU002 (this node heartbeats).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl doctor" cluster-node-id' -l 'cluster-node-id' -d 'This node\'s cluster id (default: [cluster] node_id of --config, else the host name).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl doctor" ca-file' -l 'ca-file' -d 'CA certificates for https/wss and TURN over TLS.' -rF
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl doctor" only' -l 'only' -d 'Only these checks (comma-separated ids).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl doctor" skip' -l 'skip' -d 'Skip these checks (comma-separated ids).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl doctor" timeout' -l 'timeout' -d 'Time budget for the whole run, in seconds.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl doctor" junit' -l 'junit' -d 'Also write the results as JUnit XML to this file.' -rF
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl doctor" strict' -l 'strict' -d 'Treat warnings as failures (exit 1).'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl doctor" self-test' -l 'self-test' -d 'Start a callsctl serve on loopback ephemeral ports and check it: a smoke test of this build and host.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl doctor" version' -l 'version' -d 'Show the version.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl doctor" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe" version' -l 'version' -d 'Show the version.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_positional "callsctl probe" -eq 1' -fa 'stun' -d 'Send STUN Binding requests and report the mapped address and RTT.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_positional "callsctl probe" -eq 1' -fa 'turn' -d 'Allocate on a TURN server and prove a relayed round trip.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_positional "callsctl probe" -eq 1' -fa 'nat' -d 'Classify NAT mapping and filtering behaviour (RFC 5780, RFC 4787).'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe stun" data-dir' -l 'data-dir' -d 'Where callsctl keeps its data (calls.db, secrets).' -rfa '(__callsctl_complete_directories)'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe stun" json' -l 'json' -d 'Print machine-readable JSON on standard output.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe stun" no-color' -l 'no-color' -d 'Never use colour (also when NO_COLOR is set).'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe stun" q quiet' -s 'q' -l 'quiet' -d 'Print only errors and the essential result.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe stun" v verbose' -s 'v' -l 'verbose' -d 'Print more detail about what is being done.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe stun" transport' -l 'transport' -d 'udp, tcp or tls (default: udp; tls for stuns:).' -rfka 'udp tcp tls'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe stun" count' -l 'count' -d 'Number of Binding requests.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe stun" timeout' -l 'timeout' -d 'Overall time budget in seconds.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe stun" rto' -l 'rto' -d 'Initial retransmission timeout in milliseconds (UDP; doubles each time).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe stun" retries' -l 'retries' -d 'Retransmissions per request (UDP).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe stun" ca-file' -l 'ca-file' -d 'Extra trusted CA certificates (PEM) for TLS.' -rF
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe stun" version' -l 'version' -d 'Show the version.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe stun" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe turn" data-dir' -l 'data-dir' -d 'Where callsctl keeps its data (calls.db, secrets).' -rfa '(__callsctl_complete_directories)'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe turn" json' -l 'json' -d 'Print machine-readable JSON on standard output.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe turn" no-color' -l 'no-color' -d 'Never use colour (also when NO_COLOR is set).'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe turn" q quiet' -s 'q' -l 'quiet' -d 'Print only errors and the essential result.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe turn" v verbose' -s 'v' -l 'verbose' -d 'Print more detail about what is being done.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe turn" user' -l 'user' -d 'Long-term credential user name (with --password-file).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe turn" password-file' -l 'password-file' -d 'File holding the password.' -rF
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe turn" secret-file' -l 'secret-file' -d 'File holding the TURN REST shared secret (coturn static-auth-secret).' -rF
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe turn" rest-user' -l 'rest-user' -d 'User part of the TURN REST user name.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe turn" ttl' -l 'ttl' -d 'TURN REST credential lifetime in seconds.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe turn" transport' -l 'transport' -d 'udp, tcp or tls (default: from the URI).' -rfka 'udp tcp tls'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe turn" count' -l 'count' -d 'Relayed round-trip packets.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe turn" peer' -l 'peer' -d 'A UDP echo peer instead of a local socket (for example turnutils_peer).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe turn" ca-file' -l 'ca-file' -d 'Extra trusted CA certificates (PEM) for turns:.' -rF
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe turn" timeout' -l 'timeout' -d 'Overall time budget in seconds.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe turn" rto' -l 'rto' -d 'Initial retransmission timeout in milliseconds (UDP; doubles each time).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe turn" retries' -l 'retries' -d 'Retransmissions per request (UDP).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe turn" version' -l 'version' -d 'Show the version.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe turn" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe nat" data-dir' -l 'data-dir' -d 'Where callsctl keeps its data (calls.db, secrets).' -rfa '(__callsctl_complete_directories)'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe nat" json' -l 'json' -d 'Print machine-readable JSON on standard output.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe nat" no-color' -l 'no-color' -d 'Never use colour (also when NO_COLOR is set).'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe nat" q quiet' -s 'q' -l 'quiet' -d 'Print only errors and the essential result.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe nat" v verbose' -s 'v' -l 'verbose' -d 'Print more detail about what is being done.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe nat" servers' -l 'servers' -d 'Two servers to compare mappings (comma-separated).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe nat" hairpin' -l 'hairpin' -d 'Also test hairpinning (a packet to our own mapped address comes back).'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe nat" timeout' -l 'timeout' -d 'Overall time budget in seconds.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe nat" version' -l 'version' -d 'Show the version.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl probe nat" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl ports" version' -l 'version' -d 'Show the version.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl ports" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_positional "callsctl ports" -eq 1' -fa 'check' -d 'Tell open, closed and filtered ports apart, and how it was decided.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl ports check" data-dir' -l 'data-dir' -d 'Where callsctl keeps its data (calls.db, secrets).' -rfa '(__callsctl_complete_directories)'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl ports check" json' -l 'json' -d 'Print machine-readable JSON on standard output.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl ports check" no-color' -l 'no-color' -d 'Never use colour (also when NO_COLOR is set).'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl ports check" q quiet' -s 'q' -l 'quiet' -d 'Print only errors and the essential result.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl ports check" v verbose' -s 'v' -l 'verbose' -d 'Print more detail about what is being done.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl ports check" local' -l 'local' -d 'Check that this machine can bind the ports.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl ports check" host' -l 'host' -d 'Check the ports of this host from here.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl ports check" udp' -l 'udp' -d 'UDP ports (comma-separated).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl ports check" tcp' -l 'tcp' -d 'TCP ports (comma-separated).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl ports check" bind-address' -l 'bind-address' -d 'Address to bind for --local.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl ports check" timeout' -l 'timeout' -d 'Time budget per port in seconds.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl ports check" version' -l 'version' -d 'Show the version.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl ports check" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config" version' -l 'version' -d 'Show the version.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_positional "callsctl config" -eq 1' -fa 'generate' -d 'Write consistent configs for callsctl, rtcd, coturn, nginx, Kubernetes, systemd, ...'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_positional "callsctl config" -eq 1' -fa 'validate' -d 'Check config files and report every error with file, line and fix.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_positional "callsctl config" -eq 1' -fa 'show' -d 'Show the resolved config and where each value came from.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_positional "callsctl config" -eq 1' -fa 'import-rtcd' -d 'Convert an rtcd config.toml (and RTCD_... environment) into a callsctl config.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config generate" data-dir' -l 'data-dir' -d 'Where callsctl keeps its data (calls.db, secrets).' -rfa '(__callsctl_complete_directories)'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config generate" json' -l 'json' -d 'Print machine-readable JSON on standard output.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config generate" no-color' -l 'no-color' -d 'Never use colour (also when NO_COLOR is set).'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config generate" q quiet' -s 'q' -l 'quiet' -d 'Print only errors and the essential result.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config generate" v verbose' -s 'v' -l 'verbose' -d 'Print more detail about what is being done.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_positional "callsctl config generate" -eq 1' -fka 'callsctl rtcd mattermost-plugin coturn nginx kubernetes systemd firewall calls-offloader grafana bundle'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config generate" domain' -l 'domain' -d 'Public DNS name of the media server (required).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config generate" public-ip' -l 'public-ip' -d 'Public IP of the media server (required).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config generate" ice-host-override' -l 'ice-host-override' -d 'Address advertised in ICE candidates. Default: the public IP.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config generate" turn-domain' -l 'turn-domain' -d 'DNS name of the TURN server. Default: the domain (coturn on the media host).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config generate" mattermost-url' -l 'mattermost-url' -d 'Site URL of the Mattermost server.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config generate" rtc-port' -l 'rtc-port' -d 'Media port, UDP and TCP.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config generate" api-port' -l 'api-port' -d 'API port (chat servers only).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config generate" turn-port' -l 'turn-port' -d 'TURN port, UDP and TCP.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config generate" turns-port' -l 'turns-port' -d 'TURN over TLS port.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config generate" relay-ports' -l 'relay-ports' -d 'coturn relay port range.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config generate" turn-secret' -l 'turn-secret' -d 'TURN shared secret (visible in the process list; prefer --turn-secret-file).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config generate" turn-secret-file' -l 'turn-secret-file' -d 'File with the TURN shared secret. Default: generated.' -rF
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config generate" admin-key-file' -l 'admin-key-file' -d 'File with the media server\'s admin key. Default: generated.' -rF
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config generate" token-secret-file' -l 'token-secret-file' -d 'File with callsctl\'s join-token secret (base64). Default: generated.' -rF
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config generate"' -l 'chat-server-cidr' -d 'Address or network of the chat servers, allowed to the API port (repeatable).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config generate" nginx-stream' -l 'nginx-stream' -d 'nginx: also forward the media port (UDP and TCP) with a stream block.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config generate" upstream-host' -l 'upstream-host' -d 'nginx: the media server\'s private address to forward to.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config generate" kubernetes-kind' -l 'kubernetes-kind' -d 'kubernetes: deployment or daemonset.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config generate" image' -l 'image' -d 'kubernetes: container image of callsctl.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config generate" callsctl-path' -l 'callsctl-path' -d 'systemd: path of the callsctl binary.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config generate" tls-cert' -l 'tls-cert' -d 'TLS certificate for nginx and coturn. Default: /etc/letsencrypt/live/DOMAIN/fullchain.pem.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config generate" tls-key' -l 'tls-key' -d 'TLS key for nginx and coturn. Default: /etc/letsencrypt/live/DOMAIN/privkey.pem.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config generate" max-participants' -l 'max-participants' -d 'Participants per call. Default: unlimited.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config generate" test-mode' -l 'test-mode' -d 'Calls plugin test mode, on or off.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config generate" turn-credential-minutes' -l 'turn-credential-minutes' -d 'Lifetime of TURN credentials for clients, minutes.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config generate" rtcd-admin-key-file' -l 'rtcd-admin-key-file' -d 'File with rtcd\'s admin key. Default: generated (its own, not callsctl\'s).' -rF
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config generate" offloader-admin-key-file' -l 'offloader-admin-key-file' -d 'File with calls-offloader\'s admin key. Default: generated (its own).' -rF
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config generate" media-nodes' -l 'media-nodes' -d 'Media servers (rtcd or callsctl) sharing the load; each learns its own public address by STUN when more than 1.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config generate" internal-host' -l 'internal-host' -d 'Private name or address the chat servers reach the API port at. Default: the domain (it must then resolve to the private address for them).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config generate" coturn-version' -l 'coturn-version' -d 'coturn release the config is for (4.7 dropped no-tlsv1/no-tlsv1_1).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config generate" cluster-db-url-file' -l 'cluster-db-url-file' -d 'Cluster form of callsctl serve: file with the PostgreSQL URL the nodes share (postgres://USER:PASSWORD@HOST/DB); it goes into secret files only.' -rF
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config generate"' -l 'cluster-node' -d 'Cluster form: a node\'s own public DNS name, and the address it advertises if not that name (repeatable, one per node). Default: the domain\'s first label with -1, -2, ... (calls-1.example.com).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config generate" out' -l 'out' -d 'Write the files into this folder (required for bundle).' -rfa '(__callsctl_complete_directories)'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config generate" force' -l 'force' -d 'Overwrite existing files in --out.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config generate" version' -l 'version' -d 'Show the version.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config generate" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config validate" data-dir' -l 'data-dir' -d 'Where callsctl keeps its data (calls.db, secrets).' -rfa '(__callsctl_complete_directories)'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config validate" json' -l 'json' -d 'Print machine-readable JSON on standard output.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config validate" no-color' -l 'no-color' -d 'Never use colour (also when NO_COLOR is set).'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config validate" q quiet' -s 'q' -l 'quiet' -d 'Print only errors and the essential result.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config validate" v verbose' -s 'v' -l 'verbose' -d 'Print more detail about what is being done.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_positional "callsctl config validate" -ge 1' -F
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config validate" strict' -l 'strict' -d 'Exit 1 on warnings.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config validate" resolve' -l 'resolve' -d 'Also check that hostnames resolve.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config validate" bundle' -l 'bundle' -d 'Also cross-check the configs of a generated bundle folder.' -rfa '(__callsctl_complete_directories)'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config validate" version' -l 'version' -d 'Show the version.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config validate" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config show" data-dir' -l 'data-dir' -d 'Where callsctl keeps its data (calls.db, secrets).' -rfa '(__callsctl_complete_directories)'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config show" json' -l 'json' -d 'Print machine-readable JSON on standard output.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config show" no-color' -l 'no-color' -d 'Never use colour (also when NO_COLOR is set).'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config show" q quiet' -s 'q' -l 'quiet' -d 'Print only errors and the essential result.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config show" v verbose' -s 'v' -l 'verbose' -d 'Print more detail about what is being done.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config show" effective' -l 'effective' -d 'Include defaults, not only values that were set.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config show" config' -l 'config' -d 'Config file to show.' -rfa '(for p in (string match -e -- \'*/\' (commandline -t);or printf \n)*.\'toml\';printf %s\n $p;end;__fish_complete_directories (commandline -t) \'\')'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config show" version' -l 'version' -d 'Show the version.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config show" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config import-rtcd" data-dir' -l 'data-dir' -d 'Where callsctl keeps its data (calls.db, secrets).' -rfa '(__callsctl_complete_directories)'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config import-rtcd" json' -l 'json' -d 'Print machine-readable JSON on standard output.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config import-rtcd" no-color' -l 'no-color' -d 'Never use colour (also when NO_COLOR is set).'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config import-rtcd" q quiet' -s 'q' -l 'quiet' -d 'Print only errors and the essential result.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config import-rtcd" v verbose' -s 'v' -l 'verbose' -d 'Print more detail about what is being done.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_positional "callsctl config import-rtcd" -eq 1' -fa '(for p in (string match -e -- \'*/\' (commandline -t);or printf \n)*.\'toml\';printf %s\n $p;end;__fish_complete_directories (commandline -t) \'\')'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config import-rtcd" out' -l 'out' -d 'Where to write callsctl.toml. Default: standard output.' -rF
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config import-rtcd" force' -l 'force' -d 'Replace --out if it exists.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config import-rtcd" version' -l 'version' -d 'Show the version.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl config import-rtcd" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel" version' -l 'version' -d 'Show the version.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_positional "callsctl channel" -eq 1' -fa 'enable' -d 'Allow calls in channels, also under test mode.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_positional "callsctl channel" -eq 1' -fa 'disable' -d 'Forbid calls in channels, for everyone including admins.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_positional "callsctl channel" -eq 1' -fa 'reset' -d 'Return channels to unset, so test mode decides.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_positional "callsctl channel" -eq 1' -fa 'status' -d 'Show a channel\'s setting and whether calls may start there.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_positional "callsctl channel" -eq 1' -fa 'list' -d 'List channels with an explicit setting.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_positional "callsctl channel" -eq 1' -fa 'history' -d 'Show the audit log of setting and test-mode changes, newest first.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_positional "callsctl channel" -eq 1' -fa 'testmode' -d 'Turn test mode on or off, or show it.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel enable" data-dir' -l 'data-dir' -d 'Where callsctl keeps its data (calls.db, secrets).' -rfa '(__callsctl_complete_directories)'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel enable" json' -l 'json' -d 'Print machine-readable JSON on standard output.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel enable" no-color' -l 'no-color' -d 'Never use colour (also when NO_COLOR is set).'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel enable" q quiet' -s 'q' -l 'quiet' -d 'Print only errors and the essential result.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel enable" v verbose' -s 'v' -l 'verbose' -d 'Print more detail about what is being done.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel enable" actor' -l 'actor' -d 'Who is making the change, for the audit log. Default: the OS user.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel enable" cluster-db' -l 'cluster-db' -d 'The cluster\'s PostgreSQL (as serve --cluster-db). Default: $CALLSCTL_CLUSTER_DB, else [cluster] database_url of the config file, else calls.db in the data directory.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel enable" cluster-db-password-file' -l 'cluster-db-password-file' -d 'File with the cluster database\'s password.' -rF
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel enable" config' -l 'config' -d 'Config file to read [cluster] from. Default: $CALLSCTL_CONFIG, else callsctl.toml in the data directory.' -rfa '(for p in (string match -e -- \'*/\' (commandline -t);or printf \n)*.\'toml\';printf %s\n $p;end;__fish_complete_directories (commandline -t) \'\')'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel enable" version' -l 'version' -d 'Show the version.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel enable" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel disable" data-dir' -l 'data-dir' -d 'Where callsctl keeps its data (calls.db, secrets).' -rfa '(__callsctl_complete_directories)'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel disable" json' -l 'json' -d 'Print machine-readable JSON on standard output.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel disable" no-color' -l 'no-color' -d 'Never use colour (also when NO_COLOR is set).'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel disable" q quiet' -s 'q' -l 'quiet' -d 'Print only errors and the essential result.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel disable" v verbose' -s 'v' -l 'verbose' -d 'Print more detail about what is being done.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel disable" actor' -l 'actor' -d 'Who is making the change, for the audit log. Default: the OS user.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel disable" cluster-db' -l 'cluster-db' -d 'The cluster\'s PostgreSQL (as serve --cluster-db). Default: $CALLSCTL_CLUSTER_DB, else [cluster] database_url of the config file, else calls.db in the data directory.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel disable" cluster-db-password-file' -l 'cluster-db-password-file' -d 'File with the cluster database\'s password.' -rF
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel disable" config' -l 'config' -d 'Config file to read [cluster] from. Default: $CALLSCTL_CONFIG, else callsctl.toml in the data directory.' -rfa '(for p in (string match -e -- \'*/\' (commandline -t);or printf \n)*.\'toml\';printf %s\n $p;end;__fish_complete_directories (commandline -t) \'\')'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel disable" version' -l 'version' -d 'Show the version.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel disable" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel reset" data-dir' -l 'data-dir' -d 'Where callsctl keeps its data (calls.db, secrets).' -rfa '(__callsctl_complete_directories)'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel reset" json' -l 'json' -d 'Print machine-readable JSON on standard output.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel reset" no-color' -l 'no-color' -d 'Never use colour (also when NO_COLOR is set).'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel reset" q quiet' -s 'q' -l 'quiet' -d 'Print only errors and the essential result.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel reset" v verbose' -s 'v' -l 'verbose' -d 'Print more detail about what is being done.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel reset" actor' -l 'actor' -d 'Who is making the change, for the audit log. Default: the OS user.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel reset" cluster-db' -l 'cluster-db' -d 'The cluster\'s PostgreSQL (as serve --cluster-db). Default: $CALLSCTL_CLUSTER_DB, else [cluster] database_url of the config file, else calls.db in the data directory.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel reset" cluster-db-password-file' -l 'cluster-db-password-file' -d 'File with the cluster database\'s password.' -rF
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel reset" config' -l 'config' -d 'Config file to read [cluster] from. Default: $CALLSCTL_CONFIG, else callsctl.toml in the data directory.' -rfa '(for p in (string match -e -- \'*/\' (commandline -t);or printf \n)*.\'toml\';printf %s\n $p;end;__fish_complete_directories (commandline -t) \'\')'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel reset" version' -l 'version' -d 'Show the version.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel reset" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel status" data-dir' -l 'data-dir' -d 'Where callsctl keeps its data (calls.db, secrets).' -rfa '(__callsctl_complete_directories)'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel status" json' -l 'json' -d 'Print machine-readable JSON on standard output.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel status" no-color' -l 'no-color' -d 'Never use colour (also when NO_COLOR is set).'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel status" q quiet' -s 'q' -l 'quiet' -d 'Print only errors and the essential result.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel status" v verbose' -s 'v' -l 'verbose' -d 'Print more detail about what is being done.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel status" cluster-db' -l 'cluster-db' -d 'The cluster\'s PostgreSQL (as serve --cluster-db). Default: $CALLSCTL_CLUSTER_DB, else [cluster] database_url of the config file, else calls.db in the data directory.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel status" cluster-db-password-file' -l 'cluster-db-password-file' -d 'File with the cluster database\'s password.' -rF
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel status" config' -l 'config' -d 'Config file to read [cluster] from. Default: $CALLSCTL_CONFIG, else callsctl.toml in the data directory.' -rfa '(for p in (string match -e -- \'*/\' (commandline -t);or printf \n)*.\'toml\';printf %s\n $p;end;__fish_complete_directories (commandline -t) \'\')'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel status" version' -l 'version' -d 'Show the version.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel status" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel list" data-dir' -l 'data-dir' -d 'Where callsctl keeps its data (calls.db, secrets).' -rfa '(__callsctl_complete_directories)'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel list" json' -l 'json' -d 'Print machine-readable JSON on standard output.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel list" no-color' -l 'no-color' -d 'Never use colour (also when NO_COLOR is set).'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel list" q quiet' -s 'q' -l 'quiet' -d 'Print only errors and the essential result.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel list" v verbose' -s 'v' -l 'verbose' -d 'Print more detail about what is being done.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel list" enabled' -l 'enabled' -d 'Only channels where calls are enabled.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel list" disabled' -l 'disabled' -d 'Only channels where calls are disabled.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel list" cluster-db' -l 'cluster-db' -d 'The cluster\'s PostgreSQL (as serve --cluster-db). Default: $CALLSCTL_CLUSTER_DB, else [cluster] database_url of the config file, else calls.db in the data directory.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel list" cluster-db-password-file' -l 'cluster-db-password-file' -d 'File with the cluster database\'s password.' -rF
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel list" config' -l 'config' -d 'Config file to read [cluster] from. Default: $CALLSCTL_CONFIG, else callsctl.toml in the data directory.' -rfa '(for p in (string match -e -- \'*/\' (commandline -t);or printf \n)*.\'toml\';printf %s\n $p;end;__fish_complete_directories (commandline -t) \'\')'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel list" version' -l 'version' -d 'Show the version.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel list" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel history" data-dir' -l 'data-dir' -d 'Where callsctl keeps its data (calls.db, secrets).' -rfa '(__callsctl_complete_directories)'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel history" json' -l 'json' -d 'Print machine-readable JSON on standard output.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel history" no-color' -l 'no-color' -d 'Never use colour (also when NO_COLOR is set).'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel history" q quiet' -s 'q' -l 'quiet' -d 'Print only errors and the essential result.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel history" v verbose' -s 'v' -l 'verbose' -d 'Print more detail about what is being done.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel history" limit' -l 'limit' -d 'At most this many entries.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel history" cluster-db' -l 'cluster-db' -d 'The cluster\'s PostgreSQL (as serve --cluster-db). Default: $CALLSCTL_CLUSTER_DB, else [cluster] database_url of the config file, else calls.db in the data directory.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel history" cluster-db-password-file' -l 'cluster-db-password-file' -d 'File with the cluster database\'s password.' -rF
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel history" config' -l 'config' -d 'Config file to read [cluster] from. Default: $CALLSCTL_CONFIG, else callsctl.toml in the data directory.' -rfa '(for p in (string match -e -- \'*/\' (commandline -t);or printf \n)*.\'toml\';printf %s\n $p;end;__fish_complete_directories (commandline -t) \'\')'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel history" version' -l 'version' -d 'Show the version.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel history" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel testmode" data-dir' -l 'data-dir' -d 'Where callsctl keeps its data (calls.db, secrets).' -rfa '(__callsctl_complete_directories)'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel testmode" json' -l 'json' -d 'Print machine-readable JSON on standard output.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel testmode" no-color' -l 'no-color' -d 'Never use colour (also when NO_COLOR is set).'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel testmode" q quiet' -s 'q' -l 'quiet' -d 'Print only errors and the essential result.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel testmode" v verbose' -s 'v' -l 'verbose' -d 'Print more detail about what is being done.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_positional "callsctl channel testmode" -eq 1' -fka 'on off status'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel testmode" actor' -l 'actor' -d 'Who is making the change, for the audit log. Default: the OS user.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel testmode" cluster-db' -l 'cluster-db' -d 'The cluster\'s PostgreSQL (as serve --cluster-db). Default: $CALLSCTL_CLUSTER_DB, else [cluster] database_url of the config file, else calls.db in the data directory.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel testmode" cluster-db-password-file' -l 'cluster-db-password-file' -d 'File with the cluster database\'s password.' -rF
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel testmode" config' -l 'config' -d 'Config file to read [cluster] from. Default: $CALLSCTL_CONFIG, else callsctl.toml in the data directory.' -rfa '(for p in (string match -e -- \'*/\' (commandline -t);or printf \n)*.\'toml\';printf %s\n $p;end;__fish_complete_directories (commandline -t) \'\')'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel testmode" version' -l 'version' -d 'Show the version.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl channel testmode" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl calls" version' -l 'version' -d 'Show the version.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl calls" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_positional "callsctl calls" -eq 1' -fa 'list' -d 'List the running calls and their participants.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_positional "callsctl calls" -eq 1' -fa 'end' -d 'End the call in a channel: every participant is removed.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_positional "callsctl calls" -eq 1' -fa 'remove' -d 'Remove one participant (a signaling session) from its call.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl calls list" data-dir' -l 'data-dir' -d 'Where callsctl keeps its data (calls.db, secrets).' -rfa '(__callsctl_complete_directories)'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl calls list" json' -l 'json' -d 'Print machine-readable JSON on standard output.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl calls list" no-color' -l 'no-color' -d 'Never use colour (also when NO_COLOR is set).'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl calls list" q quiet' -s 'q' -l 'quiet' -d 'Print only errors and the essential result.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl calls list" v verbose' -s 'v' -l 'verbose' -d 'Print more detail about what is being done.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl calls list" url' -l 'url' -d 'The media server\'s API URL (serve\'s --api-listen).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl calls list" admin-key-file' -l 'admin-key-file' -d 'File with the admin API bearer key.' -rF
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl calls list" timeout' -l 'timeout' -d 'Seconds to wait for the server\'s answer.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl calls list" version' -l 'version' -d 'Show the version.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl calls list" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl calls end" data-dir' -l 'data-dir' -d 'Where callsctl keeps its data (calls.db, secrets).' -rfa '(__callsctl_complete_directories)'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl calls end" json' -l 'json' -d 'Print machine-readable JSON on standard output.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl calls end" no-color' -l 'no-color' -d 'Never use colour (also when NO_COLOR is set).'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl calls end" q quiet' -s 'q' -l 'quiet' -d 'Print only errors and the essential result.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl calls end" v verbose' -s 'v' -l 'verbose' -d 'Print more detail about what is being done.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl calls end" url' -l 'url' -d 'The media server\'s API URL (serve\'s --api-listen).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl calls end" admin-key-file' -l 'admin-key-file' -d 'File with the admin API bearer key.' -rF
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl calls end" timeout' -l 'timeout' -d 'Seconds to wait for the server\'s answer.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl calls end" version' -l 'version' -d 'Show the version.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl calls end" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl calls remove" data-dir' -l 'data-dir' -d 'Where callsctl keeps its data (calls.db, secrets).' -rfa '(__callsctl_complete_directories)'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl calls remove" json' -l 'json' -d 'Print machine-readable JSON on standard output.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl calls remove" no-color' -l 'no-color' -d 'Never use colour (also when NO_COLOR is set).'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl calls remove" q quiet' -s 'q' -l 'quiet' -d 'Print only errors and the essential result.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl calls remove" v verbose' -s 'v' -l 'verbose' -d 'Print more detail about what is being done.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl calls remove" url' -l 'url' -d 'The media server\'s API URL (serve\'s --api-listen).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl calls remove" admin-key-file' -l 'admin-key-file' -d 'File with the admin API bearer key.' -rF
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl calls remove" timeout' -l 'timeout' -d 'Seconds to wait for the server\'s answer.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl calls remove" version' -l 'version' -d 'Show the version.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl calls remove" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl token" version' -l 'version' -d 'Show the version.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl token" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_positional "callsctl token" -eq 1' -fa 'create' -d 'Print an HS256 token that lets USER join calls in CHANNEL.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl token create" data-dir' -l 'data-dir' -d 'Where callsctl keeps its data (calls.db, secrets).' -rfa '(__callsctl_complete_directories)'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl token create" json' -l 'json' -d 'Print machine-readable JSON on standard output.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl token create" no-color' -l 'no-color' -d 'Never use colour (also when NO_COLOR is set).'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl token create" q quiet' -s 'q' -l 'quiet' -d 'Print only errors and the essential result.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl token create" v verbose' -s 'v' -l 'verbose' -d 'Print more detail about what is being done.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl token create" channel' -l 'channel' -d 'Channel id.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl token create" user' -l 'user' -d 'User name.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl token create" role' -l 'role' -d 'Role: user or admin.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl token create" ttl' -l 'ttl' -d 'Lifetime in seconds.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl token create" token-secret-file' -l 'token-secret-file' -d 'File with the signing secret (base64). Default: token-secret in the data directory.' -rF
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl token create" version' -l 'version' -d 'Show the version.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl token create" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl loadtest" data-dir' -l 'data-dir' -d 'Where callsctl keeps its data (calls.db, secrets).' -rfa '(__callsctl_complete_directories)'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl loadtest" json' -l 'json' -d 'Print machine-readable JSON on standard output.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl loadtest" no-color' -l 'no-color' -d 'Never use colour (also when NO_COLOR is set).'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl loadtest" q quiet' -s 'q' -l 'quiet' -d 'Print only errors and the essential result.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl loadtest" v verbose' -s 'v' -l 'verbose' -d 'Print more detail about what is being done.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl loadtest" url' -l 'url' -d 'The media server\'s API URL (signaling at /ws).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl loadtest"' -l 'join-url' -d 'Join through these API URLs in turn (repeatable): the nodes of a cluster, which redirect each join to its call\'s node. Default: --url.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl loadtest" token-secret-file' -l 'token-secret-file' -d 'The server\'s token secret, to sign join tokens here.' -rF
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl loadtest" admin-key-file' -l 'admin-key-file' -d 'The server\'s admin key, to mint join tokens with POST /api/v1/tokens.' -rF
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl loadtest"' -l 'channel' -d 'Channel id for a call (repeatable; one per call). Default: random ids.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl loadtest" calls' -l 'calls' -d 'Number of calls.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl loadtest" participants' -l 'participants' -d 'Participants per call.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl loadtest" speakers' -l 'speakers' -d 'Speakers per call (they send Opus tones; the others join muted).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl loadtest" presenters' -l 'presenters' -d 'Presenters per call, 0 or 1: the first participant also shares a screen (a VP8 stream of about 130 kbit/s at 15 fps).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl loadtest" duration' -l 'duration' -d 'Seconds of media after everyone joined.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl loadtest" ramp' -l 'ramp' -d 'Joins started per second (all calls together).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl loadtest" transport' -l 'transport' -d 'Media transport: udp or tcp (ICE-TCP).' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl loadtest" role' -l 'role' -d 'Role in the join tokens: user or admin.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl loadtest" server-pid' -l 'server-pid' -d 'A local server process to sample CPU and RSS from /proc.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl loadtest" max-loss' -l 'max-loss' -d 'Exit 2 when the mean loss per listener passes this percentage.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl loadtest" max-join-failures' -l 'max-join-failures' -d 'Exit 2 when more joins than this fail.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl loadtest" join-timeout' -l 'join-timeout' -d 'Seconds a join (signaling, ICE, DTLS) may take.' -rfka ''
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl loadtest" report' -l 'report' -d 'Write an HTML report (figures and charts, self-contained) to this file.' -rfa '(for p in (string match -e -- \'*/\' (commandline -t);or printf \n)*.\'html\';printf %s\n $p;end;__fish_complete_directories (commandline -t) \'\')'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl loadtest" version' -l 'version' -d 'Show the version.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl loadtest" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl version" data-dir' -l 'data-dir' -d 'Where callsctl keeps its data (calls.db, secrets).' -rfa '(__callsctl_complete_directories)'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl version" json' -l 'json' -d 'Print machine-readable JSON on standard output.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl version" no-color' -l 'no-color' -d 'Never use colour (also when NO_COLOR is set).'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl version" q quiet' -s 'q' -l 'quiet' -d 'Print only errors and the essential result.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl version" v verbose' -s 'v' -l 'verbose' -d 'Print more detail about what is being done.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl version" version' -l 'version' -d 'Show the version.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl version" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'callsctl' -n '__callsctl_should_offer_completions_for_flags_or_options "callsctl help" version' -l 'version' -d 'Show the version.'

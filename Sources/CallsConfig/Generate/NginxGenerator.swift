import Foundation

/// nginx: an HTTPS reverse proxy for the media server's API with WebSocket upgrade (http context), and,
/// with `--nginx-stream`, a `stream` block forwarding the media port over UDP and TCP (main context).
enum NginxGenerator {
    static func files(_ i: DeploymentInputs) -> [GeneratedFile] {
        let upstream = Render.hostPort(i.upstreamHost, i.apiPort)
        // A cluster node answers under the shared name (behind the load balancer) and under its own, where joins
        // for its calls are redirected; one file serves every node (the certificate must hold all the names).
        let serverNames = ([i.domain] + i.clusterNodes.map(\.host)).joined(separator: " ")
        // What browsers need (the signaling WebSocket and the test page) is published; the rest of the API port
        // stays on the private network.
        let headers = """
                    proxy_http_version 1.1;
                    proxy_set_header Host $host;
                    proxy_set_header X-Real-IP $remote_addr;
                    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
                    proxy_set_header X-Forwarded-Proto $scheme;
            """
        let http = """
            # HTTPS reverse proxy for the calls server on \(i.domain). \(Render.header).
            # http context: install as /etc/nginx/conf.d/callsctl.conf, then: nginx -t && systemctl reload nginx
            # Publishes what browsers use: the signaling WebSocket (/ws) and the test page (/). Everything else on
            # the API port stays internal and gets 404 here: the admin API (/api/v1/), /metrics, /readyz,
            # /healthz, /version, and rtcd's registration and admin paths (/register, /unregister, /login, ...)
            # when rtcd listens on \(i.apiPort). Media never goes through this proxy.

            # Plain requests reuse upstream connections (keepalive).
            upstream callsctl_api {
                server \(upstream);
                keepalive 16;
            }

            # WebSocket upgrades on fresh connections: a long-lived socket should not hold a pooled keep-alive
            # connection, and some servers upgrade only a connection's first request.
            upstream callsctl_ws {
                server \(upstream);
            }

            server {
                listen 80;
                listen [::]:80;
                server_name \(serverNames);
                return 301 https://$host$request_uri;
            }

            server {
                listen 443 ssl;
                listen [::]:443 ssl;
                server_name \(serverNames);

                ssl_certificate \(i.tlsCert);
                ssl_certificate_key \(i.tlsKey);
                ssl_protocols TLSv1.2 TLSv1.3;
                ssl_session_cache shared:callsctl_tls:10m;

                # Signaling: a WebSocket that stays open for the whole call.
                location = /ws {
                    proxy_pass http://callsctl_ws;
            \(headers)
                    proxy_set_header Upgrade $http_upgrade;
                    proxy_set_header Connection "upgrade";
                    proxy_read_timeout 1h;
                    proxy_send_timeout 1h;
                    proxy_buffering off;
                }

                # The test page. An empty Connection header keeps the upstream connection open (keepalive).
                location = / {
                    proxy_pass http://callsctl_api;
            \(headers)
                    proxy_set_header Connection "";
                }

                location = /index.html {
                    proxy_pass http://callsctl_api;
            \(headers)
                    proxy_set_header Connection "";
                }

                # Internal only: the admin API, metrics, health and version, rtcd's /register and admin paths.
                location / {
                    return 404;
                }
            }

            """
        var files = [GeneratedFile(path: "nginx/callsctl.conf", contents: http, description: "HTTPS + WebSocket proxy for the API; /etc/nginx/conf.d/callsctl.conf")]
        if i.nginxStream {
            let media = Render.hostPort(i.upstreamHost, i.rtcPort)
            let stream = """
                # Media port \(i.rtcPort) forwarded over UDP and TCP to the media server. \(Render.header).
                # main context (not inside http {}): install as /etc/nginx/callsctl-stream.conf and add
                #   include /etc/nginx/callsctl-stream.conf;
                # at the top level of /etc/nginx/nginx.conf (Debian: apt install libnginx-mod-stream).
                # Clients then connect to this host; its address must be what the media server advertises
                # (ICE host override \(i.iceHostOverride)). Forwarding hides the clients' addresses, and the
                # media docs advise sending media straight to the media server where possible.

                stream {
                    server {
                        listen \(i.rtcPort) udp reuseport;
                        proxy_pass \(media);
                        proxy_timeout 1h;
                    }

                    server {
                        listen \(i.rtcPort);
                        proxy_pass \(media);
                        proxy_timeout 1h;
                    }
                }

                """
            files.append(GeneratedFile(path: "nginx/callsctl-stream.conf", contents: stream, description: "stream block for media \(i.rtcPort) UDP+TCP; include at nginx.conf top level"))
        }
        return files
    }
}

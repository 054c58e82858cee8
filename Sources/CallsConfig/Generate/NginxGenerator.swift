import Foundation

/// nginx: an HTTPS reverse proxy for the media server's API with WebSocket upgrade (http context), and,
/// with `--nginx-stream`, a `stream` block forwarding the media port over UDP and TCP (main context).
enum NginxGenerator {
    static func files(_ i: DeploymentInputs) -> [GeneratedFile] {
        let upstream = Render.hostPort(i.upstreamHost, i.apiPort)
        let http = """
            # HTTPS reverse proxy for the calls API on \(i.domain). \(Render.header).
            # http context: install as /etc/nginx/conf.d/callsctl.conf, then: nginx -t && systemctl reload nginx
            # Carries signaling (WebSocket /ws), the test page and the admin API; media never goes through it.

            map $http_upgrade $callsctl_connection_upgrade {
                default upgrade;
                ''      close;
            }

            upstream callsctl_api {
                server \(upstream);
                keepalive 16;
            }

            server {
                listen 80;
                listen [::]:80;
                server_name \(i.domain);
                return 301 https://$host$request_uri;
            }

            server {
                listen 443 ssl;
                listen [::]:443 ssl;
                server_name \(i.domain);

                ssl_certificate \(i.tlsCert);
                ssl_certificate_key \(i.tlsKey);
                ssl_protocols TLSv1.2 TLSv1.3;
                ssl_session_cache shared:callsctl_tls:10m;

                # Metrics are unauthenticated: scrape them on the private API port instead.
                location = /metrics {
                    return 404;
                }

                location / {
                    proxy_pass http://callsctl_api;
                    proxy_http_version 1.1;
                    proxy_set_header Upgrade $http_upgrade;
                    proxy_set_header Connection $callsctl_connection_upgrade;
                    proxy_set_header Host $host;
                    proxy_set_header X-Real-IP $remote_addr;
                    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
                    proxy_set_header X-Forwarded-Proto $scheme;
                    # Signaling sockets stay open for the whole call.
                    proxy_read_timeout 1h;
                    proxy_send_timeout 1h;
                    proxy_buffering off;
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

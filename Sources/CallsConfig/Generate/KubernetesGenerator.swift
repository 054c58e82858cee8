import Foundation

/// Kubernetes: manifests for `callsctl serve` (Secret, Deployment or DaemonSet on the host network,
/// API Service) and Helm values for Mattermost's `mattermost-rtcd` chart, with the same settings.
enum KubernetesGenerator {
    static func files(_ i: DeploymentInputs) -> [GeneratedFile] {
        /// The labels of a mapping at `indent` spaces; the first line's indent is the caller's.
        func labels(_ indent: Int) -> String {
            "app.kubernetes.io/name: callsctl\n\(String(repeating: " ", count: indent))app.kubernetes.io/instance: calls"
        }
        let override = podOverride(i)
        let args = SystemdGenerator.serveArguments(i, override: override, dataDir: "/var/lib/callsctl", secretsDir: "/etc/callsctl")
            .map { "            - \(Render.yaml($0))" }.joined(separator: "\n")
        let kind = i.kubernetesKind == .daemonset ? "DaemonSet" : "Deployment"
        let scaling = i.kubernetesKind == .daemonset
            ? "  updateStrategy:\n    type: RollingUpdate\n    rollingUpdate:\n      maxUnavailable: 1\n"
            : "  # Host networking: one pod per node (the media port is the node's); scale by adding nodes.\n  replicas: \(i.mediaNodes)\n  strategy:\n    type: Recreate\n"
        let addressing = override != nil
            ? "# Every pod advertises \(override!) (--ice-host-override): one media node."
            : "# Each pod advertises its own node's public address, learned from the STUN server at start\n# (--stun-server): never one shared --ice-host-override for several nodes."
        // Two pods on one node would fight over its media port: one per node.
        let spread = i.kubernetesKind == .deployment && i.mediaNodes > 1
            ? [
                "", "      affinity:", "        podAntiAffinity:", "          requiredDuringSchedulingIgnoredDuringExecution:",
                "            - labelSelector:", "                matchLabels:", "                  app.kubernetes.io/name: callsctl",
                "              topologyKey: kubernetes.io/hostname",
            ].joined(separator: "\n")
            : ""
        let manifest = """
            # callsctl serve for \(i.domain) on Kubernetes. \(Render.header).
            # Apply with: kubectl apply -f callsctl.yaml   (holds the secrets: keep it mode 0600)
            # Media (\(i.rtcPort) UDP+TCP) is served on the node's own address (host network): open it in
            # the node's firewall and point \(i.domain) at the node(s).
            \(addressing)
            apiVersion: v1
            kind: Secret
            metadata:
              name: callsctl-secrets
              labels:
                \(labels(4))
            type: Opaque
            stringData:
              turn-secret: \(Render.yaml(i.turnSecret))
              admin-key: \(Render.yaml(i.adminKey))
              token-secret: \(Render.yaml(i.tokenSecret))
            ---
            apiVersion: apps/v1
            kind: \(kind)
            metadata:
              name: callsctl
              labels:
                \(labels(4))
            spec:
            \(scaling)  selector:
                matchLabels:
                  app.kubernetes.io/name: callsctl
              template:
                metadata:
                  labels:
                    \(labels(8))
                spec:
                  hostNetwork: true
                  dnsPolicy: ClusterFirstWithHostNet
                  # Draining lets running calls end (serve's --drain-timeout is 30 s).
                  terminationGracePeriodSeconds: 60\(spread)
                  securityContext:
                    runAsNonRoot: true
                    runAsUser: 10001
                    runAsGroup: 10001
                    fsGroup: 10001
                  containers:
                    - name: callsctl
                      image: \(Render.yaml(i.image))
                      args:
            \(args)
            \(containerTail(i))
                  volumes:
                    - name: secrets
                      secret:
                        secretName: callsctl-secrets
                        # Group-readable for fsGroup 10001 (serve warns about the group bit; the pod is the only reader).
                        defaultMode: 0440
                    # calls.db (channel settings, test mode) lives here: use a PersistentVolumeClaim
                    # (or a hostPath on the node) to keep it across pod restarts.
                    - name: data
                      emptyDir: {}
            ---
            \(apiService(i, labels: labels(4)))

            """
        let rtcdAddressing = override != nil
            ? "# One rtcd pod, advertising \(override!) (RTCD_RTC_ICEHOSTOVERRIDE)."
            : "# No RTCD_RTC_ICEHOSTOVERRIDE: each rtcd pod learns its node's public address from the STUN server in\n# RTCD_RTC_ICESERVERS at start (one shared override would send every client to one node). Give every node a\n# public address and a DNS A record under the service name the Calls plugin uses (it balances by DNS)."
        var values = """
            # Values for Mattermost's rtcd Helm chart (helm repo add mattermost https://helm.mattermost.com),
            # with the same ports and TURN secret as the rest of this deployment. \(Render.header).
            # Install: helm install rtcd mattermost/mattermost-rtcd -f rtcd-values.yaml  (holds the TURN secret)
            \(rtcdAddressing)
            deploymentType: \(i.kubernetesKind.rawValue)
            networking:
              hostNetwork: true
              useHostPort: true
            service:
              APIport: \(i.apiPort)
              RTCport: \(i.rtcPort)
            configuration:
              # Set here, not left to the chart's default (2).
              replicas: \(i.kubernetesKind == .deployment ? i.mediaNodes : 1)
              # rtcd's data source (the chat servers that registered themselves) needs a writable folder: this
              # one lives as long as the pod (the chat servers register again after a restart); use a
              # persistentVolumeClaim instead to keep it.
              extraVolumes:
                - name: rtcd-data
                  emptyDir: {}
              extraVolumeMounts:
                - name: rtcd-data
                  mountPath: /var/lib/rtcd
              # The chart writes each value as `value: {{ $val }}`, unquoted, and Kubernetes takes only strings
              # there: every value below is quoted inside its quotes, so that it renders as "...".
              environmentVariables:

            """
        for (name, value) in RTCDGenerator.environment(i, override: override) { values += "    \(name): \(Render.helmString(value))\n" }
        if i.isCluster {
            return [
                GeneratedFile(
                    path: "kubernetes/callsctl.yaml", contents: clusterManifest(i), mode: 0o600,
                    description: "Secret, one Deployment and Service per cluster node, shared API Service and Ingress for callsctl serve (kubectl apply -f)"),
                GeneratedFile(path: "kubernetes/rtcd-values.yaml", contents: values, mode: 0o600, description: "Helm values for mattermost/mattermost-rtcd"),
            ]
        }
        return [
            GeneratedFile(path: "kubernetes/callsctl.yaml", contents: manifest, mode: 0o600, description: "Secret, \(kind) and API Service for callsctl serve (kubectl apply -f)"),
            GeneratedFile(path: "kubernetes/rtcd-values.yaml", contents: values, mode: 0o600, description: "Helm values for mattermost/mattermost-rtcd"),
        ]
    }

    /// The label that pins a cluster node's Deployment to the Kubernetes node holding its public address.
    static let nodeLabel = "callsctl/node"
    /// The Secret key of the cluster's database URL; pods read it as CALLSCTL_CLUSTER_DB.
    static let databaseURLKey = "cluster-db-url"

    /// The cluster form: the Secret (with the database URL), per node a Deployment and a Service, the API Service
    /// over every node, and an Ingress publishing /ws and / under the shared name and under each node's own name.
    static func clusterManifest(_ i: DeploymentInputs) -> String {
        func labels(_ indent: Int, node: String? = nil) -> String {
            let pad = String(repeating: " ", count: indent)
            return "app.kubernetes.io/name: callsctl\n\(pad)app.kubernetes.io/instance: calls" + (node.map { "\n\(pad)\(nodeLabel): \($0)" } ?? "")
        }
        var text = """
            # callsctl serve for \(i.domain) on Kubernetes: a cluster of \(i.clusterNodes.count) nodes sharing one PostgreSQL. \(Render.header).
            # Apply with: kubectl apply -f callsctl.yaml   (holds the secrets and the database URL: keep it mode 0600)
            # Media (\(i.rtcPort) UDP+TCP) is served on each machine's own address (host network). First label the machine
            # that holds each node's public address (its DNS name must point there):

            """
        for node in i.clusterNodes {
            text += "#   kubectl label node MACHINE \(nodeLabel)=\(node.id)   # \(node.host), advertises \(node.address)\n"
        }
        text += """
            # One Deployment per node, not a StatefulSet: on the host network the advertised address, the public URL and
            # the media port belong to the machine, not to the pod. A StatefulSet keeps pod names but may restart pod
            # callsctl-1 on another machine, which would then advertise the first one's address; a Deployment pinned
            # by a node label keeps node id, public URL and ICE address with the machine that has them.
            # Joins for a call running on another node get a redirect to that node's public URL (https://NAME below),
            # so the Ingress publishes every node under its own name as well as under \(i.domain).
            apiVersion: v1
            kind: Secret
            metadata:
              name: callsctl-secrets
              labels:
                \(labels(4))
            type: Opaque
            stringData:
              turn-secret: \(Render.yaml(i.turnSecret))
              admin-key: \(Render.yaml(i.adminKey))
              token-secret: \(Render.yaml(i.tokenSecret))
              # The PostgreSQL URL the nodes share (it may hold the password); pods read it as \(CallsctlGenerator.clusterEnvironmentVariable).
              \(databaseURLKey): \(Render.yaml(i.clusterDatabaseURL ?? ""))

            """
        for node in i.clusterNodes {
            var args = SystemdGenerator.serveArguments(i, override: node.address, dataDir: "/var/lib/callsctl", secretsDir: "/etc/callsctl")
            args += ["--cluster-node-id", node.id, "--cluster-public-url", node.publicURL]
            let argLines = args.map { "            - \(Render.yaml($0))" }.joined(separator: "\n")
            text += """
                ---
                apiVersion: apps/v1
                kind: Deployment
                metadata:
                  name: callsctl-\(node.id)
                  labels:
                    \(labels(4, node: node.id))
                spec:
                  # One pod, on the machine labelled \(nodeLabel)=\(node.id); Recreate: the old pod frees the media port first.
                  replicas: 1
                  strategy:
                    type: Recreate
                  selector:
                    matchLabels:
                      app.kubernetes.io/name: callsctl
                      \(nodeLabel): \(node.id)
                  template:
                    metadata:
                      labels:
                        \(labels(8, node: node.id))
                    spec:
                      hostNetwork: true
                      dnsPolicy: ClusterFirstWithHostNet
                      nodeSelector:
                        \(nodeLabel): \(node.id)
                      # Draining lets running calls end (serve's --drain-timeout is 30 s).
                      terminationGracePeriodSeconds: 60
                      securityContext:
                        runAsNonRoot: true
                        runAsUser: 10001
                        runAsGroup: 10001
                        fsGroup: 10001
                      containers:
                        - name: callsctl
                          image: \(Render.yaml(i.image))
                          # Node \(node.id): advertises \(node.address); redirected joins reconnect to \(node.publicURL).
                          args:
                \(argLines)
                          env:
                            - name: \(CallsctlGenerator.clusterEnvironmentVariable)
                              valueFrom:
                                secretKeyRef:
                                  name: callsctl-secrets
                                  key: \(databaseURLKey)
                \(containerTail(i))
                      volumes:
                        - name: secrets
                          secret:
                            secretName: callsctl-secrets
                            # Group-readable for fsGroup 10001 (serve warns about the group bit; the pod is the only reader).
                            defaultMode: 0440
                        # Channel settings live in the cluster's PostgreSQL; the data folder keeps local state only.
                        - name: data
                          emptyDir: {}

                """
        }
        text += """
            ---
            # Every node: the first WebSocket may land on any of them (no sticky sessions needed).
            \(apiService(i, labels: labels(4)))

            """
        for node in i.clusterNodes {
            text += """
                ---
                # Node \(node.id) alone: where joins redirected to \(node.publicURL) arrive.
                apiVersion: v1
                kind: Service
                metadata:
                  name: callsctl-\(node.id)
                  labels:
                    \(labels(4, node: node.id))
                spec:
                  type: ClusterIP
                  selector:
                    app.kubernetes.io/name: callsctl
                    \(nodeLabel): \(node.id)
                  ports:
                    - name: api
                      port: \(i.apiPort)
                      targetPort: api
                      protocol: TCP

                """
        }
        func rule(host: String, service: String) -> String {
            """
                - host: \(host)
                  http:
                    paths:
                      - path: /ws
                        pathType: Exact
                        backend:
                          service:
                            name: \(service)
                            port:
                              name: api
                      - path: /
                        pathType: Exact
                        backend:
                          service:
                            name: \(service)
                            port:
                              name: api
            """
        }
        let hosts = [i.domain] + i.clusterNodes.map(\.host)
        text += """
            ---
            # Published: the signaling WebSocket (/ws) and the test page (/), under \(i.domain) (any node) and under each
            # node's own name (that node). /api/v1/ and the rest of the API port stay private. TLS: a certificate for
            # every name below in the Secret callsctl-tls (e.g. from cert-manager); set ingressClassName if the cluster
            # has no default class. WebSockets stay open for a whole call: raise the controller's read timeout.
            apiVersion: networking.k8s.io/v1
            kind: Ingress
            metadata:
              name: callsctl
              labels:
                \(labels(4))
            spec:
              tls:
                - hosts:
            \(hosts.map { "        - \($0)" }.joined(separator: "\n"))
                  secretName: callsctl-tls
              rules:
            \(rule(host: i.domain, service: "callsctl-api"))
            \(i.clusterNodes.map { rule(host: $0.host, service: "callsctl-\($0.id)") }.joined(separator: "\n"))

            """
        return text
    }

    /// The address every pod advertises: one only for a single-replica Deployment; a DaemonSet or several
    /// replicas run on several nodes, each with its own address (learned by STUN).
    static func podOverride(_ i: DeploymentInputs) -> String? {
        i.kubernetesKind == .deployment && i.mediaNodes == 1 ? i.iceHostOverride : nil
    }

    /// The container's ports, probes, resources, security context and mounts, 10 spaces in: the same for a single
    /// node's Deployment and for each node's Deployment in the cluster form.
    static func containerTail(_ i: DeploymentInputs) -> String {
        let text = """
            ports:
              - name: rtc-udp
                containerPort: \(i.rtcPort)
                protocol: UDP
              - name: rtc-tcp
                containerPort: \(i.rtcPort)
                protocol: TCP
              - name: api
                containerPort: \(i.apiPort)
                protocol: TCP
            readinessProbe:
              httpGet:
                path: /readyz
                port: api
              periodSeconds: 5
              failureThreshold: 2
            livenessProbe:
              httpGet:
                path: /healthz
                port: api
              initialDelaySeconds: 5
              periodSeconds: 10
              failureThreshold: 3
            resources:
              requests:
                cpu: "1"
                memory: 256Mi
              limits:
                memory: 1Gi
            securityContext:
              allowPrivilegeEscalation: false
              readOnlyRootFilesystem: true
              capabilities:
                drop: ["ALL"]
            volumeMounts:
              - name: secrets
                mountPath: /etc/callsctl
                readOnly: true
              - name: data
                mountPath: /var/lib/callsctl
            """
        return text.split(separator: "\n", omittingEmptySubsequences: false).map { "          " + $0 }.joined(separator: "\n")
    }
    /// The Service in front of every pod's API port (the first WebSocket may land on any node), at the top level.
    static func apiService(_ i: DeploymentInputs, labels: String) -> String {
        """
            apiVersion: v1
            kind: Service
            metadata:
              name: callsctl-api
              labels:
                \(labels)
            spec:
              type: ClusterIP
              selector:
                app.kubernetes.io/name: callsctl
              ports:
                - name: api
                  port: \(i.apiPort)
                  targetPort: api
                  protocol: TCP
            """
    }
}

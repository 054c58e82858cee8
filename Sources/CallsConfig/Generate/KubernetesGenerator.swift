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
            apiVersion: v1
            kind: Service
            metadata:
              name: callsctl-api
              labels:
                \(labels(4))
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
        return [
            GeneratedFile(path: "kubernetes/callsctl.yaml", contents: manifest, mode: 0o600, description: "Secret, \(kind) and API Service for callsctl serve (kubectl apply -f)"),
            GeneratedFile(path: "kubernetes/rtcd-values.yaml", contents: values, mode: 0o600, description: "Helm values for mattermost/mattermost-rtcd"),
        ]
    }

    /// The address every pod advertises: one only for a single-replica Deployment; a DaemonSet or several
    /// replicas run on several nodes, each with its own address (learned by STUN).
    static func podOverride(_ i: DeploymentInputs) -> String? {
        i.kubernetesKind == .deployment && i.mediaNodes == 1 ? i.iceHostOverride : nil
    }
}

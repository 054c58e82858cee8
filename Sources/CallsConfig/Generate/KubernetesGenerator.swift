import Foundation

/// Kubernetes: manifests for `callsctl serve` (Secret, Deployment or DaemonSet on the host network,
/// API Service) and Helm values for Mattermost's `mattermost-rtcd` chart, with the same settings.
enum KubernetesGenerator {
    static func files(_ i: DeploymentInputs) -> [GeneratedFile] {
        /// The labels of a mapping at `indent` spaces; the first line's indent is the caller's.
        func labels(_ indent: Int) -> String {
            "app.kubernetes.io/name: callsctl\n\(String(repeating: " ", count: indent))app.kubernetes.io/instance: calls"
        }
        let args = SystemdGenerator.serveArguments(i, dataDir: "/var/lib/callsctl", secretsDir: "/etc/callsctl")
            .map { "            - \(Render.yaml($0))" }.joined(separator: "\n")
        let kind = i.kubernetesKind == .daemonset ? "DaemonSet" : "Deployment"
        let scaling = i.kubernetesKind == .daemonset
            ? "  updateStrategy:\n    type: RollingUpdate\n    rollingUpdate:\n      maxUnavailable: 1\n"
            : "  # Host networking: one pod per node (the media port is the node's); scale by adding nodes.\n  replicas: 1\n  strategy:\n    type: Recreate\n"
        let manifest = """
            # callsctl serve for \(i.domain) on Kubernetes. \(Render.header).
            # Apply with: kubectl apply -f callsctl.yaml   (holds the secrets: keep it mode 0600)
            # Media (\(i.rtcPort) UDP+TCP) is served on the node's own address (host network): open it in
            # the node's firewall and point \(i.domain) / the ICE host override at the node.
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
                  terminationGracePeriodSeconds: 60
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
        var values = """
            # Values for Mattermost's rtcd Helm chart (helm repo add mattermost https://helm.mattermost.com),
            # with the same ports, override and TURN secret as the rest of this deployment. \(Render.header).
            # Install: helm install rtcd mattermost/mattermost-rtcd -f rtcd-values.yaml  (holds the TURN secret)
            deploymentType: \(i.kubernetesKind.rawValue)
            networking:
              hostNetwork: true
              useHostPort: true
            service:
              APIport: \(i.apiPort)
              RTCport: \(i.rtcPort)
            configuration:
              environmentVariables:

            """
        for (name, value) in RTCDGenerator.environment(i) { values += "    \(name): \(Render.yaml(value))\n" }
        return [
            GeneratedFile(path: "kubernetes/callsctl.yaml", contents: manifest, mode: 0o600, description: "Secret, \(kind) and API Service for callsctl serve (kubectl apply -f)"),
            GeneratedFile(path: "kubernetes/rtcd-values.yaml", contents: values, mode: 0o600, description: "Helm values for mattermost/mattermost-rtcd"),
        ]
    }
}

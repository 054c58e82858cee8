/// STUN, TURN, NAT and port probes (clients that talk to real servers).
public enum ProbesModule {
    public static let name = "Probes"
}

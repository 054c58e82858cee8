/// The HTTP/WebSocket side of `callsctl serve`: signaling, admin API, health and metrics on 8045.
public enum CallsServerModule {
    public static let name = "CallsServer"
}

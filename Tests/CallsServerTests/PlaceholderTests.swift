import CallsServer
import Testing

@Test func moduleLinks() { #expect(CallsServerModule.name == "CallsServer") }

import Testing

@testable import CallsConfig

@Test func moduleLinks() {
    #expect(String(describing: CallsConfigModule.self) == "CallsConfigModule")
}

// libFuzzer entry point for CallsWire. Built with `-sanitize=fuzzer,address -parse-as-library`
// (libFuzzer supplies `main`). Besides "never crash", it checks invariants that a decoder bug would
// break: decode → encode → decode is the identity on the model, anything we sign verifies, and framers
// only return frames that fit in their input.
import CLibFuzzerDriver
import CallsWire
import NIOCore

/// The process entry point. SwiftPM links executables with `--defsym main=CallsWireFuzz_main` and
/// `-parse-as-library` means Swift emits no main of its own, so this symbol must exist; it hands
/// control to libFuzzer's driver, which parses the usual libFuzzer flags.
@_cdecl("CallsWireFuzz_main")
public func fuzzMain(
    _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        guard let data else { return 0 }
        return fuzzOneInput(data, size)
    }
}

private let key = STUNKey.shortTerm(password: "VOkJxbRl1RmTxUk/WvJxBt")

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let buffer = ByteBuffer(bytes: bytes)

    _ = PacketClass.classify(buffer)
    _ = STUNMessage.isProbablySTUN(buffer)

    if let message = try? STUNMessage(decoding: buffer) {
        _ = message.verify(key: key)
        _ = (message.xorMappedAddress, message.errorCode, message.username, message.realm, message.nonce)
        _ = (message.passwordAlgorithms, message.unknownComprehensionRequiredAttributes, message.description)
        if let reencoded = try? message.encoded() {
            guard let again = try? STUNMessage(decoding: reencoded) else { fatalError("re-encoded message does not decode") }
            guard again == message else { fatalError("decode(encode(m)) != m: \(message) vs \(again)") }
        }
        var clean = message
        clean.attributes.removeAll { [.messageIntegrity, .messageIntegritySHA256, .fingerprint].contains($0.type) }
        if let signed = try? clean.encoded(integrity: .both(key), fingerprint: true) {
            guard let check = try? STUNMessage(decoding: signed).verify(key: key),
                check.isAuthenticated, check.fingerprint == .passed
            else { fatalError("a message we signed does not verify") }
        }
    }

    if let channelData = try? TURNChannelData(decoding: buffer) {
        guard let encoded = try? channelData.encoded(), encoded.count <= size,
            (try? TURNChannelData(decoding: encoded)) == channelData
        else { fatalError("ChannelData round trip failed") }
    }

    // Stream framers: feed in two chunks to exercise partial input.
    let cut = size / 2
    var framer = RFC4571Framer(maxFrameSize: 1500)
    var splitter = STUNStreamSplitter(maxMessageSize: 1500)
    framer.append(contentsOf: bytes[..<cut])
    splitter.append(contentsOf: bytes[..<cut])
    var framed = 0
    while let frame = try? framer.nextFrame() { framed += 2 + frame.readableBytes }
    while let frame = try? splitter.nextFrame() {
        if case .stun(let b) = frame { _ = try? STUNMessage(decoding: b) }
        if case .channelData(let b) = frame { _ = try? TURNChannelData(decoding: b) }
    }
    framer.append(contentsOf: bytes[cut...])
    splitter.append(contentsOf: bytes[cut...])
    while let frame = try? framer.nextFrame() { framed += 2 + frame.readableBytes }
    while let frame = try? splitter.nextFrame() {
        if case .stun(let b) = frame { _ = try? STUNMessage(decoding: b) }
        if case .channelData(let b) = frame { _ = try? TURNChannelData(decoding: b) }
    }
    if framed > size { fatalError("RFC 4571 framer returned more bytes than it was given") }

    // Address text parsing: whatever parses must print and re-parse to the same value.
    if size <= 64, let address = STUNAddress(String(decoding: bytes, as: UTF8.self)) {
        guard STUNAddress(address.description) == address else { fatalError("address text round trip: \(address)") }
    }
    return 0
}

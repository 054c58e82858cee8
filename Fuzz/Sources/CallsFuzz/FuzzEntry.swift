// libFuzzer entry point for every decoder that takes outside input. One executable, one target per run, chosen
// by the FUZZ_TARGET environment variable (see `FuzzTarget`), so each decoder has its own corpus, coverage and
// execution count. Built with `-sanitize=fuzzer[,address] -parse-as-library` (libFuzzer supplies the driver).
// Besides "never crash", each target checks invariants a decoder bug would break: round trips where the code has
// an encoder, lengths within the input, and consistency between the ways the server reads the same bytes.
import CLibFuzzerDriver

#if canImport(Glibc)
    import Glibc
#endif

enum FuzzTarget: String, CaseIterable {
    case stun, rtp, rtcp, sdp, json, token, http, toml, rfc4571, dtls

    func run(_ bytes: UnsafeBufferPointer<UInt8>) {
        switch self {
        case .stun: WireFuzz.stun(bytes)
        case .rtp: WireFuzz.rtp(bytes)
        case .rtcp: WireFuzz.rtcp(bytes)
        case .sdp: WireFuzz.sdp(bytes)
        case .json: ServerDecoderFuzz.json(bytes)
        case .token: ServerDecoderFuzz.token(bytes)
        case .http: HTTPFuzz.run(bytes)
        case .toml: TOMLFuzz.run(bytes)
        case .rfc4571: WireFuzz.rfc4571(bytes)
        case .dtls: WireFuzz.dtls(bytes)
        }
    }
}

import CallsConfigTOML
import CallsServerDecoders

nonisolated(unsafe) private var selected: FuzzTarget = .stun

/// The process entry point. SwiftPM links executables with `--defsym main=CallsFuzz_main` and
/// `-parse-as-library` means Swift emits no main of its own, so this symbol must exist; it hands
/// control to libFuzzer's driver, which parses the usual libFuzzer flags.
@_cdecl("CallsFuzz_main")
public func fuzzMain(
    _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> CInt {
    let name = getenv("FUZZ_TARGET").map { String(cString: $0) } ?? ""
    guard let target = FuzzTarget(rawValue: name) else {
        let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: " ")
        print("CallsFuzz: set FUZZ_TARGET to one of: \(names)")
        return 2
    }
    selected = target
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzOneInput(data, size) }
}

/// libFuzzer's own main (unused: see above) refers to this symbol, so it must exist; it runs the selected target.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    selected.run(UnsafeBufferPointer(start: data, count: size))
    return 0
}

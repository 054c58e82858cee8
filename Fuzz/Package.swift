// swift-tools-version:6.1
// A separate package so the fuzzer's sanitizer flags never touch the main build.
// The decoder sources are symlinks to the main package's files: the fuzzer always tests the real code.
//   Sources/CallsWire            -> ../../Sources/CallsWire (whole module: STUN/TURN, RTP/RTCP, SDP, RFC 4571, demux)
//   Sources/CallsStore           -> ChannelID.swift only (what JoinToken.swift imports CallsStore for)
//   Sources/CallsServerDecoders  -> JSONLite.swift, JoinToken.swift, UntrustedText.swift, SignalingMessages.swift,
//                                   WebSocketUpgradePolicy.swift (+ public fuzz hooks)
//   Sources/CallsConfigTOML      -> TOMLParser.swift, TOMLTypes.swift (+ public fuzz hooks)
//   Sources/CallsMediaDTLS       -> DTLSTypes.swift, SRTPProtectionProfile.swift (+ a stand-in DTLSError, since
//                                   the real one imports the system OpenSSL; + public fuzz hooks)
// The rest of CallsServer/CallsMedia (OpenSSL, libsrtp, the whole server) is not built here.
// Build and run with ../scripts/fuzz.sh.
import PackageDescription

let settings: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]

let package = Package(
    name: "CallsFuzz",
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        .target(
            name: "CallsWire",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: settings
        ),
        .target(name: "CallsStore", swiftSettings: settings),
        .target(
            name: "CallsServerDecoders",
            dependencies: [
                "CallsStore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: settings
        ),
        .target(name: "CallsConfigTOML", swiftSettings: settings),
        .target(name: "CallsMediaDTLS", swiftSettings: settings),
        .target(name: "CLibFuzzerDriver"),
        .executableTarget(
            name: "CallsFuzz",
            dependencies: [
                "CallsWire", "CallsServerDecoders", "CallsConfigTOML", "CallsMediaDTLS", "CLibFuzzerDriver",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            swiftSettings: settings
        ),
    ],
    swiftLanguageModes: [.v6]
)

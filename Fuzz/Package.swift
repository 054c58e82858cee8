// swift-tools-version:6.1
// A separate package so the fuzzer's sanitizer flags never touch the main build.
// `Sources/CallsWire` is a symlink to the main package's sources: the fuzzer always tests the real code.
// Build and run with ../scripts/fuzz-wire.sh.
import PackageDescription

let package = Package(
    name: "CallsWireFuzz",
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        .target(
            name: "CallsWire",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: [.enableUpcomingFeature("ExistentialAny")]
        ),
        .target(name: "CLibFuzzerDriver"),
        .executableTarget(
            name: "CallsWireFuzz",
            dependencies: ["CallsWire", "CLibFuzzerDriver", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: [.enableUpcomingFeature("ExistentialAny")]
        ),
    ],
    swiftLanguageModes: [.v6]
)

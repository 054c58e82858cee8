// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "callsctl",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "callsctl", targets: ["callsctl"]),
        .executable(name: "callsctl-bench", targets: ["CallsBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // Clusters keep their shared state in the PostgreSQL that Mattermost already runs.
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        .executableTarget(
            name: "callsctl",
            dependencies: [
                "CallsStore", "CallsWire", "CallsMedia", "Probes", "CallsServer", "CallsConfig", "Doctor", "LoadTest",
                "CallsCluster",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CallsStore",
            dependencies: [.product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),
        .target(name: "CallsConfig", swiftSettings: swiftSettings),
        // Several serve nodes on one PostgreSQL: channel settings, the node registry and call placement.
        .target(
            name: "CallsCluster",
            dependencies: [
                "CallsStore", "CallsServer",
                "CallsConfig",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "LoadTest",
            dependencies: [
                "Probes", "CallsMedia", "CallsServer", "CallsStore", "CallsWire",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Doctor",
            dependencies: [
                "Probes", "CallsMedia", "CallsServer", "CallsStore", "CallsWire", "CallsConfig",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CallsWire",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CallsMedia",
            dependencies: [
                "CallsWire", "CCallsOpenSSL", "CCallsSRTP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CallsServer",
            dependencies: [
                "CallsMedia", "CallsStore", "CallsWire", "Probes",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            resources: [.copy("Resources")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Probes",
            dependencies: [
                "CallsWire", "CCallsOpenSSL",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CCallsOpenSSL",
            linkerSettings: [.linkedLibrary("ssl"), .linkedLibrary("crypto")]
        ),
        .target(
            name: "CCallsSRTP",
            linkerSettings: [.linkedLibrary("srtp2")]
        ),
        .executableTarget(
            name: "CallsBench",
            dependencies: [
                "CallsStore", "CallsWire", "CallsMedia", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"), .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Shared by the test targets: waits with one generous bound that say, when they give up, whether the
        // process was starved (Tests/CallsTestSupport).
        .target(
            name: "CallsTestSupport", dependencies: ["CallsWire", .product(name: "Logging", package: "swift-log")],
            path: "Tests/CallsTestSupport", swiftSettings: swiftSettings),
        .testTarget(
            name: "callsctlTests",
            dependencies: ["callsctl", "CallsStore", "CallsTestSupport", "LoadTest", "CallsMedia"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CallsConfigTests", dependencies: ["CallsConfig", "CallsTestSupport"], resources: [.copy("Golden")],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "CallsStoreTests",
            dependencies: [
                "CallsStore", "CallsCluster", "CallsConfig", "CallsTestSupport", .product(name: "Logging", package: "swift-log"),
            ], swiftSettings: swiftSettings),
        .testTarget(
            name: "CallsWireTests",
            dependencies: ["CallsWire", "CallsTestSupport"],
            resources: [.copy("Fixtures")],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "CallsMediaTests", dependencies: ["CallsMedia", "CallsTestSupport", "Probes"], swiftSettings: swiftSettings),
        .testTarget(
            name: "CallsServerTests", dependencies: ["CallsServer", "CallsMedia", "CallsWire", "CallsTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "DoctorTests", dependencies: ["Doctor", "CallsTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "ProbesTests", dependencies: ["Probes", "CallsWire", "CallsTestSupport"], swiftSettings: swiftSettings),
    ],
    swiftLanguageModes: [.v6]
)

// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Freshet",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "migrate", targets: ["migrate"]),
        .executable(name: "freshet-server", targets: ["freshet-server"]),
        .library(name: "Freshet", targets: ["Freshet"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.0"),
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.7.1"),
    ],
    targets: [
        // libpq's header, and forwards that load libpq.so.5 on first use instead of at process start.
        .target(name: "CLibPQ"),
        .target(
            name: "Freshet",
            dependencies: [
                "CLibPQ",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .executableTarget(
            name: "migrate",
            dependencies: [
                "Freshet",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The live half: HTTP, health, metrics and the services that run beside the database.
        .target(
            name: "FreshetServer",
            dependencies: [
                "Freshet",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "JWTKit", package: "jwt-kit"),
            ]
        ),
        .executableTarget(
            name: "freshet-server",
            dependencies: [
                "FreshetServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .target(
            name: "FreshetTestSupport",
            dependencies: ["Freshet"],
            path: "Tests/FreshetTestSupport"
        ),
        .testTarget(
            name: "FreshetTests",
            dependencies: ["Freshet", "FreshetTestSupport"]
        ),
        .testTarget(
            name: "FreshetIntegrationTests",
            dependencies: [
                "Freshet", "FreshetServer", "FreshetTestSupport",
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)

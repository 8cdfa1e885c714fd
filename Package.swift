// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Freshet",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "migrate", targets: ["migrate"]),
        .library(name: "Freshet", targets: ["Freshet"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
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
            dependencies: ["Freshet", "FreshetTestSupport"]
        ),
    ],
    swiftLanguageModes: [.v6]
)

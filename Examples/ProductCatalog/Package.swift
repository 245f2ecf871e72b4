// swift-tools-version:6.0
// A service that uses Concord as any outside package would: by its products, through its public
// API only. scripts/test.sh builds it and runs it as two processes against one redis-server.
// A published release is depended on with `.package(url:from:)`; this checks the working tree.
import PackageDescription

let package = Package(
    name: "ProductCatalog",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Concord", path: "../.."),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
    ],
    targets: [
        .executableTarget(
            name: "ProductCatalog",
            dependencies: [
                .product(name: "Concord", package: "Concord"),
                .product(name: "ConcordRedis", package: "Concord"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
    ]
)

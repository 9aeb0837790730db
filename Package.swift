// swift-tools-version:6.1
// sevvm: a VM manager for AMD SEV, SEV-ES and SEV-SNP confidential guests.
import PackageDescription

let package = Package(
    name: "sevvm",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "sevvm", targets: ["sevvm"]),
        .library(name: "QMP", targets: ["QMP"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
    ],
    targets: [
        // C shims: json-c (system library) and the few syscalls Swift cannot express well.
        .systemLibrary(name: "CJSONC", pkgConfig: "json-c", providers: [.apt(["libjson-c-dev"])]),
        .target(name: "CShims"),

        // Shared plumbing: atomic files, locks, processes, terminal styling.
        .target(name: "Support", dependencies: ["CShims"]),

        // The QMP protocol on json-c.
        .target(name: "QMP", dependencies: ["CJSONC", "CShims", "Support"]),

        // Domain targets.
        .target(name: "Firmware", dependencies: ["Support"]),
        .target(name: "HostProbe", dependencies: ["QMP", "Firmware", "CShims", "Support"]),
        .target(name: "Definitions", dependencies: ["QMP", "Support"]),
        .target(name: "Measure", dependencies: ["Firmware", "Support", "CShims", .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "Launch", dependencies: ["Definitions", "HostProbe", "Support"]),
        .target(name: "Runtime", dependencies: ["Launch", "Definitions", "HostProbe", "Measure", "QMP", "Support", "CShims"]),
        .target(name: "Builder", dependencies: ["Support"]),

        // The command-line front end: parse, call, print.
        .executableTarget(
            name: "sevvm",
            dependencies: [
                "QMP", "HostProbe", "Definitions", "Launch", "Runtime", "Builder", "Measure", "Firmware", "Support",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            // lld packs the ~85,000 relative relocations of a static-stdlib binary into a few KB
            // (DT_RELR, glibc >= 2.36) instead of 2 MB the loader reads on every start.
            linkerSettings: [
                .unsafeFlags(["-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs"], .when(platforms: [.linux]))
            ]
        ),

        // Benchmarks that need in-process timing (whole-command benchmarks are scripts in Benchmarks/).
        .executableTarget(name: "qmp-bench", dependencies: ["QMP", "CJSONC", "Support"], path: "Benchmarks/qmp-bench"),

        .testTarget(name: "SupportTests", dependencies: ["Support"]),
        .testTarget(name: "QMPTests", dependencies: ["QMP", "Support"], resources: [.copy("Fixtures")]),
        .testTarget(name: "HostProbeTests", dependencies: ["HostProbe", "QMP", "Support"], resources: [.copy("Fixtures")]),
        .testTarget(name: "DefinitionsTests", dependencies: ["Definitions", "Support"]),
        .testTarget(
            name: "LaunchTests", dependencies: ["Launch", "Definitions", "HostProbe", "QMP", "Support"], resources: [.copy("Fixtures")]),
        .testTarget(name: "RuntimeTests", dependencies: ["Runtime", "Launch", "Definitions", "HostProbe", "QMP", "Support"]),
        .testTarget(name: "BuilderTests", dependencies: ["Builder", "Support"], exclude: ["Fixtures"]),
        .testTarget(name: "FirmwareTests", dependencies: ["Firmware", "Support"]),
        .testTarget(name: "MeasureTests", dependencies: ["Measure", "Firmware", "Support"], resources: [.copy("Fixtures")]),
        .testTarget(name: "CLITests", dependencies: ["Support", "sevvm"]),
    ]
)

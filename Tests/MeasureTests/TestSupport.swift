// Shared helpers for MeasureTests: fixture paths, the package root, and the sev-snp-measure oracle.
import Foundation
import Testing

enum Fixtures {
    /// A file from Tests/MeasureTests/Fixtures (copied into the test bundle).
    static func path(_ name: String) throws -> String {
        let folder = try #require(Bundle.module.resourceURL).appendingPathComponent("Fixtures")
        let path = folder.appendingPathComponent(name).path
        try #require(FileManager.default.fileExists(atPath: path), "missing fixture \(name)")
        return path
    }
}

enum PackageRoot {
    /// The repository root: this file is <root>/Tests/MeasureTests/TestSupport.swift.
    static let path: String = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
}

/// The real sev-snp-measure: <root>/.venv-tools/bin (scripts/setup.sh --test-tools) or PATH.
enum Oracle {
    static let executable: String? = {
        let local = PackageRoot.path + "/.venv-tools/bin/sev-snp-measure"
        if FileManager.default.isExecutableFile(atPath: local) { return local }
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(directory)/sev-snp-measure"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }()

    static var available: Bool {
        if executable == nil {
            print("SKIPPED: sev-snp-measure not found in .venv-tools/bin or PATH; run scripts/setup.sh --test-tools")
        }
        return executable != nil
    }
}

/// A real Debian kernel and initrd: images/tiny (scripts/tiny-guest.sh) or the host's /boot.
enum GuestKernel {
    static let files: (kernel: String, initrd: String)? = {
        let tiny = PackageRoot.path + "/images/tiny"
        let manager = FileManager.default
        if manager.fileExists(atPath: tiny + "/vmlinuz"), manager.fileExists(atPath: tiny + "/initrd.img") {
            return (tiny + "/vmlinuz", tiny + "/initrd.img")
        }
        let boot = (try? manager.contentsOfDirectory(atPath: "/boot")) ?? []
        if let kernel = boot.filter({ $0.hasPrefix("vmlinuz-") }).sorted().last {
            let version = kernel.dropFirst("vmlinuz-".count)
            if boot.contains("initrd.img-\(version)"), manager.isReadableFile(atPath: "/boot/\(kernel)") {
                return ("/boot/\(kernel)", "/boot/initrd.img-\(version)")
            }
        }
        return nil
    }()

    static var available: Bool {
        if files == nil {
            print("SKIPPED: no real kernel + initrd (run scripts/tiny-guest.sh images/tiny, or install a kernel in /boot)")
        }
        return files != nil
    }
}

/// A fresh private temporary folder, removed by the caller's defer.
func makeTemporaryDirectory() throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("sevvm-measure-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

// The programs and headers each component's build needs, and the Debian packages that provide them.
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

public struct ToolRequirement: Sendable, Equatable, Hashable {
    public enum Kind: Sendable, Hashable { case program, header }
    public var name: String
    public var kind: Kind
    /// The Debian package providing it (what --install-deps installs).
    public var package: String

    static func program(_ name: String, _ package: String) -> ToolRequirement { .init(name: name, kind: .program, package: package) }
    static func header(_ name: String, _ package: String) -> ToolRequirement { .init(name: name, kind: .header, package: package) }
}

public enum ToolCheck {
    public static func requirements(for component: Component, packageFormat: PackageFormat) -> [ToolRequirement] {
        let common: [ToolRequirement] = [.program("git", "git"), .program("make", "make"), .program("gcc", "gcc")]
        switch component {
        case .qemu:
            return common + [
                .program("ninja", "ninja-build"), .program("python3", "python3"), .program("pkg-config", "pkg-config"),
                .header("glib-2.0/glib.h", "libglib2.0-dev"), .header("pixman-1/pixman.h", "libpixman-1-dev"),
            ]
        case .ovmf:
            return common + [
                .program("g++", "g++"), .program("nasm", "nasm"), .program("iasl", "acpica-tools"),
                .program("python3", "python3"), .header("uuid/uuid.h", "uuid-dev"),
            ]
        case .kernelHost, .kernelGuest:
            let packaging: [ToolRequirement] =
                packageFormat == .deb
                ? [.program("dpkg-buildpackage", "dpkg-dev"), .program("rsync", "rsync")] : [.program("rpmbuild", "rpm")]
            return common + packaging + [
                .program("flex", "flex"), .program("bison", "bison"), .program("bc", "bc"), .program("cpio", "cpio"),
                .header("openssl/ssl.h", "libssl-dev"), .header("libelf.h", "libelf-dev"),
            ]
        }
    }

    /// What is missing for `components`, looking up programs on the environment's PATH and headers
    /// in C_INCLUDE_PATH and the system include folders.
    public static func missing(for components: [Component], packageFormat: PackageFormat, environment: [String: String])
        -> [ToolRequirement]
    {
        var seen = Set<ToolRequirement>()
        var missing: [ToolRequirement] = []
        let includes =
            (environment["C_INCLUDE_PATH"] ?? "").split(separator: ":").map(String.init)
            + ["/usr/include", "/usr/include/x86_64-linux-gnu", "/usr/local/include"]
        for requirement in components.flatMap({ requirements(for: $0, packageFormat: packageFormat) })
        where seen.insert(requirement).inserted {
            let found: Bool
            switch requirement.kind {
            case .program: found = ProcessRunner.which(requirement.name, path: environment["PATH"]) != nil
            case .header: found = includes.contains { FileManager.default.fileExists(atPath: "\($0)/\(requirement.name)") }
            }
            if !found { missing.append(requirement) }
        }
        return missing
    }
}

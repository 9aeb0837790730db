// Facts about the build machine that decide commands and inputs: distribution, running kernel, toolchain.
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

public enum PackageFormat: String, Sendable, Codable, CaseIterable {
    case deb, rpm

    /// The kernel's make target producing this format.
    public var kernelTarget: String { self == .deb ? "bindeb-pkg" : "binrpm-pkg" }
}

/// A distribution as /etc/os-release names it.
public struct Distribution: Sendable, Equatable, Codable {
    public var id: String
    public var like: [String]
    public var prettyName: String

    public init(id: String, like: [String] = [], prettyName: String? = nil) {
        self.id = id
        self.like = like
        self.prettyName = prettyName ?? id
    }

    /// Reads `<root>/etc/os-release` (falling back to usr/lib/os-release); unknown when absent.
    public static func read(root: String = "/") -> Distribution {
        let base = root == "/" ? "" : root
        let text =
            ["/etc/os-release", "/usr/lib/os-release"].lazy
            .compactMap { FileManager.default.contents(atPath: base + $0) }.first
            .map { String(decoding: $0, as: UTF8.self) } ?? ""
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            let value = line[line.index(after: equals)...].trimming { $0 == "\"" || $0 == "'" || $0 == " " }
            fields[String(line[..<equals])] = value
        }
        return Distribution(
            id: fields["ID"] ?? "unknown", like: (fields["ID_LIKE"] ?? "").split(separator: " ").map(String.init),
            prettyName: fields["PRETTY_NAME"])
    }

    /// deb for Debian and Ubuntu, rpm for the Fedora and SUSE families, nil otherwise.
    public var packageFormat: PackageFormat? {
        let names = [id] + like
        if names.contains(where: { ["debian", "ubuntu"].contains($0) }) { return .deb }
        if names.contains(where: { ["fedora", "rhel", "centos", "suse", "opensuse", "rocky", "almalinux"].contains($0) }) {
            return .rpm
        }
        return nil
    }
}

public struct BuildHost: Sendable, Equatable {
    public var distribution: Distribution
    /// `uname -r` of the running kernel (its /boot/config-* is the default kernel config).
    public var kernelRelease: String
    /// First line of `cc --version`: part of every component's inputs, so a compiler upgrade rebuilds.
    public var toolchain: String

    public init(distribution: Distribution, kernelRelease: String, toolchain: String) {
        self.distribution = distribution
        self.kernelRelease = kernelRelease
        self.toolchain = toolchain
    }

    public static func probe(environment: [String: String]) -> BuildHost {
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: &name.release) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        let compiler = environment["CC"].flatMap { $0.isEmpty ? nil : $0 } ?? "cc"
        let version = (try? ProcessRunner.run([compiler, "--version"], environment: environment))
            .flatMap { $0.succeeded ? $0.stdoutText.split(separator: "\n").first.map(String.init) : nil }
        return BuildHost(distribution: .read(), kernelRelease: release, toolchain: version ?? "no C compiler (\(compiler))")
    }

    public var defaultKernelConfig: String { "/boot/config-\(kernelRelease)" }
}

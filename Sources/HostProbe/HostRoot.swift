// Reads of the host's file system under a root folder, so tests can point every probe at a fixture tree.
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// The root under which sysfs, /proc, /dev, /lib/firmware and /etc are read ("/" on a real host).
public struct HostRoot: Sendable, Equatable {
    public let path: String

    public init(_ path: String = "/") {
        self.path = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
    }

    /// True when probing the machine itself rather than a fixture tree.
    public var isLive: Bool { path == "/" }

    /// `absolute` (e.g. "/sys/module/kvm_amd") as seen under this root.
    public func resolve(_ absolute: String) -> String {
        isLive ? absolute : path + absolute
    }

    public func exists(_ absolute: String) -> Bool {
        FileManager.default.fileExists(atPath: resolve(absolute))
    }

    /// The file's text without its trailing newline, or nil when missing or unreadable.
    public func text(_ absolute: String) -> String? {
        guard let data = FileManager.default.contents(atPath: resolve(absolute)) else { return nil }
        var text = String(decoding: data, as: UTF8.self)
        while text.hasSuffix("\n") { text.removeLast() }
        return text
    }

    /// Names in a folder, sorted; empty when the folder is missing.
    public func list(_ absolute: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: resolve(absolute))) ?? []).sorted()
    }

    /// A sysfs boolean module parameter: `Y`/`1` true, `N`/`0` false, nil when absent.
    public func flag(_ absolute: String) -> Bool? {
        guard let value = text(absolute)?.trimmingSpaces else { return nil }
        switch value {
        case "Y", "y", "1": return true
        case "N", "n", "0": return false
        default: return nil
        }
    }
}

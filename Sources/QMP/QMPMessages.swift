// The QMP messages a client receives besides replies: the greeting and asynchronous events.
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

public struct QMPGreeting: Sendable {
    public var version: QEMUVersion
    /// The distribution's package string, e.g. "Debian 1:10.0.2+ds-1" (may be empty).
    public var package: String
    /// Capabilities the server offers (e.g. "oob"); sevvm enables none of them.
    public var capabilities: [String]

    public init(version: QEMUVersion, package: String, capabilities: [String]) {
        self.version = version
        self.package = package
        self.capabilities = capabilities
    }

    /// Reads `{"QMP": {"version": {"qemu": {...}, "package": ...}, "capabilities": [...]}}`.
    init?(message: JSONDocument) {
        guard let qmp = message["QMP"], let qemu = qmp["version"]?["qemu"],
            let major = qemu["major"]?.int, let minor = qemu["minor"]?.int, let micro = qemu["micro"]?.int
        else { return nil }
        version = QEMUVersion(major: Int(major), minor: Int(minor), micro: Int(micro))
        package = qmp["version"]?["package"]?.string ?? ""
        capabilities = qmp["capabilities"]?.elements?.compactMap(\.string) ?? []
    }
}

public struct QMPEvent: Sendable {
    public var name: String
    public var data: JSONDocument?
    /// QEMU's own timestamp for the event (the time of receipt when QEMU gave none).
    public var timestamp: Date
    /// The event line exactly as received (without the line separator).
    public var json: String

    public init(name: String, data: JSONDocument?, timestamp: Date, json: String) {
        self.name = name
        self.data = data
        self.timestamp = timestamp
        self.json = json
    }

    init(message: JSONDocument, name: String, json: String) {
        self.name = name
        data = message["data"]
        if let stamp = message["timestamp"], let seconds = stamp["seconds"]?.int, let micro = stamp["microseconds"]?.int {
            timestamp = Date(timeIntervalSince1970: Double(seconds) + Double(micro) / 1_000_000)
        } else {
            timestamp = Date()
        }
        self.json = json
    }
}

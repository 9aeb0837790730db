// state.json: what sevvm started (exact argv, QEMU version, firmware) and, once QEMU is gone, how it ended.
import FoundationEssentials
import QMP
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// The runtime facts of one run of a VM, saved in run/NAME/state.json.
public struct RuntimeRecord: Codable, Sendable, Equatable {
    public var schemaVersion = 1
    public var name: String
    /// The exact argv QEMU was started with (relative socket paths: QEMU's working directory is the folder).
    public var argv: [String]
    public var qemuPath: String
    public var qemuVersion: String
    public var firmwarePath: String?
    public var mode: GuestMode
    public var accel: String
    public var startedAt: Date
    public var pid: Int32?
    public var recorderPid: Int32?
    /// The launch digest a verifier should expect (hex), computed at start for encrypted guests.
    public var expectedDigest: String?
    /// Why `expectedDigest` is missing for an encrypted guest (e.g. firmware without SEV metadata).
    public var expectedDigestNote: String?
    /// SEV / SEV-ES only: the launch measurement the PSP returned (`query-sev-launch-measure`, base64).
    public var launchMeasurement: String?
    public var warnings: [String]
    /// Set once QEMU has ended: how and why.
    public var exit: ExitRecord?

    public init(
        name: String, argv: [String], qemuPath: String, qemuVersion: String, firmwarePath: String?,
        mode: GuestMode, accel: String, startedAt: Date, warnings: [String]
    ) {
        self.name = name
        self.argv = argv
        self.qemuPath = qemuPath
        self.qemuVersion = qemuVersion
        self.firmwarePath = firmwarePath
        self.mode = mode
        self.accel = accel
        self.startedAt = startedAt
        self.warnings = warnings
    }

    /// The record in `path`; nil when it is missing or not a state.json sevvm wrote.
    ///
    /// Read with json-c rather than JSONDecoder: `status` reads this on every call, and
    /// JSONDecoder's first use in a process (generic metadata for every Codable type it meets)
    /// was half a millisecond of a 10 ms command. `save` still writes with JSONEncoder; tests
    /// check that a record reads back equal, with and without an exit record.
    public static func load(_ path: String) -> RuntimeRecord? {
        guard let data = FileManager.default.contents(atPath: path),
            let json = try? JSONDocument(parsing: String(decoding: data, as: UTF8.self))
        else { return nil }
        return RuntimeRecord(json: json)
    }

    init?(json: JSONDocument) {
        guard let name = json["name"]?.string, let argvValues = json["argv"]?.elements, let qemuPath = json["qemuPath"]?.string,
            let qemuVersion = json["qemuVersion"]?.string, let mode = json["mode"]?.string.flatMap(GuestMode.init(rawValue:)),
            let accel = json["accel"]?.string, let startedAt = json["startedAt"]?.string.flatMap(Timestamp.parse)
        else { return nil }
        let argv = argvValues.compactMap(\.string)
        guard argv.count == argvValues.count else { return nil }
        self.init(
            name: name, argv: argv, qemuPath: qemuPath, qemuVersion: qemuVersion, firmwarePath: json["firmwarePath"]?.string, mode: mode,
            accel: accel, startedAt: startedAt, warnings: [])
        if let version = json["schemaVersion"]?.int { schemaVersion = Int(version) }
        pid = json["pid"]?.int.flatMap { Int32(exactly: $0) }
        recorderPid = json["recorderPid"]?.int.flatMap { Int32(exactly: $0) }
        expectedDigest = json["expectedDigest"]?.string
        expectedDigestNote = json["expectedDigestNote"]?.string
        launchMeasurement = json["launchMeasurement"]?.string
        if let items = json["warnings"]?.elements { warnings = items.compactMap(\.string) }
        if let exitJSON = json["exit"], !exitJSON.isNull {
            guard let kind = exitJSON["kind"]?.string.flatMap(ExitRecord.Kind.init(rawValue:)), let reason = exitJSON["reason"]?.string,
                let at = exitJSON["at"]?.string.flatMap(Timestamp.parse)
            else { return nil }
            exit = ExitRecord(kind: kind, reason: reason, at: at)
        }
    }

    /// Atomic but not fsynced: state.json describes processes that a power loss ends anyway, and
    /// `start` writes it up to three times.
    func save(_ path: String) throws {
        try AtomicFile.write(try encoder.encode(self), to: path, permissions: 0o600, durable: false)
    }

    private var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = Timestamp.encodingStrategy
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return encoder
    }
}

/// How a run ended.
public struct ExitRecord: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        /// Shut down on request (stop, guest power-off, quit, SIGTERM): the state is `stopped`.
        case stopped
        /// Ended without a shutdown (killed, QEMU crash, guest panic): the state is `crashed`.
        case crashed
    }
    public var kind: Kind
    public var reason: String
    public var at: Date
}

// QMPTimeouts: how long each QMP command may take before the client gives up on its reply.

public struct QMPTimeouts: Sendable {
    /// For commands the table does not name.
    public var standard: Duration
    /// Exact command names with their own limits.
    public var commands: [String: Duration]
    /// Command-name prefixes (e.g. "blockdev-") with their own limits; exact names win.
    public var prefixes: [String: Duration]

    public init(standard: Duration, commands: [String: Duration] = [:], prefixes: [String: Duration] = [:]) {
        self.standard = standard
        self.commands = commands
        self.prefixes = prefixes
    }

    /// QEMU answers most commands in microseconds; the slow ones do real work before replying
    /// (introspection builds a 240 KB reply, block and migration commands touch storage).
    public static let `default` = QMPTimeouts(
        standard: .seconds(30),
        commands: [
            "query-qmp-schema": .seconds(60),
            "human-monitor-command": .seconds(120),
            "dump-guest-memory": .seconds(600),
            "query-migrate": .seconds(60),
        ],
        prefixes: [
            "blockdev-": .seconds(120),
            "block-": .seconds(120),
            "drive-": .seconds(120),
            "migrate": .seconds(120),
            "snapshot-": .seconds(300),
            "x-": .seconds(60),
        ])

    public func timeout(for command: String) -> Duration {
        if let exact = commands[command] { return exact }
        var best: (prefix: String, limit: Duration)?
        for (prefix, limit) in prefixes where command.hasPrefix(prefix) {
            if prefix.count > (best?.prefix.count ?? -1) { best = (prefix, limit) }
        }
        return best?.limit ?? standard
    }
}

extension Duration {
    /// Seconds as a Double, for messages and system calls.
    var seconds: Double {
        let parts = components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }
}

// Reading events.jsonl: the QMP events the recorder kept, one JSON object per line.
import FoundationEssentials
import QMP
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// One recorded QMP event.
public struct VMEvent: Sendable, Equatable {
    public var name: String
    public var timestamp: Date
    /// The event's `data` member as compact JSON, or nil when it has none.
    public var data: String?
    /// The line exactly as QEMU sent it.
    public var json: String

    /// Parses one recorded line; nil for lines that are not QMP events.
    public init?(line: String) {
        guard let object = try? JSONDocument(parsing: line), let name = object["event"]?.string else { return nil }
        self.name = name
        self.json = line
        let stamp = object["timestamp"]
        let seconds = stamp?["seconds"]?.double ?? 0
        let micros = stamp?["microseconds"]?.double ?? 0
        timestamp = Date(timeIntervalSince1970: seconds + micros / 1_000_000)
        // Compact, with sorted keys (JSONValue sorts them), so the same event always reads the same.
        data = object["data"].map { $0.value.serialized() }
    }

    /// `2026-11-29T19:20:01.123Z SHUTDOWN {"guest":true,"reason":"guest-shutdown"}`
    public var text: String {
        [Timestamp.format(timestamp, fractionDigits: 3), name, data].compactMap { $0 }.joined(separator: " ")
    }

    /// The `reason` member of the event's data (SHUTDOWN, RESET), when present.
    public var reason: String? {
        guard let data else { return nil }
        return (try? JSONDocument(parsing: data))?["reason"]?.string
    }
}

public enum EventLog {
    /// Every event recorded in `path` (empty when the file is missing).
    public static func read(_ path: String) -> [VMEvent] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap { VMEvent(line: String($0)) }
    }

    /// Reads the file from `offset`, returning complete lines and the offset after the last one, so a
    /// follower never prints half a line that the recorder is still writing.
    public static func readLines(_ path: String, from offset: UInt64) -> (lines: [String], next: UInt64) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return ([], offset) }
        defer { close(fd) }
        var data: [UInt8] = []
        // A read error keeps what was read: only complete lines count below.
        _ = DescriptorIO.readToEnd(fd, from: offset) { data += $0 }
        guard let lastNewline = data.lastIndex(of: 0x0A) else { return ([], offset) }
        let complete = data[...lastNewline]
        let lines = String(decoding: complete, as: UTF8.self).split(separator: "\n").map(String.init)
        return (lines, offset + UInt64(complete.count))
    }
}

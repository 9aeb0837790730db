// The record of a component's last build: what it was built from and what it installed, for up-to-date checks and resume.
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// A file the build installed, with the size and modification time it had then. Comparing stats
/// (not hashes) keeps the no-op check cheap; the release manifest carries real SHA-256 hashes.
public struct OutputStamp: Codable, Sendable, Equatable {
    public var path: String
    public var size: Int64
    public var modified: Int64

    public static func of(_ path: String) -> OutputStamp? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        let nanoseconds = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
        return OutputStamp(path: path, size: Int64(info.st_size), modified: nanoseconds)
    }

    /// True when the file is still exactly as the build left it.
    public var isIntact: Bool { Self.of(path) == self }
}

public struct BuildRecord: Codable, Sendable, Equatable {
    public var component: Component
    public var url: String
    public var ref: String
    public var commit: String
    public var inputs: [String: String]
    /// Steps finished for this commit and these inputs; the next run starts after them.
    public var completedSteps: [StepKind]
    /// The step a failure or Ctrl-C stopped at (nil once the component built completely).
    public var failedStep: StepKind?
    public var complete: Bool
    public var outputs: [OutputStamp]
    public var finished: Date?

    /// Why this record does not cover `commit` and `inputs` (nil when it does: up to date).
    public func staleness(commit: String?, inputs: [String: String]) -> String? {
        guard complete else { return "the last build stopped at \(failedStep?.rawValue ?? "an unfinished step")" }
        guard let commit, commit == self.commit else {
            return "the source moved from \(self.commit.prefix(12)) to \(commit.map { String($0.prefix(12)) } ?? "a new revision")"
        }
        if inputs != self.inputs {
            let changed = Set(inputs.keys).union(self.inputs.keys).filter { inputs[$0] != self.inputs[$0] }.sorted()
            return "inputs changed: \(changed.joined(separator: ", "))"
        }
        if outputs.isEmpty { return "no installed files are recorded" }
        if let damaged = outputs.first(where: { !$0.isIntact }) { return "\(damaged.path) is missing or was changed" }
        return nil
    }
}

/// Records live in build/records/<component>.json and are replaced atomically after every step.
public struct BuildRecordStore: Sendable {
    public let layout: BuildLayout

    public init(layout: BuildLayout) { self.layout = layout }

    public func load(_ component: Component) -> BuildRecord? {
        guard let data = FileManager.default.contents(atPath: layout.recordPath(component)) else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = Timestamp.decodingStrategy
        return try? decoder.decode(BuildRecord.self, from: data)
    }

    public func save(_ record: BuildRecord) throws {
        let path = layout.recordPath(record.component)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = Timestamp.encodingStrategy
        do {
            try AtomicFile.makeDirectory(path.parentPath)
            try AtomicFile.write(try encoder.encode(record), to: path)
        } catch let error as SupportError {
            if case .io(_, _, let code) = error, code == ENOSPC {
                throw BuilderError.diskFull(path: path, detail: "writing the build record")
            }
            throw BuilderError.io(path: path, operation: "write the build record", detail: error.description)
        }
    }
}

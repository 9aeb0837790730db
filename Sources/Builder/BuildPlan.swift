// A build as data: typed steps of argv commands and file actions that --dry-run prints and the executor runs.
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

public enum StepKind: String, CaseIterable, Codable, Sendable, CustomStringConvertible {
    case fetch, checkout, configure, compile, package, install

    public var description: String { rawValue }
}

/// A program run from an argv array (never a shell string). `environment` only lists what the
/// step adds to or overrides in the build environment.
public struct StepCommand: Sendable, Equatable, Codable {
    public var argv: [String]
    public var workingDirectory: String
    public var environment: [String: String]

    public init(_ argv: [String], in workingDirectory: String, environment: [String: String] = [:]) {
        self.argv = argv
        self.workingDirectory = workingDirectory
        self.environment = environment
    }

    /// The command as a reader would type it (quoted where needed); for display only, never executed.
    public var displayLine: String {
        let env = environment.keys.sorted().map { "\($0)=\(Self.quote(environment[$0] ?? ""))" }
        return (env + argv.map(Self.quote)).joined(separator: " ")
    }

    static func quote(_ word: String) -> String {
        let safe = word.allSatisfy { $0.isLetter || $0.isNumber || "-_./=:,+@%<>|".contains($0) }
        return safe && !word.isEmpty ? word : "'" + word.replacing("'", with: "'\\''") + "'"
    }
}

/// One thing a step does. Files are moved by sevvm itself so installs can be staged and committed.
public enum StepAction: Sendable, Equatable {
    case run(StepCommand)
    case makeDirectory(String)
    case removeTree(String)
    /// Copies a file; with `onlyIfMissing` an existing destination is kept (edksetup.sh's Conf templates).
    case copyFile(from: String, to: String, onlyIfMissing: Bool)
    /// Creates an empty file when it does not exist.
    case touch(String)
    /// Removes files in a folder whose names end with one of the suffixes (stale kernel packages).
    case removeFiles(directory: String, suffixes: [String])
    /// Moves files in `from` (and its subfolders when `recursive`) whose names end with a suffix into `to`.
    case collectFiles(from: String, suffixes: [String], to: String, recursive: Bool)
    /// Writes a small text file atomically (source-commit.<component>).
    case writeFile(path: String, contents: String)
    /// Moves every file staged under `staging` into the same relative place under `destination`.
    case commitStaging(staging: String, destination: String)
    /// Replaces `destination` by `staging` as a whole (the kernel package folder).
    case replaceDirectory(staging: String, destination: String)

    public var displayLine: String {
        switch self {
        case .run(let command): return "$ " + command.displayLine
        case .makeDirectory(let path): return "mkdir -p \(path)"
        case .removeTree(let path): return "rm -rf \(path)"
        case .copyFile(let from, let to, let onlyIfMissing):
            return "copy \(from) -> \(to)" + (onlyIfMissing ? " (unless it exists)" : "")
        case .touch(let path): return "touch \(path)"
        case .removeFiles(let directory, let suffixes): return "remove \(directory)/*{\(suffixes.joined(separator: ","))}"
        case .collectFiles(let from, let suffixes, let to, let recursive):
            return "move \(from)/\(recursive ? "**/" : "")*{\(suffixes.joined(separator: ","))} -> \(to)/"
        case .writeFile(let path, let contents):
            return "write \(path): \(contents.trimmingNewlines)"
        case .commitStaging(let staging, let destination): return "install staged files \(staging)/* -> \(destination)/"
        case .replaceDirectory(let staging, let destination): return "replace \(destination) by \(staging)"
        }
    }

    var command: StepCommand? {
        if case .run(let command) = self { return command }
        return nil
    }
}

public struct BuildStep: Sendable, Equatable {
    public var component: Component
    public var kind: StepKind
    public var workingDirectory: String
    public var actions: [StepAction]
    public var logPath: String
}

/// Everything needed to build one component, plus the inputs that decide whether it is up to date.
public struct ComponentPlan: Sendable, Equatable {
    public var source: ComponentSource
    /// The commit to build; nil until a fetch resolves a tag or short id that is not yet local.
    public var commit: String?
    public var sourceTree: String
    public var steps: [BuildStep]
    /// What the result depends on besides the commit: flags, config options, toolchain, environment.
    public var inputs: [String: String]

    public var component: Component { source.component }

    /// The plan as --dry-run prints it: every step, its folder and every command.
    public func rendered() -> String {
        var lines = ["\(component)  \(source.urlVariable)=\(source.url)  \(source.refVariable) -> \(source.ref)"]
        let pending: String
        if case .branch(let name) = source.ref {
            pending = "<head of \(name), read with one git ls-remote at build time>"
        } else {
            pending = "<resolved from the fetched \(source.ref)>"
        }
        lines.append("  commit: \(commit ?? pending)")
        for key in inputs.keys.sorted() { lines.append("  input \(key): \(inputs[key] ?? "")") }
        for step in steps {
            lines.append("  \(step.kind)  (in \(step.workingDirectory), log \(step.logPath))")
            for action in step.actions { lines.append("      " + action.displayLine) }
        }
        return lines.joined(separator: "\n")
    }
}

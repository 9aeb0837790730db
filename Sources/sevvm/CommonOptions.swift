// Options shared by many commands: the workspace and JSON output.
import ArgumentParser
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

struct WorkspaceOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The workspace folder (holds vms/, images/, stable-commits).", valueName: "DIR"))
    var workspace: String?

    var resolved: Workspace { Workspace.resolve(option: workspace) }
}

struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print machine-readable JSON instead of text.")
    var json = false
}

/// What `--json` prints: indented, keys sorted, slashes unescaped, dates as ISO 8601 text.
func jsonText<T: Encodable>(_ value: T) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = Timestamp.encodingStrategy
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}

/// Exit codes scripts can rely on (documented in `sevvm --help`).
enum ExitCodes {
    static let failure: Int32 = 1
    static let hostNotReady: Int32 = 3
    static let wrongState: Int32 = 4
}

/// Prints an error message to stderr and exits with `code`: used by commands to fail with a
/// domain error's actionable description rather than ArgumentParser's generic wording.
func fail(_ message: String, code: Int32 = ExitCodes.failure) -> ExitCode {
    printError("error: \(message)")
    return ExitCode(code)
}

// The one error type of the Definitions target: what was wrong in which file and field, and what is allowed.
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

public enum DefinitionError: Error, CustomStringConvertible, Equatable {
    /// A field holds a value outside what is allowed.
    case invalidValue(file: String?, field: String, value: String, allowed: String)
    /// A field sevvm does not know (often a typo).
    case unknownField(file: String?, field: String, allowed: [String])
    /// A field holds the wrong JSON type.
    case wrongType(file: String?, field: String, expected: String)
    /// A required field is absent.
    case missingField(file: String?, field: String)
    /// A file named by a field does not exist or cannot be read.
    case missingFile(file: String?, field: String, path: String)
    /// The file is not JSON at all.
    case malformedJSON(file: String, reason: String)
    /// The file was written by a newer sevvm.
    case unsupportedSchema(file: String, version: Int, supported: Int)
    /// A VM name outside `[A-Za-z0-9._-]{1,64}`.
    case invalidName(name: String)
    case notFound(name: String, path: String)
    case alreadyExists(name: String, path: String)
    /// The operation needs a stopped VM.
    case vmRunning(name: String, pid: Int32)
    /// An edit key that names no field.
    case unknownKey(key: String, reason: String)
    case io(path: String, operation: String, reason: String)
    /// qemu-img (or another helper) failed.
    case toolFailed(tool: String, arguments: [String], output: String)

    /// The same error, told which file it came from.
    public func inFile(_ path: String) -> DefinitionError {
        switch self {
        case .invalidValue(nil, let field, let value, let allowed):
            return .invalidValue(file: path, field: field, value: value, allowed: allowed)
        case .unknownField(nil, let field, let allowed): return .unknownField(file: path, field: field, allowed: allowed)
        case .wrongType(nil, let field, let expected): return .wrongType(file: path, field: field, expected: expected)
        case .missingField(nil, let field): return .missingField(file: path, field: field)
        case .missingFile(nil, let field, let missing): return .missingFile(file: path, field: field, path: missing)
        default: return self
        }
    }

    public var description: String {
        switch self {
        case .invalidValue(let file, let field, let value, let allowed):
            return "\(located(file))field '\(field)' has the value '\(value)'; allowed: \(allowed)"
        case .unknownField(let file, let field, let allowed):
            return "\(located(file))unknown field '\(field)'; known fields here: \(allowed.joined(separator: ", "))"
        case .wrongType(let file, let field, let expected):
            return "\(located(file))field '\(field)' has the wrong type; expected \(expected)"
        case .missingField(let file, let field):
            return "\(located(file))required field '\(field)' is missing"
        case .missingFile(let file, let field, let path):
            return "\(located(file))field '\(field)' names \(path), which does not exist or cannot be read; fix the path"
        case .malformedJSON(let file, let reason):
            return "\(file): not valid JSON (\(reason)); fix the file or recreate it with `sevvm create`"
        case .unsupportedSchema(let file, let version, let supported):
            return "\(file): schemaVersion \(version) is newer than this sevvm understands (\(supported)); upgrade sevvm"
        case .invalidName(let name):
            return "'\(name)' is not a valid VM name; use 1 to 64 characters from A-Z a-z 0-9 . _ - (not '.' or '..')"
        case .notFound(let name, let path):
            return "no VM named '\(name)' (looked for \(path)); `sevvm list` shows the defined VMs"
        case .alreadyExists(let name, let path):
            return "a VM named '\(name)' already exists (\(path)); choose another name or `sevvm rm \(name)` first"
        case .vmRunning(let name, let pid):
            return "VM '\(name)' is running (QEMU pid \(pid)); stop it first with `sevvm stop \(name)`"
        case .unknownKey(let key, let reason):
            return "cannot set '\(key)': \(reason)"
        case .io(let path, let operation, let reason):
            return "\(operation) \(path): \(reason)"
        case .toolFailed(let tool, let arguments, let output):
            let trimmed = output.trimmingWhitespace
            return "\(tool) \(arguments.joined(separator: " ")) failed: \(trimmed.isEmpty ? "no output" : trimmed)"
        }
    }

    private func located(_ file: String?) -> String { file.map { "\($0): " } ?? "" }
}

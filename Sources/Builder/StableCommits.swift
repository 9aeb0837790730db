// stable-commits: AMD's shell-variable file naming the repository, branch, tag or commit of each component.
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// The parsed file. Only plain assignments are accepted (no expansion, no commands): it is data,
/// and sevvm never hands it to a shell as AMD's build.sh does.
public struct StableCommits: Sendable, Equatable {
    public struct Variable: Sendable, Equatable {
        public var name: String
        public var value: String
        public var line: Int
    }

    public let path: String
    public let text: String
    public private(set) var variables: [String: Variable] = [:]

    public static func load(path: String) throws -> StableCommits {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw BuilderError.stableCommitsMissing(path: path)
        }
        return try StableCommits(text: String(decoding: data, as: UTF8.self), path: path)
    }

    public init(text: String, path: String) throws {
        self.path = path
        self.text = text
        for (offset, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = offset + 1
            if let variable = try Self.parseLine(String(rawLine), line: line, path: path) {
                variables[variable.name] = variable
            }
        }
    }

    public func value(_ name: String) -> String? {
        guard let value = variables[name]?.value, !value.isEmpty else { return nil }
        return value
    }

    /// Where `component` comes from: its URL and the branch, tag or commit to build.
    public func source(for component: Component) throws -> ComponentSource {
        let prefix = component.variablePrefix
        guard let urlVariable = variables[component.urlVariable], !urlVariable.value.isEmpty else {
            throw BuilderError.variableMissing(path: path, variable: component.urlVariable, component: component.rawValue)
        }
        let url = urlVariable.value
        guard !url.hasPrefix("-"), !url.contains(where: { $0.isWhitespace }) else {
            throw BuilderError.variableInvalid(
                path: path, line: urlVariable.line, variable: urlVariable.name, value: url,
                allowed: "a git URL (https://..., file:///..., or a path) without spaces that does not start with '-'")
        }
        let pins = ["\(prefix)_COMMIT", "\(prefix)_TAG", "\(prefix)_BRANCH"].compactMap { name in
            variables[name].flatMap { $0.value.isEmpty ? nil : $0 }
        }
        if pins.count > 2 || (pins.count == 2 && !pins.contains(where: { $0.name.hasSuffix("_BRANCH") })) {
            throw BuilderError.conflictingPins(path: path, first: pins[0].name, second: pins[1].name)
        }
        // A commit or tag overrides the branch (which then only documents where the pin came from).
        guard let pin = pins.first else {
            throw BuilderError.variableMissing(path: path, variable: "\(prefix)_BRANCH", component: component.rawValue)
        }
        let ref: SourceRef
        if pin.name.hasSuffix("_COMMIT") {
            let hex = pin.value.lowercased()
            guard (7...40).contains(hex.count), hex.allSatisfy({ $0.isHexDigit }) else {
                throw BuilderError.variableInvalid(
                    path: path, line: pin.line, variable: pin.name, value: pin.value,
                    allowed: "a commit id of 7 to 40 hex digits; use \(prefix)_TAG for a tag")
            }
            ref = .commit(hex)
        } else {
            guard Self.isSafeRefName(pin.value) else {
                throw BuilderError.variableInvalid(
                    path: path, line: pin.line, variable: pin.name, value: pin.value,
                    allowed: "a git branch or tag name (no spaces, '..', '~^:?*[\\', and not starting with '-')")
            }
            ref = pin.name.hasSuffix("_TAG") ? .tag(pin.value) : .branch(pin.value)
        }
        return ComponentSource(
            component: component, url: url, urlVariable: urlVariable.name, ref: ref, refVariable: pin.name)
    }

    /// git's ref-name rules that matter here, plus no leading '-' so a value can never become an option.
    static func isSafeRefName(_ name: String) -> Bool {
        guard !name.isEmpty, !name.hasPrefix("-"), !name.hasPrefix("/"), !name.hasSuffix("/"), !name.hasSuffix(".lock"),
            !name.contains(".."), !name.contains("@{"), !name.contains("//")
        else { return false }
        let forbidden: Set<Character> = [" ", "~", "^", ":", "?", "*", "[", "\\", "\t"]
        return !name.contains { forbidden.contains($0) || ($0.asciiValue ?? 32) < 32 }
    }

    private static func parseLine(_ raw: String, line: Int, path: String) throws -> Variable? {
        var rest = Substring(raw.trimmingSpaces)
        if rest.isEmpty || rest.hasPrefix("#") { return nil }
        func failure(_ reason: String) -> BuilderError {
            .stableCommitsSyntax(path: path, line: line, text: raw, reason: reason)
        }
        if rest.hasPrefix("export ") || rest.hasPrefix("export\t") {
            rest = rest.dropFirst("export".count).drop { $0 == " " || $0 == "\t" }
        }
        let nameEnd = rest.firstIndex { !($0.isLetter || $0.isNumber || $0 == "_") || !$0.isASCII } ?? rest.endIndex
        let name = String(rest[..<nameEnd])
        guard let first = name.first, !first.isNumber else { throw failure("expected NAME=VALUE") }
        rest = rest[nameEnd...]
        guard rest.first == "=" else {
            let spacedEquals = rest.drop { $0 == " " || $0 == "\t" }.first == "="
            throw failure(spacedEquals ? "no spaces are allowed around '='" : "expected NAME=VALUE")
        }
        rest = rest.dropFirst()
        var value = ""
        switch rest.first {
        case "\"":
            rest = rest.dropFirst()
            var closed = false
            while let character = rest.first {
                rest = rest.dropFirst()
                if character == "\"" {
                    closed = true
                    break
                }
                if character == "\\", let next = rest.first, "\"\\$`".contains(next) {
                    value.append(next)
                    rest = rest.dropFirst()
                } else if character == "$" || character == "`" {
                    throw failure("variable expansion and commands are not supported; write the value out")
                } else {
                    value.append(character)
                }
            }
            guard closed else { throw failure("unterminated double quote") }
        case "'":
            rest = rest.dropFirst()
            guard let close = rest.firstIndex(of: "'") else { throw failure("unterminated single quote") }
            value = String(rest[..<close])
            rest = rest[rest.index(after: close)...]
        default:
            let end = rest.firstIndex { $0 == " " || $0 == "\t" || $0 == "#" } ?? rest.endIndex
            value = String(rest[..<end])
            rest = rest[end...]
            if let bad = value.first(where: { "$`\\;&|<>()\"'".contains($0) }) {
                throw failure("'\(bad)' is not allowed in an unquoted value; quote the value or remove it")
            }
        }
        let trailing = rest.drop { $0 == " " || $0 == "\t" }
        guard trailing.isEmpty || trailing.hasPrefix("#") else {
            throw failure("unexpected text after the value of \(name)")
        }
        return Variable(name: name, value: value, line: line)
    }
}

/// Which revision of a repository to build.
public enum SourceRef: Sendable, Equatable, Codable, CustomStringConvertible {
    case branch(String)
    case tag(String)
    case commit(String)

    public var description: String {
        switch self {
        case .branch(let name): return "branch \(name)"
        case .tag(let name): return "tag \(name)"
        case .commit(let id): return "commit \(id)"
        }
    }

    /// A full commit id is immutable: it never needs the network to know whether it changed.
    public var isPinned: Bool {
        if case .branch = self { return false }
        return true
    }
}

/// One component's origin as stable-commits states it.
public struct ComponentSource: Sendable, Equatable {
    public var component: Component
    public var url: String
    public var urlVariable: String
    public var ref: SourceRef
    public var refVariable: String
}

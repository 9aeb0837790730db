// `edit NAME --set key=value`: dotted keys applied to the definition's JSON, then read and validated strictly.
import FoundationEssentials
import QMP

#if canImport(Glibc)
    import Glibc
#endif

public enum DefinitionEditor {
    /// Fields that are bookkeeping, not settings.
    static let protectedKeys: [String: String] = [
        "schemaVersion": "it is written by sevvm",
        "name": "a VM cannot be renamed by editing; create a new one",
        "created": "it records what sevvm created so that `rm` removes only those files",
    ]

    /// Splits "key=value" (the value may contain '=').
    public static func parseAssignment(_ text: String) throws -> (key: String, value: String) {
        guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
            throw DefinitionError.unknownKey(key: text, reason: "expected KEY=VALUE, e.g. memory=4G or snp.policy=0x30000")
        }
        return (String(text[..<equals]), String(text[text.index(after: equals)...]))
    }

    /// Applies `key=value` assignments. Values are read as JSON when they look like JSON
    /// (numbers, true/false, null, [..], {..}, "..."); other text is a string, and a comma list
    /// for a list field becomes a list. `null` removes an optional field. `file` names the
    /// definition in error messages.
    public static func apply(
        _ assignments: [(key: String, value: String)], to definition: VMDefinition, file: String? = nil
    ) throws -> VMDefinition {
        let label = file ?? "(edit of \(definition.name))"
        var tree = try DefinitionError.parse(String(decoding: try DefinitionStore.encode(definition), as: UTF8.self), file: label)
        for (key, value) in assignments {
            let path = key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard let first = path.first, !first.isEmpty, !path.contains("") else {
                throw DefinitionError.unknownKey(key: key, reason: "keys are field names joined by dots, e.g. snp.hostData or disks.0.bus")
            }
            if let reason = protectedKeys[first] { throw DefinitionError.unknownKey(key: key, reason: reason) }
            tree = try set(key, path[...], in: tree, to: value) ?? tree
        }
        return try DefinitionStore.decode(json: tree, file: label)
    }

    /// `node` with the value at `path` replaced; nil means "remove this member".
    private static func set(_ key: String, _ path: ArraySlice<String>, in node: JSONValue?, to text: String) throws -> JSONValue? {
        guard let head = path.first else { return interpret(text, existing: node) }
        let rest = path.dropFirst()
        switch node {
        case .array(var elements):
            guard let index = Int(head), index >= 0, index <= elements.count else {
                throw DefinitionError.unknownKey(
                    key: key, reason: "'\(head)' is not an index of this list (it has \(elements.count) entries)")
            }
            let current = index < elements.count ? elements[index] : nil
            switch (try set(key, rest, in: current, to: text), index < elements.count) {
            case (let value?, true): elements[index] = value
            case (let value?, false): elements.append(value)
            case (nil, true): elements.remove(at: index)
            case (nil, false): break
            }
            return .array(elements)
        case .object(var members):
            members[head] = try set(key, rest, in: members[head], to: text)
            return .object(members)
        case nil, .null?:
            var members: [String: JSONValue] = [:]
            members[head] = try set(key, rest, in: nil, to: text)
            return .object(members)
        default:
            throw DefinitionError.unknownKey(key: key, reason: "'\(head)' goes below a field that is not an object")
        }
    }

    /// The JSON value for `text`; nil removes the field.
    private static func interpret(_ text: String, existing: JSONValue?) -> JSONValue? {
        if text == "null" { return nil }
        if let first = text.first, "[{\"".contains(first), let value = try? JSONValue.parse(text) { return value }
        if text == "true" { return .bool(true) }
        if text == "false" { return .bool(false) }
        if let number = Int64(text) { return .int(number) }
        if case .array? = existing {
            return .array(text.split(separator: ",").map { .string(String($0)) })
        }
        return .string(text)
    }
}

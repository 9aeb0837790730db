// `edit NAME --set key=value`: dotted keys applied to the definition's JSON, then decoded and validated strictly.
import Foundation

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
    /// for a list field becomes a list. `null` removes an optional field.
    /// `file` names the definition in error messages.
    public static func apply(
        _ assignments: [(key: String, value: String)], to definition: VMDefinition, file: String? = nil
    ) throws -> VMDefinition {
        let data = try DefinitionStore.encode(definition)
        guard var tree = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw DefinitionError.unknownKey(key: "", reason: "the definition is not a JSON object")
        }
        for (key, value) in assignments {
            let path = key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard let first = path.first, !first.isEmpty, !path.contains("") else {
                throw DefinitionError.unknownKey(key: key, reason: "keys are field names joined by dots, e.g. snp.hostData or disks.0.bus")
            }
            if let reason = protectedKeys[first] { throw DefinitionError.unknownKey(key: key, reason: reason) }
            tree = try set(Substring(key), path[...], in: tree, to: value) as? [String: Any] ?? tree
        }
        let edited = try JSONSerialization.data(withJSONObject: tree)
        return try DefinitionStore.decode(edited, file: file ?? "(edit of \(definition.name))")
    }

    private static func set(_ key: Substring, _ path: ArraySlice<String>, in node: Any?, to text: String) throws -> Any? {
        guard let head = path.first else { return interpret(text, existing: node) }
        let rest = path.dropFirst()
        if var array = node as? [Any] {
            guard let index = Int(head), index >= 0, index <= array.count else {
                throw DefinitionError.unknownKey(
                    key: String(key), reason: "'\(head)' is not an index of this list (it has \(array.count) entries)")
            }
            if index == array.count {
                array.append(try set(key, rest, in: nil, to: text) ?? NSNull())
            } else if let value = try set(key, rest, in: array[index], to: text) {
                array[index] = value
            } else {
                array.remove(at: index)
            }
            return array
        }
        var object = node as? [String: Any] ?? [:]
        if node != nil, !(node is [String: Any]) {
            throw DefinitionError.unknownKey(key: String(key), reason: "'\(head)' goes below a field that is not an object")
        }
        object[head] = try set(key, rest, in: object[head], to: text)
        return object
    }

    /// The JSON value for `text`; nil removes the field.
    private static func interpret(_ text: String, existing: Any?) -> Any? {
        if text == "null" { return nil }
        if let first = text.first, "[{\"".contains(first),
            let value = try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
        {
            return value
        }
        if text == "true" { return true }
        if text == "false" { return false }
        if let number = Int(text) { return number }
        if existing is [Any] {
            return text.isEmpty ? [] : text.split(separator: ",").map { String($0) }
        }
        return text
    }
}

// Strict reading of definition JSON (parsed by json-c): unknown fields and wrong types become DefinitionErrors naming the field.
import FoundationEssentials
import QMP

#if canImport(Glibc)
    import Glibc
#endif

/// A value that can be read from a parsed JSON tree; `path` names it in errors ("disks.0").
protocol JSONReadable: Decodable {
    init(json: JSONValue, path: String) throws
}

extension JSONReadable {
    /// Codable entry point for other consumers (e.g. runtime state files): same strict rules.
    public init(from decoder: Decoder) throws {
        try self.init(json: JSONTree.decode(decoder), path: fieldPath(decoder.codingPath))
    }
}

/// "disks.0.path" for a coding path.
func fieldPath(_ path: [CodingKey]) -> String {
    path.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
}

/// Joins a parent field path and a member name.
func fieldPath(_ parent: String, _ member: String) -> String { parent.isEmpty ? member : parent + "." + member }

/// The members of one JSON object, read strictly: keys outside `allowed` are refused.
struct FieldReader {
    let members: [String: JSONValue]
    let path: String

    /// Reads an object whose allowed members are the cases of `fields`.
    init<Fields: CodingKey & CaseIterable>(_ value: JSONValue, path: String, fields: Fields.Type) throws {
        guard case .object(let members) = value else {
            throw DefinitionError.wrongType(file: nil, field: path.isEmpty ? "(top level)" : path, expected: "an object")
        }
        // Most objects are well formed: check cheaply, and sort only to report the first unknown key.
        let allowed = Fields.allCases.map(\.stringValue)
        if members.count > allowed.count || members.keys.contains(where: { !allowed.contains($0) }) {
            if let unknown = members.keys.sorted().first(where: { !allowed.contains($0) }) {
                throw DefinitionError.unknownField(file: nil, field: fieldPath(path, unknown), allowed: allowed)
            }
        }
        self.members = members
        self.path = path
    }

    func field(_ key: String) -> String { fieldPath(path, key) }

    /// The member, or nil when it is absent or null.
    func value(_ key: String) -> JSONValue? {
        guard let value = members[key], value != .null else { return nil }
        return value
    }

    func wrongType(_ key: String, _ expected: String) -> DefinitionError {
        .wrongType(file: nil, field: field(key), expected: expected)
    }

    func invalid(_ key: String, _ value: String, allowed: String) -> DefinitionError {
        .invalidValue(file: nil, field: field(key), value: value, allowed: allowed)
    }

    func required<T>(_ key: String, _ read: (String) throws -> T?) throws -> T {
        guard let value = try read(key) else { throw DefinitionError.missingField(file: nil, field: field(key)) }
        return value
    }

    func string(_ key: String) throws -> String? {
        guard let value = value(key) else { return nil }
        guard case .string(let text) = value else { throw wrongType(key, "a string") }
        return text
    }

    func int(_ key: String) throws -> Int? {
        guard let value = value(key) else { return nil }
        guard case .int(let number) = value, let result = Int(exactly: number) else { throw wrongType(key, "a whole number") }
        return result
    }

    func bool(_ key: String) throws -> Bool? {
        guard let value = value(key) else { return nil }
        guard case .bool(let flag) = value else { throw wrongType(key, "true or false") }
        return flag
    }

    /// A string-backed enum, naming the allowed spellings when the value is wrong.
    func choice<E: RawRepresentable & CaseIterable>(_ key: String) throws -> E? where E.RawValue == String {
        guard let text = try string(key) else { return nil }
        guard let value = E(rawValue: text) else { throw invalid(key, text, allowed: E.allCases.map(\.rawValue).joined(separator: ", ")) }
        return value
    }

    /// A list whose elements are read by `element` (given the element and its path).
    func list<T>(_ key: String, _ element: (JSONValue, String) throws -> T) throws -> [T]? {
        guard let value = value(key) else { return nil }
        guard case .array(let elements) = value else { throw wrongType(key, "a list") }
        return try elements.enumerated().map { index, item in try element(item, fieldPath(field(key), String(index))) }
    }

    func strings(_ key: String) throws -> [String]? {
        try list(key) { item, path in
            guard case .string(let text) = item else { throw DefinitionError.wrongType(file: nil, field: path, expected: "a string") }
            return text
        }
    }

    /// A nested value of a JSONReadable type.
    func nested<T: JSONReadable>(_ key: String, as type: T.Type) throws -> T? {
        guard let value = value(key) else { return nil }
        return try T(json: value, path: field(key))
    }
}

/// Bridges Swift's Decoder to a JSONValue tree, for the Codable entry point.
enum JSONTree {
    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    static func decode(_ decoder: Decoder) throws -> JSONValue {
        if let keyed = try? decoder.container(keyedBy: AnyKey.self) {
            var members: [String: JSONValue] = [:]
            for key in keyed.allKeys { members[key.stringValue] = try decode(keyed.superDecoder(forKey: key)) }
            return .object(members)
        }
        if var unkeyed = try? decoder.unkeyedContainer() {
            var elements: [JSONValue] = []
            while !unkeyed.isAtEnd { elements.append(try decode(unkeyed.superDecoder())) }
            return .array(elements)
        }
        let single = try decoder.singleValueContainer()
        if single.decodeNil() { return .null }
        if let flag = try? single.decode(Bool.self) { return .bool(flag) }
        if let number = try? single.decode(Int64.self) { return .int(number) }
        if let number = try? single.decode(Double.self) { return .double(number) }
        return .string(try single.decode(String.self))
    }
}

extension DefinitionError {
    /// Parses definition text with json-c; malformed JSON names the file and the byte offset.
    static func parse(_ text: String, file: String) throws -> JSONValue {
        do {
            return try JSONValue.parse(text)
        } catch QMPError.invalidJSON(let offset, let reason) {
            throw DefinitionError.malformedJSON(file: file, reason: "\(reason) at byte \(offset)")
        } catch {
            throw DefinitionError.malformedJSON(file: file, reason: String(describing: error))
        }
    }
}

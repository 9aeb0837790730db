// Strict JSON decoding: unknown fields are refused, and decoding errors become DefinitionErrors naming the field.
import Foundation

/// A coding key for any name (used to list the keys an object really has).
struct AnyCodingKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(stringValue: String) { self.stringValue = stringValue }
    init(intValue: Int) {
        stringValue = String(intValue)
        self.intValue = intValue
    }
}

/// "disks.0.path" for a coding path.
func fieldPath(_ path: [CodingKey], appending key: CodingKey? = nil) -> String {
    let all = key.map { path + [$0] } ?? path
    let text = all.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
    return text.isEmpty ? "(top level)" : text
}

extension Decoder {
    /// A keyed container that refuses keys outside `Keys`.
    func strictContainer<Keys: CodingKey & CaseIterable>(keyedBy type: Keys.Type) throws -> KeyedDecodingContainer<Keys> {
        let all = try container(keyedBy: AnyCodingKey.self)
        let allowed = Keys.allCases.map(\.stringValue)
        for key in all.allKeys where !allowed.contains(key.stringValue) {
            throw DefinitionError.unknownField(file: nil, field: fieldPath(codingPath, appending: key), allowed: allowed)
        }
        return try container(keyedBy: type)
    }
}

extension KeyedDecodingContainer {
    /// The value at `key`, or `fallback` when the key is absent or null.
    func value<T: Decodable>(_ key: Key, or fallback: @autoclosure () -> T) throws -> T {
        try decodeIfPresent(T.self, forKey: key) ?? fallback()
    }

    func invalid(_ key: Key, _ value: String, allowed: String) -> DefinitionError {
        .invalidValue(file: nil, field: fieldPath(codingPath, appending: key), value: value, allowed: allowed)
    }
}

extension DefinitionError {
    /// Converts Foundation's decoding errors into a DefinitionError about `file`.
    static func from(_ error: Error, file: String) -> DefinitionError {
        if let error = error as? DefinitionError { return error.inFile(file) }
        guard let decoding = error as? DecodingError else {
            return .malformedJSON(file: file, reason: String(describing: error))
        }
        switch decoding {
        case .typeMismatch(let type, let context):
            return .wrongType(file: file, field: fieldPath(context.codingPath), expected: typeName(type))
        case .valueNotFound(let type, let context):
            return .wrongType(file: file, field: fieldPath(context.codingPath), expected: typeName(type))
        case .keyNotFound(let key, let context):
            return .missingField(file: file, field: fieldPath(context.codingPath, appending: key))
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty {
                return .malformedJSON(
                    file: file, reason: context.underlyingError.map { String(describing: $0) } ?? context.debugDescription)
            }
            return .wrongType(file: file, field: fieldPath(context.codingPath), expected: context.debugDescription)
        @unknown default:
            return .malformedJSON(file: file, reason: String(describing: decoding))
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "true or false"
        case is Int.Type, is UInt64.Type, is UInt32.Type, is Int64.Type: return "a whole number"
        case is [String].Type: return "a list of strings"
        default:
            let name = String(describing: type)
            if name.hasPrefix("Array") { return "a list" }
            if name.hasPrefix("Dictionary") { return "an object" }
            return "a value of type \(name)"
        }
    }
}

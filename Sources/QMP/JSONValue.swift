// JSONValue: a plain Swift JSON value, converted to and from json-c trees (json-c does all the text work).
import CJSONC

#if canImport(Glibc)
    import Glibc
#endif

public indirect enum JSONValue: Sendable, Equatable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral,
    ExpressibleByFloatLiteral
{
    case null, bool(Bool), int(Int64), double(Double), string(String), array([JSONValue]), object([String: JSONValue])

    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(nilLiteral: ()) { self = .null }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }

    /// JSON text produced by json-c; object keys are sorted so output is stable.
    public func serialized(pretty: Bool = false) -> String {
        let object = makeJSONC()
        defer { json_object_put(object) }
        return JSONC.serialize(object, pretty: pretty)
    }

    /// Parses one JSON value (strict JSON, surrounding whitespace allowed).
    /// Throws `QMPError.invalidJSON` with the byte offset of the first error.
    public static func parse(_ text: String) throws -> JSONValue {
        let object = try JSONC.parseDocument(text)
        defer { json_object_put(object) }
        return JSONValue(jsonc: object)
    }

    /// The object's member `key`, or nil when this is not an object or has no such member.
    public subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members[key] }
        return nil
    }

    /// A new json-c tree holding this value (the caller owns the reference; nil is JSON null).
    func makeJSONC() -> OpaquePointer? {
        switch self {
        case .null:
            return nil
        case .bool(let value):
            return json_object_new_boolean(value ? 1 : 0)
        case .int(let value):
            return json_object_new_int64(value)
        case .double(let value):
            // JSON has no NaN or infinity; the shortest round-trip text keeps 0.1 as 0.1.
            guard value.isFinite else { return nil }
            return json_object_new_double_s(value, value.description)
        case .string(let value):
            // The explicit length keeps strings that contain U+0000 whole.
            return json_object_new_string_len(value, Int32(value.utf8.count))
        case .array(let elements):
            let array = json_object_new_array_ext(Int32(elements.count))
            for element in elements { json_object_array_add(array, element.makeJSONC()) }
            return array
        case .object(let members):
            let object = json_object_new_object()
            for key in members.keys.sorted() {
                json_object_object_add(object, key, members[key]?.makeJSONC())
            }
            return object
        }
    }

    /// Converts a whole json-c tree (borrowed, not released) into Swift values.
    init(jsonc object: OpaquePointer?) {
        guard let object else {
            self = .null
            return
        }
        switch json_object_get_type(object) {
        case json_type_boolean:
            self = .bool(json_object_get_boolean(object) != 0)
        case json_type_int:
            self = .int(json_object_get_int64(object))
        case json_type_double:
            self = .double(json_object_get_double(object))
        case json_type_string:
            self = .string(JSONC.string(object))
        case json_type_array:
            let count = json_object_array_length(object)
            var elements: [JSONValue] = []
            elements.reserveCapacity(count)
            for index in 0..<count { elements.append(JSONValue(jsonc: json_object_array_get_idx(object, index))) }
            self = .array(elements)
        case json_type_object:
            var members: [String: JSONValue] = [:]
            members.reserveCapacity(Int(json_object_object_length(object)))
            JSONC.forEachMember(object) { key, value in members[key] = JSONValue(jsonc: value) }
            self = .object(members)
        default:
            self = .null
        }
    }
}

extension JSONValue: CustomStringConvertible {
    public var description: String { serialized() }
}

/// Small helpers over json-c's C API shared by JSONValue, JSONDocument and the stream decoder.
enum JSONC {
    static func serialize(_ object: OpaquePointer?, pretty: Bool) -> String {
        let flags = (pretty ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED : JSON_C_TO_STRING_PLAIN) | JSON_C_TO_STRING_NOSLASHESCAPE
        var length = 0
        guard let text = json_object_to_json_string_length(object, Int32(flags), &length) else { return "null" }
        return text.withMemoryRebound(to: UInt8.self, capacity: length) { bytes in
            String(decoding: UnsafeBufferPointer(start: bytes, count: length), as: UTF8.self)
        }
    }

    /// Runs `body` with `{"execute": command, "arguments": ..., "id": id}` as compact JSON text,
    /// which json-c owns until `body` returns; nil when json-c could not serialize it.
    static func withRequest<Result>(
        _ command: String, arguments: JSONValue?, id: Int64?, _ body: (UnsafeRawBufferPointer?) throws -> Result
    ) rethrows -> Result {
        let message = json_object_new_object()
        defer { json_object_put(message) }
        json_object_object_add(message, "execute", json_object_new_string(command))
        if let arguments { json_object_object_add(message, "arguments", arguments.makeJSONC()) }
        if let id { json_object_object_add(message, "id", json_object_new_int64(id)) }
        var length = 0
        let flags = Int32(JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
        guard let text = json_object_to_json_string_length(message, flags, &length) else { return try body(nil) }
        return try body(UnsafeRawBufferPointer(start: text, count: length))
    }

    static func string(_ object: OpaquePointer) -> String {
        let length = Int(json_object_get_string_len(object))
        guard let chars = json_object_get_string(object) else { return "" }
        return chars.withMemoryRebound(to: UInt8.self, capacity: length) { bytes in
            String(decoding: UnsafeBufferPointer(start: bytes, count: length), as: UTF8.self)
        }
    }

    static func forEachMember(_ object: OpaquePointer, _ body: (String, OpaquePointer?) -> Void) {
        var iterator = json_object_iter_begin(object)
        var end = json_object_iter_end(object)
        while json_object_iter_equal(&iterator, &end) == 0 {
            if let name = json_object_iter_peek_name(&iterator) {
                body(String(cString: name), json_object_iter_peek_value(&iterator))
            }
            json_object_iter_next(&iterator)
        }
    }

    /// Parses a complete document; the caller owns the returned reference (nil is JSON null).
    static func parseDocument(_ text: String) throws -> OpaquePointer? {
        guard let tokener = json_tokener_new() else { throw QMPError.io(operation: "json_tokener_new", errno: ENOMEM) }
        defer { json_tokener_free(tokener) }
        json_tokener_set_flags(tokener, Int32(JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS | JSON_TOKENER_VALIDATE_UTF8))
        let bytes = Array(text.utf8)
        guard let first = bytes.firstIndex(where: { !isJSONWhitespace($0) }) else {
            throw QMPError.invalidJSON(offset: bytes.count, reason: "no JSON value")
        }
        var object = bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { chars in
                json_tokener_parse_ex(tokener, chars.baseAddress.map { $0 + first }, Int32(chars.count - first))
            }
        }
        var status = json_tokener_get_error(tokener)
        let end = first + json_tokener_get_parse_end(tokener)
        if status == json_tokener_continue {
            // A bare number or literal ("null", "12") only ends at a delimiter: supply one.
            object = json_tokener_parse_ex(tokener, " ", 1)
            status = json_tokener_get_error(tokener)
        }
        if status == json_tokener_continue {
            throw QMPError.invalidJSON(offset: bytes.count, reason: "unexpected end of text")
        }
        guard status == json_tokener_success else {
            throw QMPError.invalidJSON(offset: min(end, bytes.count), reason: reason(status))
        }
        if let trailing = bytes[min(end, bytes.count)...].firstIndex(where: { !isJSONWhitespace($0) }) {
            json_object_put(object)
            throw QMPError.invalidJSON(offset: trailing, reason: "unexpected text after the JSON value")
        }
        return object
    }

    static func reason(_ status: json_tokener_error) -> String {
        guard let text = json_tokener_error_desc(status) else { return "parse error" }
        return String(cString: text)
    }

    static func isJSONWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
    }
}

/// Encodable, so a JSONValue can be part of (or be) what sevvm prints with JSONEncoder.
extension JSONValue: Encodable {
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .double(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let values): try container.encode(values)
        case .object(let members): try container.encode(members)
        }
    }
}

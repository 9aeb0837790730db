// JSONDocument: a lazy, read-only view of a json-c tree; only what is read is converted to Swift.
import CJSONC
import Synchronization

/// Owns one json-c tree. json-c's own reference counts are not atomic in every build, so every view
/// into the tree shares this owner through Swift's (atomic) reference counting instead, and the tree
/// is released with a single `json_object_put` when the last view goes away.
final class JSONTree: @unchecked Sendable {
    let root: OpaquePointer?
    /// json-c serializes into a buffer stored on the object itself, so serialization is serialized.
    let printLock = Mutex(())

    /// Takes ownership of one reference to `root`.
    init(adopting root: OpaquePointer?) { self.root = root }

    deinit { json_object_put(root) }
}

public final class JSONDocument: @unchecked Sendable {
    let tree: JSONTree
    let object: OpaquePointer?

    init(tree: JSONTree, object: OpaquePointer?) {
        self.tree = tree
        self.object = object
    }

    /// Adopts a json-c tree: `json_object_put` is called on it when the last view is gone.
    init(adopting root: OpaquePointer?) {
        tree = JSONTree(adopting: root)
        object = root
    }

    /// Parses JSON text (strict); throws `QMPError.invalidJSON` with the error's byte offset.
    public convenience init(parsing text: String) throws {
        self.init(adopting: try JSONC.parseDocument(text))
    }

    /// Builds a document from a Swift value (for tests and replay servers).
    public convenience init(_ value: JSONValue) {
        self.init(adopting: value.makeJSONC())
    }

    /// The object member `key`; nil when absent or when this is not an object. A present JSON null
    /// member is a document whose `isNull` is true.
    public subscript(key: String) -> JSONDocument? {
        guard let object, json_object_is_type(object, json_type_object) != 0 else { return nil }
        var member: OpaquePointer?
        guard json_object_object_get_ex(object, key, &member) != 0 else { return nil }
        return JSONDocument(tree: tree, object: member)
    }

    /// The array element at `index`; nil when out of range or when this is not an array.
    public subscript(index: Int) -> JSONDocument? {
        guard let object, json_object_is_type(object, json_type_array) != 0 else { return nil }
        guard index >= 0, index < json_object_array_length(object) else { return nil }
        return JSONDocument(tree: tree, object: json_object_array_get_idx(object, index))
    }

    public var string: String? {
        guard let object, json_object_is_type(object, json_type_string) != 0 else { return nil }
        return JSONC.string(object)
    }

    /// Integers only (a JSON number written with a fraction or exponent is a `double`).
    public var int: Int64? {
        guard let object, json_object_is_type(object, json_type_int) != 0 else { return nil }
        return json_object_get_int64(object)
    }

    /// Any JSON number as a Double.
    public var double: Double? {
        guard let object else { return nil }
        switch json_object_get_type(object) {
        case json_type_double, json_type_int: return json_object_get_double(object)
        default: return nil
        }
    }

    public var bool: Bool? {
        guard let object, json_object_is_type(object, json_type_boolean) != 0 else { return nil }
        return json_object_get_boolean(object) != 0
    }

    public var isNull: Bool { object == nil }

    /// Object member names in the order they were received; empty for non-objects.
    public var keys: [String] {
        guard let object, json_object_is_type(object, json_type_object) != 0 else { return [] }
        var names: [String] = []
        names.reserveCapacity(Int(json_object_object_length(object)))
        JSONC.forEachMember(object) { name, _ in names.append(name) }
        return names
    }

    /// Number of members (object) or elements (array); 0 otherwise.
    public var count: Int {
        guard let object else { return 0 }
        switch json_object_get_type(object) {
        case json_type_object: return Int(json_object_object_length(object))
        case json_type_array: return json_object_array_length(object)
        default: return 0
        }
    }

    public var elements: [JSONDocument]? {
        guard let object, json_object_is_type(object, json_type_array) != 0 else { return nil }
        return (0..<json_object_array_length(object)).map { JSONDocument(tree: tree, object: json_object_array_get_idx(object, $0)) }
    }

    /// The whole subtree converted to Swift values.
    public var value: JSONValue { JSONValue(jsonc: object) }

    public func serialized(pretty: Bool = false) -> String {
        tree.printLock.withLock { _ in JSONC.serialize(object, pretty: pretty) }
    }
}

extension JSONDocument: CustomStringConvertible {
    public var description: String { serialized() }
}

// QMPArguments: the ARGUMENTS-JSON of a one-shot command, checked before anything is sent.

public enum QMPArguments {
    /// Parses `text` as a command's arguments: strict JSON that must be an object
    /// (QMP takes named arguments only). Errors carry the byte offset of the problem.
    public static func parse(_ text: String) throws -> JSONValue {
        let value = try JSONValue.parse(text)
        guard case .object = value else {
            let offset =
                text.utf8.firstIndex { !JSONC.isJSONWhitespace($0) }.map { text.utf8.distance(from: text.utf8.startIndex, to: $0) } ?? 0
            throw QMPError.invalidJSON(offset: offset, reason: #"QMP arguments must be a JSON object, such as {"device": "virtio0"}"#)
        }
        return value
    }

    /// Two lines that show where `offset` falls in a one-line rendering of `text`:
    /// the text (control characters shown as spaces, long text cut around the spot) and a caret.
    public static func pointer(to offset: Int, in text: String) -> String {
        let bytes = Array(text.utf8)
        let clamped = max(0, min(offset, bytes.count))
        let start = max(0, clamped - 60)
        let end = min(bytes.count, clamped + 20)
        let before = String(decoding: bytes[start..<clamped], as: UTF8.self)
        let shown = String(decoding: bytes[start..<end], as: UTF8.self)
        let flatten = { (text: String) in String(text.map { $0.isNewline || $0 == "\t" ? " " : $0 }) }
        let prefix = start > 0 ? "..." : ""
        return "  \(prefix)\(flatten(shown))\(end < bytes.count ? "..." : "")\n  "
            + String(repeating: " ", count: prefix.count + before.count) + "^"
    }
}

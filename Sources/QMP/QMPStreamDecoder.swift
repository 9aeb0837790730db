// QMPStreamDecoder: splits a QMP byte stream into JSON messages with one incremental json-c tokener.
import CJSONC

#if canImport(Glibc)
    import Glibc
#endif

/// Feed it bytes as they arrive from the socket, in any chunking: a message split across reads,
/// several messages in one read and CRLF separators all decode the same. Each message must be a
/// JSON object (QMP sends nothing else). After an error the stream is unusable and every further
/// `feed` throws the same error. Not thread-safe: one decoder per connection, used by its reader.
public final class QMPStreamDecoder {
    private let tokener: UnsafeMutablePointer<json_tokener>
    /// Bytes of the message in progress that arrived in earlier chunks (only its text is kept).
    private var partial: [UInt8] = []
    private var partialLength = 0
    private var failure: QMPError?
    /// Total bytes fed so far (error offsets are counted from the start of the stream).
    public private(set) var bytesFed = 0
    /// A message larger than this ends the stream with an error instead of exhausting memory.
    public let maxMessageBytes: Int

    public init(maxMessageBytes: Int = 256 << 20) {
        // json_tokener_new only fails when malloc does; there is nothing sensible left to do then.
        guard let tokener = json_tokener_new() else { fatalError("json-c: out of memory creating a tokener") }
        json_tokener_set_flags(tokener, Int32(JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS | JSON_TOKENER_VALIDATE_UTF8))
        self.tokener = tokener
        self.maxMessageBytes = maxMessageBytes
    }

    deinit { json_tokener_free(tokener) }

    /// True between messages (nothing but whitespace received since the last complete message).
    public var isAtMessageBoundary: Bool { partialLength == 0 }

    /// Decodes `bytes`, calling `body` with each complete message and its text as received
    /// (without surrounding whitespace). The text buffer is only valid during the call.
    public func feed(_ bytes: UnsafeRawBufferPointer, _ body: (JSONDocument, UnsafeRawBufferPointer) throws -> Void) throws {
        if let failure { throw failure }
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        let count = bytes.count
        var offset = 0
        defer { bytesFed += count }
        while offset < count {
            if partialLength == 0 {
                while offset < count, JSONC.isJSONWhitespace(bytes[offset]) { offset += 1 }
                if offset == count { break }
            }
            let start = offset
            let object = json_tokener_parse_ex(tokener, (base + start).assumingMemoryBound(to: CChar.self), Int32(count - start))
            let status = json_tokener_get_error(tokener)
            if status == json_tokener_continue {
                append(UnsafeRawBufferPointer(rebasing: bytes[start..<count]))
                if partialLength > maxMessageBytes {
                    throw fail(.protocolViolation("a message exceeds \(maxMessageBytes) bytes"))
                }
                return
            }
            let end = json_tokener_get_parse_end(tokener)
            guard status == json_tokener_success else {
                throw fail(.invalidJSON(offset: bytesFed + start + end, reason: JSONC.reason(status)))
            }
            json_tokener_reset(tokener)
            offset = start + end
            let document = JSONDocument(adopting: object)
            guard let object, json_object_is_type(object, json_type_object) != 0 else {
                throw fail(.protocolViolation("expected a JSON object, got \(document.serialized().prefix(80))"))
            }
            // The text: this chunk's part, prefixed by what earlier chunks held.
            var textEnd = offset
            while textEnd > start, JSONC.isJSONWhitespace(bytes[textEnd - 1]) { textEnd -= 1 }
            let text = UnsafeRawBufferPointer(rebasing: bytes[start..<textEnd])
            if partialLength == 0 {
                try body(document, text)
            } else {
                append(text)
                let length = partialLength
                partialLength = 0
                try partial.withUnsafeBytes { try body(document, UnsafeRawBufferPointer(rebasing: $0[0..<length])) }
            }
        }
    }

    /// Convenience for tests and tools: decodes `bytes` and returns the complete messages.
    public func feed(_ bytes: [UInt8]) throws -> [JSONDocument] {
        var messages: [JSONDocument] = []
        try bytes.withUnsafeBytes { raw in try feed(raw) { document, _ in messages.append(document) } }
        return messages
    }

    /// Reports the end of the stream: a message cut short is an error.
    public func finish() throws {
        if let failure { throw failure }
        if partialLength > 0 {
            throw fail(.disconnected(reason: "the stream ended inside a message after \(partialLength) bytes of it"))
        }
    }

    private func append(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
        let start = partialLength
        let needed = start + bytes.count
        if partial.count < needed { partial.append(contentsOf: repeatElement(0, count: needed - partial.count)) }
        partial.withUnsafeMutableBytes { target in
            target.baseAddress.map { ($0 + start).copyMemory(from: source, byteCount: bytes.count) }
        }
        partialLength = needed
    }

    private func fail(_ error: QMPError) -> QMPError {
        failure = error
        partialLength = 0
        return error
    }
}

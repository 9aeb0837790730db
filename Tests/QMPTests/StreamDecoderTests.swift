// The incremental decoder: any chunking of real QMP traffic decodes the same; bad bytes end in typed errors.
import Foundation
import QMP
import Testing

/// The recorded session (see Fixtures/PROVENANCE.md) and its messages split independently on CRLF.
enum RecordedSession {
    static let bytes: [UInt8] = {
        guard let url = Bundle.module.url(forResource: "qemu-10.0.2-q35-session", withExtension: "bin", subdirectory: "Fixtures"),
            let data = try? Data(contentsOf: url)
        else { return [] }
        return Array(data)
    }()

    /// QEMU ends every message with CRLF and escapes line breaks inside strings, so lines are messages.
    static let expected: [JSONValue] = {
        String(decoding: bytes, as: UTF8.self).components(separatedBy: "\r\n").filter { !$0.isEmpty }.compactMap {
            try? JSONValue.parse($0)
        }
    }()
}

/// A small deterministic generator so failures reproduce (the seed is printed in the test name).
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("QMP stream decoder")
struct StreamDecoderTests {
    @Test("the recorded session holds the expected traffic")
    func fixtureIsSane() throws {
        #expect(RecordedSession.bytes.count > 200_000)
        #expect(RecordedSession.expected.count == 16)
        let whole = try QMPStreamDecoder().feed(RecordedSession.bytes)
        #expect(whole.map(\.value) == RecordedSession.expected)
        #expect(whole.first?["QMP"] != nil)
        #expect(whole.contains { $0["error"]?["class"]?.string == "CommandNotFound" })
    }

    @Test("recorded traffic in random chunkings decodes to the same messages", arguments: 1...12)
    func randomChunkings(seed: UInt64) throws {
        var random = SplitMix64(state: seed)
        let bytes = RecordedSession.bytes
        let decoder = QMPStreamDecoder()
        var decoded: [JSONValue] = []
        var texts: [String] = []
        var offset = 0
        while offset < bytes.count {
            // Mostly tiny chunks, sometimes big ones: both stress the tokener's state across reads.
            let limit = Int.random(in: 0..<4, using: &random) == 0 ? 70_000 : 64
            let size = min(bytes.count - offset, Int.random(in: 1...limit, using: &random))
            try bytes[offset..<offset + size].withUnsafeBytes { chunk in
                try decoder.feed(chunk) { message, text in
                    decoded.append(message.value)
                    texts.append(String(decoding: text, as: UTF8.self))
                }
            }
            offset += size
        }
        try decoder.finish()
        #expect(decoded == RecordedSession.expected)
        #expect(texts.allSatisfy { $0.hasPrefix("{") && $0.hasSuffix("}") })
        #expect(decoder.bytesFed == bytes.count)
    }

    @Test("a message split at every byte position decodes once, with its exact text")
    func splitAtEveryPosition() throws {
        let stream = Array(
            (#"{"return": {"status": "running", "s": "a\"b\u00e9}{"}, "id": 12}"# + "\r\n"
                + #"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}"# + "\r\n").utf8)
        for split in 0...stream.count {
            let decoder = QMPStreamDecoder()
            var texts: [String] = []
            for part in [stream[0..<split], stream[split...]] {
                try part.withUnsafeBytes { chunk in
                    try decoder.feed(chunk) { _, text in texts.append(String(decoding: text, as: UTF8.self)) }
                }
            }
            #expect(texts.count == 2, "split at \(split)")
            #expect(texts.first == #"{"return": {"status": "running", "s": "a\"b\u00e9}{"}, "id": 12}"#, "split at \(split)")
            #expect(decoder.isAtMessageBoundary)
        }
    }

    @Test("several messages in one read, with and without separators")
    func severalMessagesPerRead() throws {
        let messages = try QMPStreamDecoder().feed(Array(#"{"a": 1}{"b": 2}  {"c": 3}"#.utf8) + [13, 10, 13, 10] + Array(#"{"d":4}"#.utf8))
        #expect(messages.map(\.keys) == [["a"], ["b"], ["c"], ["d"]])
    }

    @Test(
        "garbage ends the stream with a typed error at the right offset",
        arguments: [
            ("QEMU 10.0.2 monitor - type 'help' for more information\r\n(qemu) ", 0),
            (#"{"return": {}}"# + "\r\n" + #"{"oops": tru}"#, 28),
        ])
    func garbage(text: String, offset: Int) throws {
        try expectGarbage(Array(text.utf8), offset: offset)
    }

    @Test("invalid UTF-8 inside a string is an error")
    func invalidUTF8() throws {
        try expectGarbage(Array(#"{"a": "x"#.utf8) + [0xFF] + Array(#""}"#.utf8), offset: 8)
    }

    private func expectGarbage(_ bytes: [UInt8], offset: Int) throws {
        let decoder = QMPStreamDecoder()
        #expect {
            _ = try decoder.feed(bytes)
        } throws: { error in
            guard case QMPError.invalidJSON(let at, _) = error else { return false }
            return at == offset
        }
        // A broken stream stays broken.
        #expect(throws: QMPError.self) { _ = try decoder.feed(Array("{}".utf8)) }
    }

    @Test("a JSON value that is not an object is a protocol violation")
    func nonObject() {
        #expect(throws: QMPError.protocolViolation("expected a JSON object, got [1,2]")) {
            _ = try QMPStreamDecoder().feed(Array("[1, 2]".utf8))
        }
    }

    @Test("a stream that ends inside a message is reported by finish()")
    func truncated() throws {
        let decoder = QMPStreamDecoder()
        #expect(try decoder.feed(Array(#"{"return": {"status""#.utf8)).isEmpty)
        #expect(!decoder.isAtMessageBoundary)
        #expect(throws: QMPError.self) { try decoder.finish() }
    }

    @Test("random bytes never crash and end in a typed error or in whole messages", arguments: 1...40)
    func randomBytes(seed: UInt64) throws {
        var random = SplitMix64(state: seed &* 7919)
        let alphabet = Array(#"{}[]":,.-+0123456789eEtrufalsn \ \r\n"#.utf8)
        let count = Int.random(in: 1...400, using: &random)
        let bytes: [UInt8] = (0..<count).map { _ in
            Bool.random(using: &random)
                ? alphabet[Int.random(in: 0..<alphabet.count, using: &random)] : UInt8.random(in: 0...255, using: &random)
        }
        let decoder = QMPStreamDecoder()
        var failure: QMPError?
        var offset = 0
        while offset < bytes.count, failure == nil {
            let size = min(bytes.count - offset, Int.random(in: 1...16, using: &random))
            do {
                _ = try decoder.feed(Array(bytes[offset..<offset + size]))
            } catch let error as QMPError {
                failure = error
            }
            offset += size
        }
        if failure == nil {
            do { try decoder.finish() } catch let error as QMPError { failure = error }
        }
        // Random input that happens to be whole messages is fine; otherwise the error is typed.
        if let failure {
            switch failure {
            case .invalidJSON, .protocolViolation, .disconnected: break
            default: Issue.record("unexpected error \(failure)")
            }
        } else {
            #expect(decoder.isAtMessageBoundary)
        }
    }
}

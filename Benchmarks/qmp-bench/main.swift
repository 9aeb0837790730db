// qmp-bench: in-process timings for Benchmarks/qmp.sh (QMP round trips; schema decode, json-c vs Foundation).
//
//   qmp-bench roundtrips SOCKET N   N sequential query-status on one connection, run on the
//                                   connection's own thread (client.withExecutor); prints commands/s
//   qmp-bench roundtrips-global SOCKET N   the same from a task on the global executor
//   qmp-bench decode FILE N         decodes FILE (a raw query-qmp-schema reply) N times each way;
//                                   prints "jsonc MB/s", "jsonc+convert MB/s", "foundation MB/s"
import Foundation
import QMP

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("qmp-bench: \(message)\n".utf8))
    exit(1)
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

func roundtrips(socket: String, count: Int, onConnectionThread: Bool) async throws {
    let client = try await QMPClient.connect(socketPath: socket)
    defer { client.close() }
    func loop() async throws -> Double {
        for _ in 0..<200 { _ = try await client.execute("query-status") }
        let clock = ContinuousClock()
        let start = clock.now
        for _ in 0..<count {
            let status = try await client.execute("query-status")
            guard status["status"] != nil else { fail("query-status returned \(status)") }
        }
        return Double(count) / seconds(clock.now - start)
    }
    let rate = onConnectionThread ? try await client.withExecutor { try await loop() } : try await loop()
    print(String(format: "%.0f", rate))
}

/// Times each body once per iteration, interleaved so that load on a shared machine hits all of
/// them alike, and returns each one's best MB/s (its least disturbed run).
func throughput(bytes: Int, iterations: Int, _ bodies: [() throws -> Void]) throws -> [Double] {
    let clock = ContinuousClock()
    var best = [Double](repeating: .infinity, count: bodies.count)
    for _ in 0..<iterations {
        for (index, body) in bodies.enumerated() {
            let start = clock.now
            try body()
            best[index] = min(best[index], seconds(clock.now - start))
        }
    }
    return best.map { Double(bytes) / $0 / 1e6 }
}

func decode(file: String, iterations: Int) throws {
    guard let data = FileManager.default.contents(atPath: file), !data.isEmpty else { fail("cannot read \(file)") }
    let bytes = Array(data)
    // The client's path: the reply arrives in socket-sized chunks and is decoded lazily.
    let chunk = 64 * 1024
    func decodeChunks(_ body: (JSONDocument) -> Void) throws {
        let decoder = QMPStreamDecoder()
        try bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let end = min(raw.count, offset + chunk)
                try decoder.feed(UnsafeRawBufferPointer(rebasing: raw[offset..<end])) { document, _ in body(document) }
                offset = end
            }
        }
    }
    var entries = 0
    try decodeChunks { entries = $0["return"]?.count ?? 0 }
    guard entries > 100 else { fail("\(file) is not a query-qmp-schema reply") }

    let rates = try throughput(
        bytes: bytes.count, iterations: iterations,
        [
            { try decodeChunks { document in entries = document["return"]?.count ?? 0 } },
            {
                try decodeChunks { document in
                    if case .object(let members) = document.value, case .array(let list)? = members["return"] { entries = list.count }
                }
            },
            {
                let object = try JSONSerialization.jsonObject(with: data)
                entries = ((object as? [String: Any])?["return"] as? [Any])?.count ?? 0
            },
        ])
    print(
        String(
            format: "jsonc %.1f\njsonc+convert %.1f\nfoundation %.1f\nbytes %d\nentries %d", rates[0], rates[1], rates[2], bytes.count,
            entries))
}

/// Per-message costs without the socket: decoding one query-status reply, serializing one command.
func micro(iterations: Int) throws {
    let reply = Array(#"{"return": {"status": "prelaunch", "running": false}, "id": 12345}"#.utf8) + [13, 10]
    let decoder = QMPStreamDecoder()
    let clock = ContinuousClock()
    var start = clock.now
    var found = 0
    try reply.withUnsafeBytes { raw in
        for _ in 0..<iterations {
            try decoder.feed(raw) { document, _ in if document["id"] != nil { found += 1 } }
        }
    }
    print(String(format: "decode %.2f us", seconds(clock.now - start) / Double(iterations) * 1e6))
    start = clock.now
    for index in 0..<iterations {
        let text = JSONValue.object(["execute": "query-status", "id": .int(Int64(index))]).serialized()
        found += text.utf8.count
    }
    print(String(format: "serialize %.2f us (%d)", seconds(clock.now - start) / Double(iterations) * 1e6, found))
}

let arguments = CommandLine.arguments
guard arguments.count == 4, let count = Int(arguments[3]), count > 0 else {
    fail("usage: qmp-bench roundtrips SOCKET N | qmp-bench decode FILE N")
}
do {
    switch arguments[1] {
    case "roundtrips": try await roundtrips(socket: arguments[2], count: count, onConnectionThread: true)
    case "roundtrips-global": try await roundtrips(socket: arguments[2], count: count, onConnectionThread: false)
    case "decode": try decode(file: arguments[2], iterations: count)
    case "micro": try micro(iterations: count)
    default: fail("unknown mode \(arguments[1])")
    }
} catch {
    fail("\(error)")
}

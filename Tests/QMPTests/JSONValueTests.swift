// JSONValue and JSONDocument: json-c serialization, strict parsing with error offsets, lazy reading.
import QMP
import Testing

@Suite("JSON values on json-c")
struct JSONValueTests {
    @Test("serialization escapes every string correctly and sorts keys")
    func serializationEscapes() throws {
        let nasty = "quote \" backslash \\ newline \n tab \t nul \u{0} slash / unicode é 🙂"
        let value: JSONValue = ["b": .string(nasty), "a": [1, 2.5, true, nil], "c": ["x": -9_223_372_036_854_775_808]]
        let text = value.serialized()
        #expect(text.hasPrefix(#"{"a":[1,2.5,true,null],"b":"quote \" backslash \\ newline \n tab \t nul \u0000 slash / unicode"#))
        #expect(try JSONValue.parse(text) == value)
        #expect(try JSONValue.parse(value.serialized(pretty: true)) == value)
        #expect(value.serialized(pretty: true).contains("\n"))
    }

    @Test("doubles keep their shortest form; non-finite numbers become null")
    func doubles() throws {
        #expect(JSONValue.double(0.1).serialized() == "0.1")
        #expect(JSONValue.array([.double(.infinity), .double(.nan)]).serialized() == "[null,null]")
        #expect(try JSONValue.parse("1e3") == .double(1000))
        #expect(try JSONValue.parse("12") == .int(12))
    }

    @Test(
        "invalid JSON reports the byte offset of the error",
        arguments: [
            (#"{"a": x}"#, 6), (#"{"a": 1,}"#, 8), ("[1, 2", 5), (#"{"a": 1} }"#, 9), ("", 0), ("   ", 3), ("nul", 3),
        ])
    func invalidJSONOffsets(text: String, offset: Int) {
        #expect {
            _ = try JSONValue.parse(text)
        } throws: { error in
            guard case QMPError.invalidJSON(let at, let reason) = error else { return false }
            return at == offset && !reason.isEmpty
        }
    }

    @Test("a document converts only what is read, and views outlive their parent")
    func lazyDocument() throws {
        var leaf: JSONDocument?
        do {
            let document = try JSONDocument(parsing: #"{"return": {"list": [{"name": "a"}, {"name": "b"}], "n": null}, "id": 7}"#)
            #expect(document.keys == ["return", "id"])
            #expect(document["id"]?.int == 7)
            #expect(document["id"]?.double == 7)
            #expect(document["id"]?.string == nil)
            #expect(document["missing"] == nil)
            #expect(document["return"]?["n"]?.isNull == true)
            #expect(document["return"]?["list"]?.elements?.count == 2)
            #expect(document["return"]?["list"]?[5] == nil)
            leaf = document["return"]?["list"]?[1]
        }
        #expect(leaf?["name"]?.string == "b")
        #expect(leaf?.serialized() == #"{"name":"b"}"#)
        #expect(leaf?.value == ["name": "b"])
    }
}

@Suite("QEMU versions")
struct QEMUVersionTests {
    @Test(
        "parsing version text",
        arguments: [
            ("10.0.2", QEMUVersion(major: 10, minor: 0, micro: 2)),
            ("QEMU emulator version 9.2.0 (Debian 1:9.2.0+ds-1)", QEMUVersion(major: 9, minor: 2, micro: 0)),
            ("v8.1", QEMUVersion(major: 8, minor: 1, micro: 0)),
        ])
    func parsing(text: String, expected: QEMUVersion) {
        #expect(QEMUVersion(parsing: text) == expected)
    }

    @Test func rejectsTextWithoutVersion() {
        #expect(QEMUVersion(parsing: "QEMU emulator") == nil)
        #expect(QEMUVersion(parsing: "version 9") == nil)
    }

    @Test func ordersAndEncodes() throws {
        #expect(QEMUVersion(major: 9, minor: 1, micro: 0) < QEMUVersion(major: 10, minor: 0, micro: 0))
        #expect(QEMUVersion(major: 10, minor: 0, micro: 2).description == "10.0.2")
    }
}

@Suite("one-shot command arguments")
struct QMPArgumentsTests {
    @Test func acceptsAnObject() throws {
        #expect(try QMPArguments.parse(#" {"path": "/machine", "property": "type"} "#) == ["path": "/machine", "property": "type"])
    }

    @Test("rejects what is not an object, pointing at it", arguments: [("[1]", 0), ("  \"x\"", 2), ("42", 0)])
    func rejectsNonObjects(text: String, offset: Int) {
        #expect {
            _ = try QMPArguments.parse(text)
        } throws: { error in
            guard case QMPError.invalidJSON(let at, let reason) = error else { return false }
            return at == offset && reason.contains("JSON object")
        }
    }

    @Test func pointerMarksTheOffset() {
        #expect(QMPArguments.pointer(to: 6, in: #"{"a": x}"#) == "  {\"a\": x}\n        ^")
        let long = String(repeating: "a", count: 100) + "!" + String(repeating: "b", count: 100)
        let lines = QMPArguments.pointer(to: 100, in: long).split(separator: "\n")
        #expect(lines.count == 2)
        let caret = lines[1].count - 1
        #expect(Array(lines[0])[caret] == "!")
    }
}

@Suite("command timeouts")
struct QMPTimeoutsTests {
    @Test(
        "slow commands get longer limits; exact names beat prefixes; longer prefixes beat shorter",
        arguments: [
            ("query-status", Duration.seconds(30)), ("query-qmp-schema", .seconds(60)), ("blockdev-add", .seconds(120)),
            ("migrate-set-parameters", .seconds(120)), ("query-migrate", .seconds(60)), ("x-query-virtio", .seconds(60)),
        ])
    func defaults(command: String, limit: Duration) {
        #expect(QMPTimeouts.default.timeout(for: command) == limit)
    }

    @Test func customTable() {
        let table = QMPTimeouts(standard: .seconds(1), commands: ["a-b": .seconds(5)], prefixes: ["a-": .seconds(2), "a-bc": .seconds(3)])
        #expect(table.timeout(for: "a-b") == .seconds(5))
        #expect(table.timeout(for: "a-bcd") == .seconds(3))
        #expect(table.timeout(for: "a-x") == .seconds(2))
        #expect(table.timeout(for: "b") == .seconds(1))
    }
}

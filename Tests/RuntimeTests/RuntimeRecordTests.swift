import Definitions
// state.json: what save writes (JSONEncoder), load reads back equal (json-c), and bad files read as nothing.
import Foundation
import Support
import Testing

@testable import Runtime

@Suite struct RuntimeRecordTests {
    static func record(exit: ExitRecord?, optionals: Bool) -> RuntimeRecord {
        var record = RuntimeRecord(
            name: "web",
            argv: ["/usr/bin/qemu-system-x86_64", "-name", "guest=web,process=sevvm-web", "-append", "console=ttyS0 é \"q\" \\ /"],
            qemuPath: "/usr/bin/qemu-system-x86_64", qemuVersion: "10.0.2",
            firmwarePath: optionals ? "/usr/share/ovmf/OVMF.amdsev.fd" : nil,
            mode: optionals ? .snp : .none, accel: "tcg", startedAt: Date(timeIntervalSince1970: 1_795_000_000),
            warnings: optionals ? ["virtio-blk needs SWIOTLB", "second"] : [])
        if optionals {
            record.pid = 4242
            record.recorderPid = 4243
            record.expectedDigest = String(repeating: "ab", count: 48)
            record.expectedDigestNote = "note"
            record.launchMeasurement = "bWVhc3VyZQ=="
        }
        record.exit = exit
        return record
    }

    @Test(
        arguments: [
            (nil, false), (nil, true),
            (ExitRecord(kind: .stopped, reason: "guest powered off", at: Date(timeIntervalSince1970: 1_795_000_100)), true),
            (ExitRecord(kind: .crashed, reason: "QEMU was killed (SIGKILL)", at: Date(timeIntervalSince1970: 1_795_000_200)), false),
        ] as [(ExitRecord?, Bool)])
    func savedRecordsReadBackEqual(exit: ExitRecord?, optionals: Bool) throws {
        let folder = NSTemporaryDirectory() + "/sevvm-record-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let record = Self.record(exit: exit, optionals: optionals)
        try record.save(folder + "/state.json")
        #expect(RuntimeRecord.load(folder + "/state.json") == record)
    }

    @Test(arguments: [
        "", "{", "[]", "{\"name\": \"web\"}",
        "{\"name\":\"w\",\"argv\":[1],\"qemuPath\":\"q\",\"qemuVersion\":\"1\",\"mode\":\"none\",\"accel\":\"tcg\",\"startedAt\":\"2026-11-29T00:00:00Z\"}",
        "{\"name\":\"w\",\"argv\":[],\"qemuPath\":\"q\",\"qemuVersion\":\"1\",\"mode\":\"tdx\",\"accel\":\"tcg\",\"startedAt\":\"2026-11-29T00:00:00Z\"}",
        "{\"name\":\"w\",\"argv\":[],\"qemuPath\":\"q\",\"qemuVersion\":\"1\",\"mode\":\"none\",\"accel\":\"tcg\",\"startedAt\":\"yesterday\"}",
        "{\"name\":\"w\",\"argv\":[],\"qemuPath\":\"q\",\"qemuVersion\":\"1\",\"mode\":\"none\",\"accel\":\"tcg\",\"startedAt\":\"2026-11-29T00:00:00Z\",\"exit\":{\"kind\":\"gone\",\"reason\":\"r\",\"at\":\"2026-11-29T00:00:00Z\"}}",
    ])
    func malformedFilesReadAsNothing(_ text: String) throws {
        let path = NSTemporaryDirectory() + "/sevvm-record-\(UUID().uuidString).json"
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(RuntimeRecord.load(path) == nil)
    }

    @Test func aMinimalValidFileReads() throws {
        let path = NSTemporaryDirectory() + "/sevvm-record-\(UUID().uuidString).json"
        let text =
            "{\"name\":\"w\",\"argv\":[],\"qemuPath\":\"q\",\"qemuVersion\":\"1\",\"mode\":\"sev-es\",\"accel\":\"kvm\",\"startedAt\":\"2026-11-29T00:00:00Z\"}"
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let record = try #require(RuntimeRecord.load(path))
        #expect(record.mode == .sevES)
        #expect(record.pid == nil && record.exit == nil && record.warnings.isEmpty)
        #expect(Timestamp.format(record.startedAt) == "2026-11-29T00:00:00Z")
    }
}

/// `checkKnown`: a typo must not read as a stopped VM, but a VM whose definition was deleted
/// while it ran must still be reachable.
@Suite struct KnownVMTests {
    @Test func definitionOrRuntimeFolderMakesAVMKnown() throws {
        let folder = try TemporaryFolder()
        let workspace = Workspace(root: folder.path)
        try FileManager.default.createDirectory(atPath: workspace.vmsDirectory, withIntermediateDirectories: true)
        try Data("{}".utf8).write(to: URL(fileURLWithPath: workspace.definitionPath(for: "defined")))
        try FileManager.default.createDirectory(atPath: workspace.runtimeDirectory(for: "orphan"), withIntermediateDirectories: true)

        try VMRuntime(workspace: workspace, name: "defined").checkKnown()
        try VMRuntime(workspace: workspace, name: "orphan").checkKnown()
        #expect(throws: DefinitionError.notFound(name: "typo", path: workspace.definitionPath(for: "typo"))) {
            try VMRuntime(workspace: workspace, name: "typo").checkKnown()
        }
    }
}

// The vms/ store on a real temporary workspace: create/list/edit/rm, races, provisioning with real qemu-img.
import Definitions
import Foundation
import Support
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A fresh workspace folder, removed by the caller's defer.
func temporaryWorkspace() throws -> Workspace {
    let path = NSTemporaryDirectory() + "sevvm-defs-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return Workspace(root: path)
}

private let hasQemuImg = ProcessRunner.which("qemu-img") != nil
private let hasQEMU = ProcessRunner.which("qemu-system-x86_64") != nil

@Suite struct DefinitionStoreTests {
    @Test func createListLoadSaveRemove() throws {
        let workspace = try temporaryWorkspace()
        defer { try? FileManager.default.removeItem(atPath: workspace.root) }
        let store = DefinitionStore(workspace: workspace)
        #expect(try store.list().isEmpty)
        var web = VMDefinition(name: "web", mode: .snp, memoryMiB: 1024, vcpus: 2)
        try store.create(web)
        try store.create(VMDefinition(name: "db"))
        #expect(try store.names() == ["db", "web"])
        #expect(try store.load("web") == web)
        web.vcpus = 6
        try store.save(web)
        #expect(try store.load("web").vcpus == 6)
        let removed = try store.remove("web")
        #expect(removed == [workspace.definitionPath(for: "web")])
        #expect(try store.list().map(\.name) == ["db"])
        #expect(throws: DefinitionError.notFound(name: "web", path: workspace.definitionPath(for: "web"))) { try store.load("web") }
        // Nothing but definitions and the lock in vms/.
        #expect(try FileManager.default.contentsOfDirectory(atPath: workspace.vmsDirectory).sorted() == [".lock", "db.json"])
    }

    @Test func secondCreateOfOneNameIsRefused() throws {
        let workspace = try temporaryWorkspace()
        defer { try? FileManager.default.removeItem(atPath: workspace.root) }
        let store = DefinitionStore(workspace: workspace)
        try store.create(VMDefinition(name: "web"))
        #expect(throws: DefinitionError.alreadyExists(name: "web", path: workspace.definitionPath(for: "web"))) {
            try store.create(VMDefinition(name: "web", vcpus: 2))
        }
        #expect(try store.load("web").vcpus == 4)
    }

    /// Sixteen threads create the same VM at once: exactly one wins, every other one is told it exists.
    @Test func concurrentCreatesYieldExactlyOneDefinition() throws {
        let workspace = try temporaryWorkspace()
        defer { try? FileManager.default.removeItem(atPath: workspace.root) }
        let outcomes = Outcomes()
        DispatchQueue.concurrentPerform(iterations: 16) { index in
            let store = DefinitionStore(workspace: workspace)
            do {
                try store.create(VMDefinition(name: "race", vcpus: index + 1))
                outcomes.add("created")
            } catch DefinitionError.alreadyExists(let name, _) where name == "race" {
                outcomes.add("exists")
            } catch {
                outcomes.add("other: \(error)")
            }
        }
        let all = outcomes.all
        #expect(all.filter { $0 == "created" }.count == 1)
        #expect(all.filter { $0 == "exists" }.count == 15)
        let store = DefinitionStore(workspace: workspace)
        #expect(try store.names() == ["race"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: workspace.vmsDirectory).sorted() == [".lock", "race.json"])
    }

    @Test func brokenFileDoesNotHideTheOthers() throws {
        let workspace = try temporaryWorkspace()
        defer { try? FileManager.default.removeItem(atPath: workspace.root) }
        let store = DefinitionStore(workspace: workspace)
        try store.create(VMDefinition(name: "good"))
        try AtomicFile.write(#"{"schemaVersion": 1, "name": "bad", "vcpu": 2}"#, to: workspace.definitionPath(for: "bad"))
        try AtomicFile.write(#"{"schemaVersion": 1, "name": "other"}"#, to: workspace.definitionPath(for: "renamed"))
        let entries = try store.entries()
        #expect(entries.map(\.name) == ["bad", "good", "renamed"])
        #expect((try? entries[1].result.get())?.name == "good")
        guard case .failure(.unknownField(let file, let field, _)) = entries[0].result else {
            Issue.record("bad.json should fail with unknownField, got \(entries[0].result)")
            return
        }
        #expect(file == workspace.definitionPath(for: "bad"))
        #expect(field == "vcpu")
        guard case .failure(.invalidValue(_, "name", "other", _)) = entries[2].result else {
            Issue.record("a file whose name field differs must be refused, got \(entries[2].result)")
            return
        }
        #expect(throws: DefinitionError.self) { try store.list() }
    }

    @Test func editAppliesDottedKeysWithValidation() throws {
        let workspace = try temporaryWorkspace()
        defer { try? FileManager.default.removeItem(atPath: workspace.root) }
        let store = DefinitionStore(workspace: workspace)
        try store.create(VMDefinition(name: "web", mode: .snp))
        let assignments = try [
            "memory=4G", "vcpus=8", "snp.policy=smt,debug", "network.mode=user", "network.forwards=2222:22,8080:80", "cbitpos=51",
        ]
        .map(DefinitionEditor.parseAssignment)
        let edited = try store.update("web") { definition in definition = try DefinitionEditor.apply(assignments, to: definition) }
        #expect(edited.memoryMiB == 4096)
        #expect(edited.vcpus == 8)
        #expect(edited.snp.policy.rawValue == 0xB0000)
        #expect(edited.network.forwards.map(\.description) == ["2222:22", "8080:80"])
        #expect(try store.load("web") == edited)
        let cleared = try store.update("web") { definition in
            definition = try DefinitionEditor.apply([("cbitpos", "null")], to: definition)
        }
        #expect(cleared.cbitpos == nil)

        // Refusals leave the file untouched.
        let before = try store.load("web")
        #expect(throws: DefinitionError.self) {
            try store.update("web") { definition in definition = try DefinitionEditor.apply([("snp.policy", "0x10000")], to: definition) }
        }
        #expect(throws: DefinitionError.unknownKey(key: "name", reason: "a VM cannot be renamed by editing; create a new one")) {
            _ = try DefinitionEditor.apply([("name", "other")], to: before)
        }
        #expect(
            throws: DefinitionError.missingFile(
                file: workspace.definitionPath(for: "web"), field: "cdrom", path: workspace.root + "/nope.iso")
        ) {
            try store.update("web") { definition in definition = try DefinitionEditor.apply([("cdrom", "nope.iso")], to: definition) }
        }
        #expect(try store.load("web") == before)
    }

    @Test(.enabled(if: hasQemuImg, "qemu-img is not installed"))
    func createMakesDiskAndVarsAndRemoveDeletesOnlyThose() throws {
        let workspace = try temporaryWorkspace()
        defer { try? FileManager.default.removeItem(atPath: workspace.root) }
        let store = DefinitionStore(workspace: workspace)
        // A disk the user brings: rm must keep it.
        let userDisk = workspace.root + "/mine.raw"
        try AtomicFile.write(Data(count: 1 << 20), to: userDisk)
        let vars = workspace.root + "/VARS_TEMPLATE.fd"
        try AtomicFile.write(Data(repeating: 0xAB, count: 4096), to: vars)
        var definition = VMDefinition(name: "web", mode: .sev)
        definition.disks = [Disk(path: userDisk, bus: .virtioBlk)]
        let (written, warnings) = try store.create(
            definition, provisioning: ProvisionRequest(newDiskBytes: 64 << 20, varsTemplate: vars))
        #expect(written.disks.map(\.path) == ["images/web.qcow2", userDisk])
        #expect(written.disks.map(\.format) == ["qcow2", "raw"])
        #expect(written.created == CreatedFiles(disks: ["images/web.qcow2"], varsCopy: "images/web-OVMF_VARS.fd"))
        #expect(warnings.count == 1)
        #expect(warnings.first?.contains("SWIOTLB") == true)
        #expect(DiskImage.format(of: workspace.root + "/images/web.qcow2") == "qcow2")
        #expect(FileManager.default.contents(atPath: workspace.root + "/images/web-OVMF_VARS.fd") == Data(repeating: 0xAB, count: 4096))

        let removed = try store.remove("web")
        #expect(removed.contains(workspace.root + "/images/web.qcow2"))
        #expect(removed.contains(workspace.root + "/images/web-OVMF_VARS.fd"))
        #expect(access(userDisk, F_OK) == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: workspace.imagesDirectory).isEmpty)
    }

    @Test(.enabled(if: hasQemuImg, "qemu-img is not installed"))
    func failedCreateLeavesNothingBehind() throws {
        let workspace = try temporaryWorkspace()
        defer { try? FileManager.default.removeItem(atPath: workspace.root) }
        let store = DefinitionStore(workspace: workspace)
        var definition = VMDefinition(name: "web")
        definition.cdrom = workspace.root + "/missing.iso"
        #expect(
            throws: DefinitionError.missingFile(
                file: workspace.definitionPath(for: "web"), field: "cdrom", path: workspace.root + "/missing.iso")
        ) {
            _ = try store.create(definition, provisioning: ProvisionRequest(newDiskBytes: 16 << 20))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: workspace.imagesDirectory).isEmpty)
        #expect(!store.exists("web"))
    }

    /// A real QEMU holds its pidfile lock: list sees it running and rm refuses; after a SIGKILL it is crashed.
    @Test(.enabled(if: hasQEMU, "qemu-system-x86_64 is not installed"))
    func liveStateFollowsARealQEMU() throws {
        let workspace = try temporaryWorkspace()
        defer { try? FileManager.default.removeItem(atPath: workspace.root) }
        let store = DefinitionStore(workspace: workspace)
        try store.create(VMDefinition(name: "web"))
        #expect(LiveState.probe(workspace: workspace, name: "web") == .stopped)
        try AtomicFile.makeDirectory(workspace.runtimeDirectory(for: "web"), permissions: 0o700)
        let pidfile = LiveState.pidfilePath(workspace: workspace, name: "web")
        let qemu = Process()
        qemu.executableURL = URL(fileURLWithPath: try #require(ProcessRunner.which("qemu-system-x86_64")))
        qemu.arguments = ["-machine", "none", "-S", "-nodefaults", "-display", "none", "-pidfile", pidfile]
        qemu.standardOutput = FileHandle.nullDevice
        qemu.standardError = FileHandle.nullDevice
        try qemu.run()
        let pid = qemu.processIdentifier
        defer {
            kill(pid, SIGKILL)
            qemu.waitUntilExit()
        }
        var state = LiveState.stopped
        for _ in 0..<200 {
            state = LiveState.probe(workspace: workspace, name: "web")
            if state != .stopped, case .running = state { break }
            usleep(20_000)
        }
        #expect(state == .running(pid: pid))
        #expect(throws: DefinitionError.vmRunning(name: "web", pid: pid)) { try store.remove("web") }
        kill(pid, SIGKILL)
        qemu.waitUntilExit()
        #expect(LiveState.probe(workspace: workspace, name: "web") == .crashed(pid: pid))
        try store.remove("web")
        #expect(access(workspace.runtimeDirectory(for: "web"), F_OK) != 0)
    }
}

/// Results gathered from many threads.
final class Outcomes: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [String] = []
    func add(_ value: String) { lock.withLock { values.append(value) } }
    var all: [String] { lock.withLock { values } }
}

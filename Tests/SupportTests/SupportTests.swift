// Tests of the Support target: atomic writes, locks, process running, terminal styling.
import Foundation
import Support
import Testing

private func temporaryDirectory() throws -> String {
    let path = NSTemporaryDirectory() + "sevvm-support-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

@Suite struct AtomicFileTests {
    @Test(arguments: [true, false])
    func writesContentAndPermissions(durable: Bool) throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/a.json"
        try AtomicFile.write(Data("one".utf8), to: path, permissions: 0o600, durable: durable)
        try AtomicFile.write(Data("two".utf8), to: path, permissions: 0o600, durable: durable)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "two")
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        // No temporary files are left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["a.json"])
    }

    @Test func exclusiveWriteRefusesExistingFile() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/vm.json"
        try AtomicFile.write("first", to: path, exclusive: true)
        #expect(throws: SupportError.io(path: path, operation: "create", errno: EEXIST)) {
            try AtomicFile.write("second", to: path, exclusive: true)
        }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "first")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["vm.json"])
    }
}

@Suite struct FileLockTests {
    @Test func secondAcquireWithoutWaitingIsBusy() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/vm.lock"
        let lock = try FileLock.acquire(path, timeout: 0)
        #expect(FileLock.isHeld(path))
        #expect(throws: SupportError.lockBusy(path: path)) { _ = try FileLock.acquire(path, timeout: 0) }
        lock.unlock()
        #expect(!FileLock.isHeld(path))
        let again = try FileLock.acquire(path, timeout: 0)
        again.unlock()
    }

    @Test func posixLockHolderSeesAnotherProcess() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/qemu.pid"
        #expect(FileManager.default.createFile(atPath: path, contents: Data()))
        #expect(FileLock.posixLockHolder(path) == nil)
        // flock(1) from util-linux takes flock locks, not POSIX ones; python's lockf takes POSIX locks.
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        holder.arguments = [
            "python3", "-c",
            "import fcntl,sys,time; f=open(sys.argv[1],'r+'); fcntl.lockf(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(30)",
            path,
        ]
        let out = Pipe()
        holder.standardOutput = out
        try holder.run()
        defer {
            kill(holder.processIdentifier, SIGKILL)
            holder.waitUntilExit()
        }
        _ = out.fileHandleForReading.availableData  // wait for "locked"
        #expect(FileLock.posixLockHolder(path) == holder.processIdentifier)
    }
}

@Suite struct ProcessRunnerTests {
    @Test func capturesOutputAndStatus() throws {
        let result = try ProcessRunner.run(["sh", "-c", "echo out; echo err >&2; exit 3"])
        #expect(result.status == 3)
        #expect(result.stdoutText == "out\n")
        #expect(result.stderrText == "err\n")
    }

    @Test func argumentsAreNotInterpretedByAShell() throws {
        let result = try ProcessRunner.run(["printf", "%s", "$(id) ; rm -rf /nonexistent"])
        #expect(result.stdoutText == "$(id) ; rm -rf /nonexistent")
    }

    @Test func missingExecutableIsNamed() {
        #expect(throws: SupportError.executableNotFound(name: "no-such-program-sevvm")) {
            _ = try ProcessRunner.run(["no-such-program-sevvm"])
        }
    }

    /// Megabytes on both streams at once: a runner that read one stream to its end before the
    /// other would deadlock once the other pipe's buffer (64 KiB) filled.
    @Test func chattyProgramOnBothStreamsDoesNotBlock() throws {
        let script =
            "i=0; while [ $i -lt 4000 ]; do echo 0123456789012345678901234567890123456789012345678901234567890123456789; echo e0123456789012345678901234567890123456789012345678901234567890123456789 >&2; i=$((i+1)); done"
        let result = try ProcessRunner.run(["sh", "-c", script])
        #expect(result.succeeded)
        #expect(result.standardOutput.count == 4000 * 71)
        #expect(result.standardError.count == 4000 * 72)
    }

    @Test func environmentFolderAndNoStandardInput() throws {
        let result = try ProcessRunner.run(
            ["sh", "-c", "printf '%s|%s|' \"$SEVVM_TEST_VALUE\" \"$(pwd)\"; cat; echo end"], workingDirectory: "/tmp",
            environment: ["SEVVM_TEST_VALUE": "given"])
        #expect(result.stdoutText == "given|/tmp|end\n")
    }
}

@Suite struct TerminalTests {
    @Test(arguments: [
        (["NO_COLOR": "1", "TERM": "xterm"], false),
        (["TERM": "xterm"], false),  // not a TTY in tests: stdout is a pipe or file
    ])
    func colourNeedsTTYAndNoNO_COLOR(environment: [String: String], expected: Bool) {
        let terminal = Terminal(fd: -1, environment: environment)
        #expect(terminal.colorEnabled == expected)
        #expect(terminal.paint("x", .red) == "x")
    }

    @Test func workspaceResolution() {
        #expect(Workspace.resolve(option: "/tmp/w/../ws", environment: [:]).root == "/tmp/ws")
        #expect(Workspace.resolve(option: nil, environment: ["SEVVM_WORKSPACE": "/srv/sev"]).root == "/srv/sev")
        #expect(Workspace(root: "/a").definitionPath(for: "vm1") == "/a/vms/vm1.json")
    }
}

@Suite struct DescriptorIOTests {
    @Test func writesWholeBuffersToFilesAndSockets() throws {
        let path = NSTemporaryDirectory() + "/sevvm-dio-\(UUID().uuidString)"
        defer { unlink(path) }
        let file = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        try #require(file >= 0)
        let bytes = (0..<300_000).map { UInt8(truncatingIfNeeded: $0) }
        #expect(bytes.withUnsafeBytes { DescriptorIO.writeAll($0, to: file) } == 0)
        close(file)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(bytes))

        // A socket whose peer is gone: EPIPE comes back as a value, not as a SIGPIPE.
        var pair: [Int32] = [-1, -1]
        try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0)
        close(pair[1])
        #expect(bytes.withUnsafeBytes { DescriptorIO.writeAll($0, to: pair[0]) } == EPIPE)
        close(pair[0])
        #expect(bytes.withUnsafeBytes { DescriptorIO.writeAll($0, to: -1) } == EBADF)
    }

    @Test(arguments: [nil, 0, 5, 70_000, 300_000] as [UInt64?])
    func readsToTheEndInPieces(from offset: UInt64?) throws {
        let path = NSTemporaryDirectory() + "/sevvm-dio-\(UUID().uuidString)"
        defer { unlink(path) }
        let bytes = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let fd = open(path, O_RDONLY)
        try #require(fd >= 0)
        defer { close(fd) }
        var read: [UInt8] = []
        var pieces = 0
        #expect(
            DescriptorIO.readToEnd(fd, from: offset, chunkSize: 65_536) {
                read += $0; pieces += 1
            } == 0)
        #expect(read == Array(bytes[Int(offset ?? 0)...]))
        #expect(pieces == (read.count + 65_535) / 65_536)
        #expect(DescriptorIO.readToEnd(-1) { _ in } == EBADF)
    }
}

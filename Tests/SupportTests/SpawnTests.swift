// Spawn against real children (/bin/sh): streams, passed descriptors, environment, folders, groups, statuses.
import Foundation
import Support
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Spawn starts real children")
struct SpawnTests {
    let folder: String

    init() throws {
        var template = Array("/tmp/sevvm-spawn-XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ $0.baseAddress.flatMap { mkdtemp($0) } }) != nil else {
            throw POSIXError(.EIO)
        }
        folder = String(cString: template)
    }

    func run(_ script: String, configure: (inout SpawnRequest) -> Void = { _ in }) throws -> (status: Int32, output: String) {
        var request = SpawnRequest(["/bin/sh", "-c", script])
        request.standardOutput = .file(folder + "/out", append: false)
        request.standardError = .sameAsStandardOutput
        configure(&request)
        let status = Spawn.waitForExit(try Spawn.start(request))
        return (status, (try? String(contentsOfFile: folder + "/out", encoding: .utf8)) ?? "")
    }

    @Test("stdout and stderr share the file; exit codes and signals come back as shells report them")
    func streamsAndStatuses() throws {
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let (status, output) = try run("echo out; echo err >&2; exit 7")
        #expect(status == 7)
        #expect(output == "out\nerr\n")
        #expect(try run("kill -TERM $$").status == 128 + SIGTERM)
    }

    @Test("only the standard streams and the passed descriptors reach the child, passed ones as 3, 4, ...")
    func descriptors() throws {
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let leaked = open("/dev/null", O_RDONLY)  // not close-on-exec: must still not reach the child
        defer { close(leaked) }
        var pipeEnds: [Int32] = [0, 0]
        #expect(pipe(&pipeEnds) == 0)
        defer { pipeEnds.forEach { close($0) } }
        let (status, output) = try run("echo passed >&3; ls /proc/self/fd | sort -n | tr '\\n' ' '") {
            $0.passedDescriptors = [pipeEnds[1]]
        }
        #expect(status == 0)
        // 0-2, 3 (the pipe) and the descriptor ls itself opens on /proc/self/fd.
        #expect(output == "0 1 2 3 4 ")
        close(pipeEnds[1])
        pipeEnds[1] = -1
        var buffer = [UInt8](repeating: 0, count: 16)
        let count = read(pipeEnds[0], &buffer, buffer.count)
        #expect(String(decoding: buffer.prefix(max(count, 0)), as: UTF8.self) == "passed\n")
    }

    @Test("environment, working folder, append and a new process group")
    func environmentFolderAppendGroup() throws {
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try "kept\n".write(toFile: folder + "/out", atomically: true, encoding: .utf8)
        let (status, output) = try run(#"echo "$ONLY $(pwd) $([ "$(cut -d' ' -f5 /proc/$$/stat)" = "$$" ] && echo leader)""#) {
            $0.environment = ["ONLY": "just-this", "PATH": "/usr/bin:/bin"]
            $0.workingDirectory = folder
            $0.standardOutput = .file(folder + "/out", append: true)
            $0.newProcessGroup = true
        }
        #expect(status == 0)
        #expect(output == "kept\njust-this \(folder) leader\n")
    }

    @Test("a program that cannot start is a spawnFailed naming it")
    func missingProgram() {
        defer { try? FileManager.default.removeItem(atPath: folder) }
        #expect(throws: SupportError.spawnFailed(executable: "/nonexistent/sevvm-test", errno: ENOENT)) {
            _ = try Spawn.start(SpawnRequest(["/nonexistent/sevvm-test"]))
        }
    }
}

// Progress lines when output is not a terminal, and install-host's plan for the real root.
import Builder
import Foundation
import Support
import Testing

@Suite struct ProgressTests {
    final class Lines: @unchecked Sendable {
        private let lock = NSLock()
        private var text = ""
        func append(_ piece: String) { lock.withLock { text += piece } }
        var value: String { lock.withLock { text } }
    }

    @Test func plainLinesWithoutATerminal() throws {
        let sources = try FakeSources()
        let lines = Lines()
        let devNull = open("/dev/null", O_WRONLY)
        defer { close(devNull) }
        let progress = BuildProgress(terminal: Terminal(fd: devNull)) { lines.append($0) }
        let options = sources.options([.qemu])
        _ = try Builder(options: options, host: FakeSources.host, events: { progress.handle($0) }).run()
        _ = try Builder(options: options, host: FakeSources.host, events: { progress.handle($0) }).run()
        let text = lines.value
        #expect(text.contains("qemu: building "))
        #expect(text.contains("qemu: compile (log \(options.layout.logPath(.qemu, .compile)))"))
        #expect(text.contains("qemu: install done in "))
        #expect(text.contains("qemu is up to date ("))
        #expect(!text.contains("\u{1B}"), "no escape sequences when not on a terminal")
    }

    @Test func installHostOnTheRealRootUsesThePackageManager() throws {
        let release = NSTemporaryDirectory() + "sevvm-release-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: release) }
        try FileManager.default.createDirectory(atPath: release + "/linux/host", withIntermediateDirectories: true)
        for name in ["linux-image-6.99.0-snp-host-abc_6.99.0-1_amd64.deb", "linux-image-6.99.0-snp-host-abc-dbg_6.99.0-1_amd64.deb"] {
            _ = FileManager.default.createFile(atPath: release + "/linux/host/" + name, contents: Data())
        }
        try ReleasePackager.kvmConf.write(toFile: release + "/kvm.conf", atomically: true, encoding: .utf8)
        let distribution = Distribution.read()
        let plan = try HostInstaller.plan(HostInstallOptions(releaseDirectory: release))
        #expect(plan.bootKernel == "6.99.0-snp-host-abc")
        let commands = plan.actions.compactMap { action -> [String]? in
            if case .run(let command) = action { return command.argv }
            return nil
        }
        if distribution.packageFormat == .deb {
            #expect(commands.first == ["dpkg", "-i", release + "/linux/host/linux-image-6.99.0-snp-host-abc_6.99.0-1_amd64.deb"])
        } else {
            #expect(commands.first?.first == "dnf")
        }
    }
}

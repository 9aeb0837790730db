// --package, install-host against a fake root, and --dry-run of the repository's own stable-commits.
import Builder
import Foundation
import Support
import Testing

@Suite struct ReleaseTests {
    @Test func packageWritesAMDLayoutManifestAndArchive() throws {
        let sources = try FakeSources()
        var options = sources.options()
        options.package = true
        options.releaseDate = Date(timeIntervalSince1970: 1_764_374_400)  // 2025-11-29
        let report = try sources.build(options)
        let release = try #require(report.release)
        #expect(release.directory.hasSuffix("/snp-release-2025-11-29"))
        let files = Set(FileManager.default.subpaths(atPath: release.directory) ?? [])
        for expected in [
            "usr/local/bin/qemu-system-x86_64", "usr/local/share/qemu/OVMF.fd", "usr/local/share/qemu/OVMF_CODE.fd",
            "usr/local/share/qemu/OVMF_VARS.fd", "source-commit.qemu", "source-commit.ovmf", "source-commit.kernel.host",
            "source-commit.kernel.guest", "source-config", "kvm.conf", "manifest.json", "INSTALL",
        ] {
            #expect(files.contains(expected), "missing \(expected)")
        }
        #expect(files.contains { $0.hasPrefix("linux/host/linux-image-6.99.0-snp-host-") })
        #expect(files.contains { $0.hasPrefix("linux/guest/linux-image-6.99.0-snp-guest-") })
        #expect(sources.read(release.directory + "/kvm.conf") == "options kvm_amd sev-snp=1 sev=1 sev-es=1\n")
        #expect(sources.read(release.directory + "/source-config") == sources.read(options.stableCommitsPath))

        let data = try #require(FileManager.default.contents(atPath: release.manifest))
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let manifest = try decoder.decode(ReleaseManifest.self, from: data)
        #expect(manifest.components.map(\.component) == Component.allCases)
        #expect(manifest.components.first { $0.component == .qemu }?.commit == (try sources.head("qemu")))
        #expect(manifest.components.first { $0.component == .qemu }?.inputs["configure"]?.contains("--target-list=x86_64-softmmu") == true)
        let qemu = try #require(manifest.files.first { $0.path == "usr/local/bin/qemu-system-x86_64" })
        let digest = try ProcessRunner.run(["sha256sum", release.directory + "/" + qemu.path]).stdoutText.prefix(64)
        #expect(qemu.sha256 == String(digest))
        #expect(!manifest.files.contains { $0.path == "manifest.json" })

        let listing = try ProcessRunner.run(["tar", "-tzf", release.archive])
        #expect(listing.succeeded)
        #expect(listing.stdoutText.contains("snp-release-2025-11-29/manifest.json"))
    }

    @Test func installHostIntoAFakeRoot() throws {
        let sources = try FakeSources()
        var options = sources.options()
        options.package = true
        let release = try #require(try sources.build(options).release)
        let root = sources.root + "/fake-root"
        try FileManager.default.createDirectory(atPath: root + "/etc/modprobe.d", withIntermediateDirectories: true)
        try "ID=debian\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n".write(
            toFile: root + "/etc/os-release", atomically: true, encoding: .utf8)
        try "options kvm_amd sev=1\n".write(toFile: root + "/etc/modprobe.d/kvm.conf", atomically: true, encoding: .utf8)

        var install = HostInstallOptions(releaseDirectory: release.directory)
        install.root = root
        let plan = try HostInstaller.plan(install)
        let text = plan.rendered()
        #expect(text.contains("dpkg-deb --extract"))
        #expect(text.contains("-options kvm_amd sev=1"))
        #expect(text.contains("+options kvm_amd sev-snp=1 sev=1 sev-es=1"))
        let hostCommit = try sources.head("linux", ref: "snp-host-latest")
        #expect(plan.bootKernel == "6.99.0-snp-host-\(hostCommit.prefix(12))")
        // Planning changed nothing.
        #expect(sources.read(root + "/etc/modprobe.d/kvm.conf") == "options kvm_amd sev=1\n")

        var lines: [String] = []
        try HostInstaller.run(plan, environment: options.environment) { lines.append($0) }
        #expect(sources.read(root + "/etc/modprobe.d/kvm.conf") == "options kvm_amd sev-snp=1 sev=1 sev-es=1\n")
        #expect(FileManager.default.fileExists(atPath: root + "/boot/vmlinuz-6.99.0-snp-host-\(hostCommit.prefix(12))"))
        #expect(sources.read(root + "/usr/local/bin/qemu-system-x86_64")?.contains("9.9.0") == true)
        #expect(lines.contains { $0.contains("reboot and choose the kernel 6.99.0-snp-host-") })
        // Run again: kvm.conf is already right, so it is not rewritten.
        #expect(!(try HostInstaller.plan(install)).actions.contains { if case .writeFile = $0 { return true } else { return false } })
    }

    @Test func dryRunOfTheRepositoryStableCommits() throws {
        let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        let path = repositoryRoot + "/stable-commits"
        let stable = try StableCommits.load(path: path)
        let workspace = Workspace(root: NSTemporaryDirectory() + "sevvm-dry-\(UUID().uuidString.prefix(8))")
        var options = BuildOptions(workspace: workspace)
        options.stableCommitsPath = path
        options.jobs = 4
        options.package = true
        let text = try Builder(options: options, host: FakeSources.host).dryRun()
        for variable in ["KERNEL_GIT_URL", "QEMU_GIT_URL", "OVMF_GIT_URL"] {
            #expect(text.contains(try #require(stable.value(variable))))
        }
        for variable in ["KERNEL_HOST_BRANCH", "KERNEL_GUEST_BRANCH", "QEMU_BRANCH", "OVMF_BRANCH"] {
            #expect(text.contains("branch \(try #require(stable.value(variable)))"))
        }
        let expectedLines = [
            "$ ./configure --target-list=x86_64-softmmu --prefix=\(workspace.installDirectory)",
            "$ make -j4", "$ make install DESTDIR=\(workspace.buildDirectory)/staging/qemu",
            "$ git -C \(workspace.buildDirectory)/ovmf submodule update --init --recursive", "$ make -C BaseTools",
            "-a X64 -b DEBUG -n 4 -p OvmfPkg/OvmfPkgX64.dsc -t", "EDK_TOOLS_PATH=\(workspace.buildDirectory)/ovmf/BaseTools",
            "copy \(workspace.buildDirectory)/ovmf/Build/OvmfX64/DEBUG_",
            "$ ./scripts/config --file .config --set-str LOCALVERSION -snp-host-<commit>", "--enable KVM_AMD_SEV",
            "$ make -j4 bindeb-pkg LOCALVERSION=", "worktree add --detach \(workspace.buildDirectory)/kernel-guest/linux",
            "(in \(workspace.buildDirectory)/qemu, log \(workspace.buildDirectory)/logs/qemu/configure.log)",
            "snp-release-",
        ]
        for line in expectedLines { #expect(text.contains(line), "missing: \(line)") }
        #expect(!FileManager.default.fileExists(atPath: workspace.buildDirectory), "a dry run must not create anything")
    }
}

// `sevvm build` end to end with real git and make against temporary repositories (file:// URLs).
import Builder
import Foundation
import Support
import Testing

@Suite struct BuildTests {
    @Test func firstBuildInstallsEverythingThenNothingChangedSkipsAll() throws {
        let sources = try FakeSources()
        let options = sources.options()
        let first = try sources.build(options)
        for component in Component.allCases {
            guard case .built(let steps) = first.result(component) else {
                Issue.record("\(component) was not built")
                continue
            }
            // The guest kernel's first commit is the host's: its objects are already in the shared store.
            #expect(steps.first == (component == .kernelGuest ? .checkout : .fetch))
            #expect(steps.last == .install)
        }
        let install = options.installDirectory
        #expect(sources.read(install + "/bin/qemu-system-x86_64")?.contains("9.9.0") == true)
        for file in ["OVMF_CODE.fd", "OVMF_VARS.fd", "OVMF.fd"] {
            #expect(sources.read(install + "/share/qemu/" + file)?.contains("OvmfPkg/OvmfPkgX64.dsc edk2-test-1") == true)
        }
        let hostCommit = try sources.head("linux", ref: "snp-host-latest")
        let packages = try FileManager.default.contentsOfDirectory(atPath: options.layout.kernelPackages(.kernelHost))
        #expect(packages == ["linux-image-6.99.0-snp-host-\(hostCommit.prefix(12))_6.99.0-1_amd64.deb"])
        let guestPackages = try FileManager.default.contentsOfDirectory(atPath: options.layout.kernelPackages(.kernelGuest))
        #expect(guestPackages.first?.contains("-snp-guest-") == true)
        // The kernel config carries the SEV options and the LOCALVERSION.
        let config = sources.read(options.layout.sourceTree(.kernelHost) + "/.config") ?? ""
        #expect(config.contains("CONFIG_KVM_AMD_SEV=y"))
        #expect(config.contains("CONFIG_CRYPTO_DEV_CCP_DD=m"))
        #expect(config.contains("CONFIG_LOCALVERSION=\"-snp-host-\(hostCommit.prefix(12))\""))
        // Both kernel trees share one object store.
        #expect(FileManager.default.fileExists(atPath: options.layout.sourceTree(.kernelGuest) + "/.git"))
        #expect(sources.read(options.layout.sourceTree(.kernelGuest) + "/.git")?.contains("linux.git/worktrees") == true)
        #expect(sources.read(options.layout.sourceCommitFile(.qemu)) == (try sources.head("qemu")) + "\n")
        #expect(FileManager.default.fileExists(atPath: options.layout.logPath(.ovmf, .compile)))

        let second = try sources.build(options)
        #expect(second.outcomes.map(\.result) == Array(repeating: .upToDate, count: 4))
    }

    @Test func newCommitOnABranchRebuildsOnlyThatComponent() throws {
        let sources = try FakeSources()
        let options = sources.options()
        _ = try sources.build(options)
        let commit = try sources.commit("qemu", file: "VERSION", contents: "9.9.1\n")
        let report = try sources.build(options)
        #expect(report.result(.qemu) == .built(steps: [.fetch, .checkout, .configure, .compile, .install]))
        for component in [Component.ovmf, .kernelHost, .kernelGuest] { #expect(report.result(component) == .upToDate) }
        #expect(sources.read(options.installDirectory + "/bin/qemu-system-x86_64")?.contains("9.9.1") == true)
        #expect(sources.read(options.layout.sourceCommitFile(.qemu)) == commit + "\n")

        // A new guest-branch commit rebuilds the guest kernel only, in its own worktree.
        try sources.commit("linux", file: "VERSION", contents: "linux-test-2\n", branch: "snp-guest-latest")
        let kernels = try sources.build(options)
        #expect(kernels.result(.kernelHost) == .upToDate)
        #expect(kernels.result(.kernelGuest) == .built(steps: [.fetch, .checkout, .configure, .compile, .package, .install]))
    }

    @Test func pinnedCommitAndTagBuildThatRevision() throws {
        let sources = try FakeSources()
        let first = try sources.head("qemu")
        try sources.commit("qemu", file: "VERSION", contents: "9.9.5\n")
        try sources.writeStableCommits(extra: "QEMU_COMMIT=\(first)\n")
        let options = sources.options([.qemu])
        let report = try sources.build(options)
        #expect(report.outcomes.first?.commit == first)
        #expect(sources.read(options.installDirectory + "/bin/qemu-system-x86_64")?.contains("9.9.0") == true)
        // A pinned commit needs no network on the next run.
        #expect(try sources.build(options).result(.qemu) == .upToDate)

        try sources.git(["tag", "v9.9.5"], in: sources.remotes + "/qemu")
        try sources.writeStableCommits(extra: "QEMU_TAG=v9.9.5\n")
        let tagged = try sources.build(options)
        #expect(tagged.outcomes.first?.commit == (try sources.head("qemu")))
        #expect(sources.read(options.installDirectory + "/bin/qemu-system-x86_64")?.contains("9.9.5") == true)
    }

    @Test func failingStepReportsItsLogAndTheNextRunResumesThere() throws {
        let sources = try FakeSources()
        var failing = sources.options([.qemu])
        failing.environment["FAKE_QEMU_FAIL"] = "1"
        #expect {
            _ = try sources.build(failing)
        } throws: { error in
            guard case BuilderError.stepFailed(let component, let step, let command, _, let log, let tail) = error else { return false }
            return component == "qemu" && step == "compile" && command == "make -j2"
                && log.hasSuffix("build/logs/qemu/compile.log") && tail.contains { $0.contains("compile failed as the test asked") }
        }
        #expect(!FileManager.default.fileExists(atPath: failing.installDirectory + "/bin/qemu-system-x86_64"))
        let configureLog = failing.layout.logPath(.qemu, .configure)
        let configuredAt = try #require(OutputStamp.of(configureLog))

        let report = try sources.build(sources.options([.qemu]))
        #expect(report.result(.qemu) == .built(steps: [.compile, .install]))
        #expect(OutputStamp.of(configureLog) == configuredAt)
        #expect(sources.read(failing.installDirectory + "/bin/qemu-system-x86_64") != nil)
    }

    /// A finished build's outcome handed from the build thread to the test.
    final class Outcome: @unchecked Sendable {
        let done = DispatchSemaphore(value: 0)
        var error: Error?
    }

    @Test func interruptedBuildResumesAtTheInterruptedStep() throws {
        let sources = try FakeSources()
        var slow = sources.options([.qemu])
        slow.environment["FAKE_QEMU_SLOW"] = "1"
        let builder = Builder(options: slow, host: FakeSources.host)
        // A thread of its own: the build blocks, and must not wait for a shared worker to be free.
        let outcome = Outcome()
        Thread.detachNewThread {
            do { _ = try builder.run() } catch { outcome.error = error }
            outcome.done.signal()
        }
        let compileLog = slow.layout.logPath(.qemu, .compile)
        for _ in 0..<400 where sources.read(compileLog)?.contains("compiling slowly") != true { usleep(25_000) }
        builder.cancel()
        #expect(outcome.done.wait(timeout: .now() + 20) == .success, "the build did not stop after cancel()")
        #expect(outcome.error as? BuilderError == .interrupted(component: "qemu", step: "compile"))
        let record = try #require(BuildRecordStore(layout: slow.layout).load(.qemu))
        #expect(record.completedSteps == [.fetch, .checkout, .configure])
        #expect(record.failedStep == .compile)
        #expect(try sources.build(sources.options([.qemu])).result(.qemu) == .built(steps: [.compile, .install]))
    }

    @Test func failedRebuildLeavesThePreviousInstallIntact() throws {
        let sources = try FakeSources()
        _ = try sources.build(sources.options([.qemu]))
        try sources.commit("qemu", file: "VERSION", contents: "9.9.2\n")
        var failing = sources.options([.qemu])
        failing.environment["FAKE_QEMU_FAIL"] = "1"
        #expect(throws: BuilderError.self) { _ = try sources.build(failing) }
        #expect(sources.read(failing.installDirectory + "/bin/qemu-system-x86_64")?.contains("9.9.0") == true)
    }

    @Test func fullDiskIsReportedAsSuch() throws {
        let sources = try FakeSources()
        var options = sources.options([.qemu])
        options.environment["FAKE_QEMU_ENOSPC"] = "1"
        #expect {
            _ = try sources.build(options)
        } throws: { error in
            guard case BuilderError.diskFull = error else { return false }
            return "\(error)".contains("free some space") && "\(error)".contains("compile.log")
        }
    }

    @Test func localModificationsAreRefusedUnlessForced() throws {
        let sources = try FakeSources()
        let options = sources.options([.qemu])
        _ = try sources.build(options)
        try "changed\n".write(toFile: options.layout.sourceTree(.qemu) + "/VERSION", atomically: true, encoding: .utf8)
        try sources.commit("qemu", file: "Makefile", contents: (sources.read(sources.remotes + "/qemu/Makefile") ?? "") + "\n")
        #expect {
            _ = try sources.build(options)
        } throws: { error in
            guard case BuilderError.localModifications(let component, _, let files) = error else { return false }
            return component == "qemu" && files == [" M VERSION"] && "\(error)".contains("--force")
        }
        var forced = options
        forced.force = true
        // The refused run had already fetched the new commit.
        #expect(try sources.build(forced).result(.qemu) == .built(steps: [.checkout, .configure, .compile, .install]))
        #expect(sources.read(options.layout.sourceTree(.qemu) + "/VERSION") == "9.9.0\n")
    }

    @Test func unreachableRepositoryNamesTheVariable() throws {
        let sources = try FakeSources()
        try sources.writeStableCommits(extra: "OVMF_GIT_URL=file://\(sources.root)/nowhere\n")
        #expect {
            _ = try sources.build(sources.options())
        } throws: { error in
            guard case BuilderError.repositoryUnreachable(let variable, _, _) = error else { return false }
            return variable == "OVMF_GIT_URL" && "\(error)".contains("mirror")
        }
    }

    @Test func unreachableRepositoryOfAPinnedCommitNamesTheVariable() throws {
        let sources = try FakeSources()
        let commit = try sources.head("qemu")
        try sources.writeStableCommits(extra: "QEMU_GIT_URL=file://\(sources.root)/moved\nQEMU_COMMIT=\(commit)\n")
        #expect {
            _ = try sources.build(sources.options([.qemu]))
        } throws: { error in
            guard case BuilderError.repositoryUnreachable(let variable, _, let detail) = error else { return false }
            return variable == "QEMU_GIT_URL" && detail.contains("fetch.log")
        }
    }

    @Test func missingToolsListTheDebianPackages() throws {
        let sources = try FakeSources()
        var options = sources.options([.ovmf])
        let bin = sources.root + "/only-git"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        for tool in ["git", "make"] {
            try FileManager.default.createSymbolicLink(
                atPath: bin + "/" + tool, withDestinationPath: try #require(ProcessRunner.which(tool)))
        }
        options.environment["PATH"] = bin
        #expect {
            _ = try sources.build(options)
        } throws: { error in
            guard case BuilderError.missingTools(let tools, let packages) = error else { return false }
            return tools.contains("nasm") && packages.contains("acpica-tools") && packages.contains("nasm") && !packages.contains("git")
        }
    }

    @Test func changedInputsRebuild() throws {
        let sources = try FakeSources()
        var options = sources.options([.kernelHost])
        _ = try sources.build(options)
        try "CONFIG_X86_64=y\nCONFIG_SMP=y\n".write(toFile: sources.kernelConfig, atomically: true, encoding: .utf8)
        #expect(try sources.build(options).result(.kernelHost) == .built(steps: [.checkout, .configure, .compile, .package, .install]))
        options.environment["CFLAGS"] = "-O3"
        #expect(try sources.build(options).result(.kernelHost) != .upToDate)
        #expect(try sources.build(options).result(.kernelHost) == .upToDate)
        // A removed installed output is noticed too.
        let package = try #require(try FileManager.default.contentsOfDirectory(atPath: options.layout.kernelPackages(.kernelHost)).first)
        try FileManager.default.removeItem(atPath: options.layout.kernelPackages(.kernelHost) + "/" + package)
        #expect(try sources.build(options).result(.kernelHost) != .upToDate)
    }

    @Test func amdSevPlatformInstallsTheSingleFileImage() throws {
        let sources = try FakeSources()
        var options = sources.options([.ovmf])
        options.ovmfPlatform = .amdSevX64
        _ = try sources.build(options)
        #expect(sources.read(options.installDirectory + "/share/qemu/OVMF.fd")?.contains("AmdSevX64.dsc") == true)
        #expect(FileManager.default.fileExists(atPath: options.layout.sourceTree(.ovmf) + "/OvmfPkg/AmdSev/Grub/grub.efi"))
    }

    @Test func edk2RenamingGCC5ToGCCIsFollowed() throws {
        let sources = try FakeSources()
        let options = sources.options([.ovmf])
        _ = try sources.build(options)
        #expect(FileManager.default.fileExists(atPath: options.layout.sourceTree(.ovmf) + "/Build/OvmfX64/DEBUG_GCC5/FV/OVMF.fd"))
        try sources.commit("ovmf", file: "BaseTools/Conf/tools_def.template", contents: "*_GCC_X64_CC_PATH = DEF(GCC_BIN)gcc\n")
        #expect(try sources.build(options).result(.ovmf) == .built(steps: [.fetch, .checkout, .configure, .compile, .install]))
        #expect(FileManager.default.fileExists(atPath: options.layout.sourceTree(.ovmf) + "/Build/OvmfX64/DEBUG_GCC/FV/OVMF.fd"))
        #expect(sources.read(options.layout.logPath(.ovmf, .compile))?.contains("-p OvmfPkg/OvmfPkgX64.dsc -t GCC ") == true)
    }

    @Test(arguments: [
        ("*_GCC5_X64_CC_PATH = gcc\n", "GCC5"), ("*_GCC_X64_CC_PATH = gcc\n*_GCC5_X64_CC_PATH = gcc\n", "GCC"), ("none\n", nil),
    ])
    func detectsTheEdk2ToolchainTag(text: String, tag: String?) throws {
        let tree = NSTemporaryDirectory() + "sevvm-edk2-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: tree) }
        try FileManager.default.createDirectory(atPath: tree + "/BaseTools/Conf", withIntermediateDirectories: true)
        try text.write(toFile: tree + "/BaseTools/Conf/tools_def.template", atomically: true, encoding: .utf8)
        #expect(BuildPlanner.detectToolchainTag(edk2Tree: tree) == tag)
    }
}

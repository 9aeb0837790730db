// Test scaffolding: temporary git repositories built from the fixture trees, served through file:// URLs.
import Builder
import Foundation
import Support
import Testing

/// A temporary folder with a workspace and three "remote" repositories (qemu, ovmf, linux with a
/// host and a guest branch), plus the stable-commits that points at them.
final class FakeSources {
    let root: String
    let workspace: Workspace
    let remotes: String
    let tools: String
    let includes: String
    let kernelConfig: String

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/repos").path

    init() throws {
        root = NSTemporaryDirectory() + "sevvm-builder-\(UUID().uuidString.prefix(8))"
        workspace = Workspace(root: root + "/ws")
        remotes = root + "/remotes"
        tools = root + "/tools"
        includes = root + "/include"
        kernelConfig = root + "/config-test"
        let files = FileManager.default
        for folder in [workspace.root, remotes, tools, includes] {
            try files.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }
        try "CONFIG_X86_64=y\nCONFIG_LOCALVERSION=\"\"\n".write(toFile: kernelConfig, atomically: true, encoding: .utf8)
        for name in ["qemu", "ovmf", "linux"] {
            try files.copyItem(atPath: Self.fixtures + "/" + name, toPath: remotes + "/" + name)
        }
        try git(["init", "--quiet", "-b", "snp-latest"], in: remotes + "/qemu")
        try git(["init", "--quiet", "-b", "snp-latest"], in: remotes + "/ovmf")
        try git(["init", "--quiet", "-b", "snp-host-latest"], in: remotes + "/linux")
        for name in ["qemu", "ovmf", "linux"] { try commitAll(name, message: "initial") }
        try git(["branch", "snp-guest-latest"], in: remotes + "/linux")
        // Build tools the fixtures do not use but the tool check asks for: only the ones this
        // machine lacks are stood in for (by `true`), so real ones keep being found.
        for requirement in Component.allCases.flatMap({ ToolCheck.requirements(for: $0, packageFormat: .deb) }) {
            switch requirement.kind {
            case .program where ProcessRunner.which(requirement.name) == nil:
                try? files.createSymbolicLink(atPath: tools + "/" + requirement.name, withDestinationPath: "/bin/true")
            case .header:
                let path = includes + "/" + requirement.name
                try files.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                _ = files.createFile(atPath: path, contents: Data())
            default: break
            }
        }
        try writeStableCommits()
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    func url(_ name: String) -> String { "file://" + remotes + "/" + name }

    func writeStableCommits(extra: String = "") throws {
        let text = """
            # test stable-commits
            KERNEL_GIT_URL="\(url("linux"))"
            KERNEL_HOST_BRANCH="snp-host-latest"
            KERNEL_GUEST_BRANCH='snp-guest-latest'
            export QEMU_GIT_URL=\(url("qemu"))
            QEMU_BRANCH=snp-latest   # the development branch
            OVMF_GIT_URL="\(url("ovmf"))"
            OVMF_BRANCH="snp-latest"

            """
        try (text + extra).write(toFile: workspace.stableCommitsFile, atomically: true, encoding: .utf8)
    }

    func options(_ components: [Component] = Component.allCases) -> BuildOptions {
        var options = BuildOptions(workspace: workspace, components: components)
        options.jobs = 2
        options.kernelConfig = kernelConfig
        options.kernelPackageFormat = .deb
        var environment = ProcessInfo.processInfo.environment
        environment["PATH"] = tools + ":" + (environment["PATH"] ?? "/usr/bin:/bin")
        environment["C_INCLUDE_PATH"] = includes
        for name in BuildOptions.relevantEnvironment { environment[name] = nil }
        options.environment = environment
        return options
    }

    static let host = BuildHost(
        distribution: Distribution(id: "debian", prettyName: "Debian test"), kernelRelease: "6.1.0-test", toolchain: "gcc (test) 12.2.0")

    func build(_ options: BuildOptions) throws -> BuildReport {
        try Builder(options: options, host: Self.host).run()
    }

    /// Commits a change in a remote on a branch; returns the new commit id.
    @discardableResult
    func commit(_ name: String, file: String, contents: String, branch: String? = nil) throws -> String {
        let repository = remotes + "/" + name
        if let branch { try git(["checkout", "--quiet", branch], in: repository) }
        try contents.write(toFile: repository + "/" + file, atomically: true, encoding: .utf8)
        return try commitAll(name, message: "change \(file)")
    }

    @discardableResult
    func commitAll(_ name: String, message: String) throws -> String {
        let repository = remotes + "/" + name
        try git(["add", "-A"], in: repository)
        try git(["commit", "--quiet", "-m", message], in: repository)
        return try head(name)
    }

    func head(_ name: String, ref: String = "HEAD") throws -> String {
        try git(["rev-parse", ref], in: remotes + "/" + name).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @discardableResult
    func git(_ arguments: [String], in directory: String) throws -> String {
        let result = try ProcessRunner.run(
            ["git"] + arguments, workingDirectory: directory,
            environment: [
                "GIT_AUTHOR_NAME": "sevvm tests", "GIT_AUTHOR_EMAIL": "tests@example.invalid",
                "GIT_COMMITTER_NAME": "sevvm tests", "GIT_COMMITTER_EMAIL": "tests@example.invalid",
            ])
        guard result.succeeded else { throw FakeSourcesError.git(arguments: arguments, output: result.stderrText) }
        return result.stdoutText
    }

    func read(_ path: String) -> String? {
        FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) }
    }
}

enum FakeSourcesError: Error {
    case git(arguments: [String], output: String)
}

extension BuildReport {
    func result(_ component: Component) -> ComponentOutcome.Result? {
        outcomes.first { $0.component == component }?.result
    }
}

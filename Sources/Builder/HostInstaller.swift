// `sevvm install-host`: what AMD's install.sh does, as a printed plan run step by step, against / or a given root.
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

public struct HostInstallOptions: Sendable {
    public var releaseDirectory: String
    /// The system to install into; tests and image builders point it at a folder.
    public var root = "/"
    /// Install the distribution's qemu and ovmf packages instead of the release's usr/local.
    public var distributionQEMU = false
    public var environment = ProcessInfo.processInfo.environment

    public init(releaseDirectory: String) { self.releaseDirectory = releaseDirectory }
}

public enum HostInstallAction: Sendable, Equatable {
    case run(StepCommand)
    case copyTree(from: String, to: String)
    case writeFile(path: String, contents: String, previous: String?)

    public var displayLine: String {
        switch self {
        case .run(let command): return "$ " + command.displayLine
        case .copyTree(let from, let to): return "copy \(from)/ -> \(to)/"
        case .writeFile(let path, _, let previous):
            return "write \(path)" + (previous == nil ? "" : " (replacing the existing file; differences below)")
        }
    }
}

public struct HostInstallPlan: Sendable, Equatable {
    public var distribution: Distribution
    public var actions: [HostInstallAction]
    /// The kernel release to boot (from the host package's name), when it can be read.
    public var bootKernel: String?
    public var notes: [String]

    public func rendered() -> String {
        var lines = ["install into \(distribution.prettyName) host:"]
        for action in actions {
            lines.append("  " + action.displayLine)
            if case .writeFile(_, let contents, let previous?) = action, previous != contents {
                lines += HostInstaller.diff(old: previous, new: contents).map { "      " + $0 }
            }
        }
        lines += notes
        return lines.joined(separator: "\n")
    }
}

public enum HostInstaller {
    /// Finds the newest snp-release-* folder in `parent` (the names sort by date).
    public static func newestRelease(in parent: String) throws -> String {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? [])
            .filter { $0.hasPrefix("snp-release-") && !$0.hasSuffix(".tar.gz") }.sorted()
        guard let newest = names.last else { throw BuilderError.releaseNotFound(path: parent + "/snp-release-<date>") }
        return parent + "/" + newest
    }

    public static func plan(_ options: HostInstallOptions) throws -> HostInstallPlan {
        let files = FileManager.default
        let release = options.releaseDirectory
        guard files.fileExists(atPath: release + "/linux/host") || files.fileExists(atPath: release + "/kvm.conf") else {
            throw BuilderError.releaseNotFound(path: release)
        }
        let root = options.root == "/" ? "" : options.root
        let distribution = Distribution.read(root: options.root)
        guard let format = distribution.packageFormat else { throw BuilderError.unsupportedDistribution(id: distribution.id) }
        var actions: [HostInstallAction] = []
        var notes: [String] = []

        let packages = ((try? files.contentsOfDirectory(atPath: release + "/linux/host")) ?? []).sorted().filter { name in
            name.hasSuffix(".\(format.rawValue)") && !name.contains("-dbg") && !name.contains("debuginfo")
                && (format == .rpm || name.hasPrefix("linux-image-") || name.hasPrefix("linux-headers-"))
        }.map { release + "/linux/host/" + $0 }
        if packages.isEmpty {
            notes.append("no host kernel .\(format.rawValue) package in \(release)/linux/host: the kernel is not installed")
        } else if format == .deb && !root.isEmpty {
            // A folder is not a system: unpack the packages without touching a package database.
            for package in packages { actions.append(.run(StepCommand(["dpkg-deb", "--extract", package, options.root], in: release))) }
            notes.append("note: packages were unpacked into \(options.root) without recording them in a dpkg database")
        } else if format == .deb {
            actions.append(.run(StepCommand(["dpkg", "-i"] + packages, in: release)))
        } else {
            actions.append(
                .run(
                    StepCommand(["dnf", "install", "-y"] + (root.isEmpty ? [] : ["--installroot=\(options.root)"]) + packages, in: release))
            )
        }

        if options.distributionQEMU {
            let names = format == .deb ? ["qemu-system-x86", "ovmf"] : ["qemu-kvm", "edk2-ovmf"]
            if format == .deb {
                var argv = ["apt-get", "install", "-y"]
                if !root.isEmpty { argv += ["-o", "RootDir=\(options.root)"] }
                actions.append(.run(StepCommand(argv + names, in: release)))
            } else {
                actions.append(
                    .run(
                        StepCommand(
                            ["dnf", "install", "-y"] + (root.isEmpty ? [] : ["--installroot=\(options.root)"]) + names, in: release)))
            }
        } else if files.fileExists(atPath: release + "/usr/local") {
            actions.append(.copyTree(from: release + "/usr/local", to: root + "/usr/local"))
        }

        let kvmConf = root + "/etc/modprobe.d/kvm.conf"
        let wanted = (files.contents(atPath: release + "/kvm.conf").map { String(decoding: $0, as: UTF8.self) }) ?? ReleasePackager.kvmConf
        let existing = files.contents(atPath: kvmConf).map { String(decoding: $0, as: UTF8.self) }
        if existing == wanted {
            notes.append("\(kvmConf) already says: \(wanted.trimmingNewlines)")
        } else {
            actions.append(.writeFile(path: kvmConf, contents: wanted, previous: existing))
        }

        let kernel = packages.lazy.map { $0.fileName }.compactMap(kernelRelease(fromPackage:)).first
        if let kernel {
            notes.append(
                "next: reboot and choose the kernel \(kernel) (GRUB: Advanced options), e.g. `grub-reboot` or "
                    + "`grubby --set-default /boot/vmlinuz-\(kernel)`; then check `sevvm caps`")
        }
        return HostInstallPlan(distribution: distribution, actions: actions, bootKernel: kernel, notes: notes)
    }

    /// Runs the plan's actions in order, reporting each line before it runs.
    public static func run(_ plan: HostInstallPlan, environment: [String: String], report: (String) -> Void) throws {
        let files = FileManager.default
        for action in plan.actions {
            report(action.displayLine)
            switch action {
            case .run(let command):
                let answer = try ProcessRunner.run(
                    command.argv, workingDirectory: command.workingDirectory, environment: command.environment)
                guard answer.succeeded else {
                    throw BuilderError.stepFailed(
                        component: "install-host", step: command.argv[0], command: command.displayLine, status: answer.status,
                        logPath: "(output below)",
                        logTail: (answer.stdoutText + answer.stderrText).split(separator: "\n").suffix(15).map(String.init))
                }
            case .copyTree(let from, let to):
                for relative in ((try? files.subpathsOfDirectory(atPath: from)) ?? []).sorted() {
                    var isDirectory = false
                    _ = files.fileExists(atPath: from + "/" + relative, isDirectory: &isDirectory)
                    let target = to + "/" + relative
                    do {
                        if isDirectory {
                            try files.createDirectory(atPath: target, withIntermediateDirectories: true)
                        } else {
                            let data = try Data(contentsOf: URL(fileURLWithPath: from + "/" + relative))
                            let mode = (try? files.attributesOfItem(atPath: from + "/" + relative)[.posixPermissions] as? Int) ?? 0o644
                            try files.createDirectory(
                                atPath: target.parentPath, withIntermediateDirectories: true)
                            try AtomicFile.write(data, to: target, permissions: mode_t(mode))
                        }
                    } catch {
                        throw BuilderError.io(path: target, operation: "install", detail: "\(error)")
                    }
                }
            case .writeFile(let path, let contents, let previous):
                if let previous, previous != contents {
                    for line in diff(old: previous, new: contents) { report("    " + line) }
                }
                do {
                    try AtomicFile.makeDirectory(path.parentPath)
                    try AtomicFile.write(contents, to: path)
                } catch {
                    throw BuilderError.io(path: path, operation: "write", detail: "\(error)")
                }
            }
        }
        for note in plan.notes { report(note) }
    }

    /// `linux-image-6.11.0-snp-host-abc_6.11.0-1_amd64.deb` -> `6.11.0-snp-host-abc`.
    public static func kernelRelease(fromPackage name: String) -> String? {
        guard name.hasPrefix("linux-image-"), let underscore = name.firstIndex(of: "_") else { return nil }
        return String(name[name.index(name.startIndex, offsetBy: "linux-image-".count)..<underscore])
    }

    /// A line diff small enough for config files: removed lines with '-', added with '+'.
    public static func diff(old: String, new: String) -> [String] {
        let oldLines = old.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).filter { !$0.isEmpty }
        let newLines = new.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).filter { !$0.isEmpty }
        return oldLines.filter { !newLines.contains($0) }.map { "-" + $0 } + newLines.filter { !oldLines.contains($0) }.map { "+" + $0 }
    }
}

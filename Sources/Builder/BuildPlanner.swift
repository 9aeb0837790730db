// Turns a component's source, the options and the machine's facts into its typed build steps (AMD's recipe).
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// What is already on disk for a component; decides whether the plan clones, fetches or only checks out.
public struct SourceState: Sendable, Equatable {
    public var repositoryExists: Bool
    public var treeExists: Bool
    /// The commit to build is already in the local object store (no fetch needed).
    public var commitPresent: Bool
    /// OVMF's toolchain tag (GCC or GCC5) read from the checked-out edk2 tree; nil before checkout.
    public var toolchainTag: String?

    public init(repositoryExists: Bool, treeExists: Bool, commitPresent: Bool, toolchainTag: String? = nil) {
        self.repositoryExists = repositoryExists
        self.treeExists = treeExists
        self.commitPresent = commitPresent
        self.toolchainTag = toolchainTag
    }
}

public enum BuildPlanner {
    /// The kernel options AMD's build.sh sets with scripts/config on top of the starting config:
    /// SEV host and guest support, the CCP/PSP driver and sev-guest as modules, and no distribution
    /// signing keys (a self-built kernel cannot use them).
    public static let kernelConfigArguments: [String] = [
        "--disable", "LOCALVERSION_AUTO",
        "--enable", "EXPERT",
        "--enable", "AMD_MEM_ENCRYPT",
        "--disable", "AMD_MEM_ENCRYPT_ACTIVE_BY_DEFAULT",
        "--enable", "KVM_AMD_SEV",
        "--module", "CRYPTO_DEV_CCP_DD",
        "--module", "SEV_GUEST",
        "--module", "X86_CPUID",
        "--enable", "CGROUP_MISC",
        "--disable", "IOMMU_DEFAULT_PASSTHROUGH",
        "--set-str", "SYSTEM_TRUSTED_KEYS", "",
        "--set-str", "SYSTEM_REVOCATION_KEYS", "",
        "--disable", "MODULE_SIG_KEY",
    ]

    static let qemuTargets = "x86_64-softmmu"
    static let ovmfBuildFlags = ["--cmd-len=64436", "-DDEBUG_ON_SERIAL_PORT=TRUE", "-a", "X64", "-b", "DEBUG"]

    /// The kernel configuration the kernels start from.
    public static func kernelConfigPath(options: BuildOptions, host: BuildHost) -> String {
        options.kernelConfig ?? host.defaultKernelConfig
    }

    public static func kernelPackageFormat(options: BuildOptions, host: BuildHost) -> PackageFormat {
        options.kernelPackageFormat ?? host.distribution.packageFormat ?? .deb
    }

    /// What a component's result depends on besides its commit. Recorded after a successful build
    /// and compared on the next run; `kernelConfigDigest` is the SHA-256 of the starting .config.
    public static func inputs(
        for component: Component, options: BuildOptions, host: BuildHost, kernelConfigDigest: String?
    ) -> [String: String] {
        var inputs = ["toolchain": host.toolchain]
        for name in BuildOptions.relevantEnvironment {
            if let value = options.environment[name], !value.isEmpty { inputs["env \(name)"] = value }
        }
        switch component {
        case .qemu:
            inputs["configure"] = qemuConfigureArguments(options: options).joined(separator: " ")
        case .ovmf:
            inputs["platform"] = options.ovmfPlatform.dscPath
            inputs["build flags"] = ovmfBuildFlags.joined(separator: " ")
            inputs["install"] = options.installDirectory
        case .kernelHost, .kernelGuest:
            inputs["kernel config"] = kernelConfigPath(options: options, host: host) + " sha256:" + (kernelConfigDigest ?? "missing")
            inputs["config options"] = kernelConfigArguments.map(StepCommand.quote).joined(separator: " ")
            inputs["package"] = kernelPackageFormat(options: options, host: host).kernelTarget
        }
        return inputs
    }

    static func qemuConfigureArguments(options: BuildOptions) -> [String] {
        ["./configure", "--target-list=\(qemuTargets)", "--prefix=\(options.installDirectory)"]
    }

    /// The kernel's LOCALVERSION, as AMD names it: -snp-host-<commit> or -snp-guest-<commit>.
    public static func localVersion(_ component: Component, commit: String?) -> String {
        let role = component == .kernelHost ? "host" : "guest"
        return "-snp-\(role)-" + (commit.map { String($0.prefix(12)) } ?? "<commit>")
    }

    public static func plan(
        source: ComponentSource, commit: String?, options: BuildOptions, host: BuildHost, state: SourceState,
        inputs: [String: String]
    ) -> ComponentPlan {
        let layout = options.layout
        let component = source.component
        let tree = layout.sourceTree(component)
        let commitArgument = commit ?? "<commit>"
        let force = options.force ? ["--force"] : []
        func step(_ kind: StepKind, in directory: String, _ actions: [StepAction]) -> BuildStep {
            BuildStep(
                component: component, kind: kind, workingDirectory: directory, actions: actions,
                logPath: layout.logPath(component, kind))
        }
        func git(_ arguments: [String], in directory: String) -> StepAction {
            .run(StepCommand(["git", "-C", directory] + arguments, in: layout.buildDirectory))
        }

        var steps: [BuildStep] = []
        let repository = layout.repository(component)
        if !state.commitPresent {
            var actions: [StepAction] = [.makeDirectory(layout.buildDirectory)]
            if !state.repositoryExists {
                actions.append(
                    .run(
                        StepCommand(
                            ["git", "init", "--quiet"] + (component.isKernel ? ["--bare"] : []) + [repository], in: layout.buildDirectory)))
            }
            let fetched = layout.fetchedRef(component)
            switch source.ref {
            case .branch(let name):
                actions.append(git(["fetch", "--no-tags", source.url, "+refs/heads/\(name):\(fetched)"], in: repository))
            case .tag(let name):
                actions.append(git(["fetch", "--no-tags", source.url, "+refs/tags/\(name):refs/tags/\(name)"], in: repository))
            case .commit(let id) where id.count == 40:
                actions.append(git(["fetch", "--no-tags", source.url, "+\(id):\(fetched)"], in: repository))
            case .commit:
                // A short id can only be found among everything the remote has.
                actions.append(git(["fetch", "--tags", source.url, "+refs/heads/*:refs/sevvm/\(component)/heads/*"], in: repository))
            }
            steps.append(step(.fetch, in: layout.buildDirectory, actions))
        }

        var checkout: [StepAction] = []
        if component.isKernel && !state.treeExists {
            checkout.append(git(["worktree", "prune"], in: repository))
            checkout.append(git(["worktree", "add", "--detach"] + force + [tree, commitArgument], in: repository))
        } else {
            checkout.append(git(["checkout", "--quiet", "--detach"] + force + [commitArgument], in: tree))
        }
        if component == .ovmf {
            checkout.append(git(["submodule", "update", "--init", "--recursive"] + force, in: tree))
        }
        steps.append(step(.checkout, in: tree, checkout))

        let jobs = "-j\(options.jobs)"
        let commitFile = StepAction.writeFile(path: layout.sourceCommitFile(component), contents: commitArgument + "\n")
        switch component {
        case .qemu:
            steps.append(step(.configure, in: tree, [.run(StepCommand(qemuConfigureArguments(options: options), in: tree))]))
            steps.append(step(.compile, in: tree, [.run(StepCommand(["make", jobs], in: tree))]))
            let staging = layout.staging(component)
            steps.append(
                step(
                    .install, in: tree,
                    [
                        .removeTree(staging), .run(StepCommand(["make", "install", "DESTDIR=\(staging)"], in: tree)),
                        .commitStaging(staging: staging + options.installDirectory, destination: options.installDirectory), commitFile,
                    ]))
        case .ovmf:
            steps += ovmfSteps(tree: tree, options: options, state: state, step: step, commitFile: commitFile)
        case .kernelHost, .kernelGuest:
            steps += kernelSteps(
                component: component, tree: tree, commit: commit, options: options, host: host, step: step, commitFile: commitFile)
        }
        return ComponentPlan(source: source, commit: commit, sourceTree: tree, steps: steps, inputs: inputs)
    }

    /// OVMF without edksetup.sh: the variables it would export are set on the build command itself.
    private static func ovmfSteps(
        tree: String, options: BuildOptions, state: SourceState, step: (StepKind, String, [StepAction]) -> BuildStep,
        commitFile: StepAction
    ) -> [BuildStep] {
        let platform = options.ovmfPlatform
        let conf = tree + "/Conf"
        var configure: [StepAction] = [.run(StepCommand(["make", "-C", "BaseTools"], in: tree)), .makeDirectory(conf)]
        for (template, file) in [("target", "target"), ("tools_def", "tools_def"), ("build_rule", "build_rule")] {
            // Always refreshed (edksetup.sh --reconfig): a Conf/ left from an older edk2 is AMD's
            // "stale state" trap, and sevvm passes every build setting on the command line anyway.
            configure.append(
                .copyFile(from: "\(tree)/BaseTools/Conf/\(template).template", to: "\(conf)/\(file).txt", onlyIfMissing: false))
        }
        if platform == .amdSevX64 {
            // AMD's recipe: AmdSevX64 embeds a grub.efi that needs grub tooling; an empty one is enough for OVMF itself.
            configure.append(.touch(tree + "/OvmfPkg/AmdSev/Grub/grub.efi"))
        }
        let tag = state.toolchainTag ?? "<GCC5|GCC, read from BaseTools/Conf/tools_def.template after checkout>"
        // What edksetup.sh (BaseTools/BuildEnv) puts first on PATH: the wrappers and the C tools' bin folder.
        let path =
            "\(tree)/BaseTools/BinWrappers/PosixLike:\(tree)/BaseTools/Bin/Linux-x86_64:"
            + (options.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin")
        let environment = [
            "WORKSPACE": tree, "EDK_TOOLS_PATH": tree + "/BaseTools", "CONF_PATH": conf, "PATH": path,
            "PYTHON_COMMAND": options.environment["PYTHON_COMMAND"] ?? "python3",
        ]
        let build = ["build"] + ovmfBuildFlags + ["-n", "\(options.jobs)", "-p", platform.dscPath, "-t", tag]
        let firmware = "\(tree)/\(platform.outputDirectory)/DEBUG_\(tag)/FV"
        let stagingRoot = options.layout.staging(.ovmf)
        let shareQEMU = stagingRoot + "/share/qemu"
        var install: [StepAction] = [.removeTree(stagingRoot), .makeDirectory(shareQEMU)]
        for file in platform.firmwareFiles {
            install.append(.copyFile(from: "\(firmware)/\(file)", to: "\(shareQEMU)/\(file)", onlyIfMissing: false))
        }
        install.append(.commitStaging(staging: stagingRoot, destination: options.installDirectory))
        install.append(commitFile)
        return [
            step(.configure, tree, configure),
            step(.compile, tree, [.run(StepCommand(build, in: tree, environment: environment))]),
            step(.install, tree, install),
        ]
    }

    private static func kernelSteps(
        component: Component, tree: String, commit: String?, options: BuildOptions, host: BuildHost,
        step: (StepKind, String, [StepAction]) -> BuildStep, commitFile: StepAction
    ) -> [BuildStep] {
        let layout = options.layout
        let format = kernelPackageFormat(options: options, host: host)
        let jobs = "-j\(options.jobs)"
        let parent = tree.parentPath
        let config = ["./scripts/config", "--file", ".config", "--set-str", "LOCALVERSION", localVersion(component, commit: commit)]
        let staging = layout.staging(component)
        let collect: StepAction =
            format == .deb
            ? .collectFiles(from: parent, suffixes: [".deb"], to: staging, recursive: false)
            : .collectFiles(from: tree + "/rpmbuild/RPMS", suffixes: [".rpm"], to: staging, recursive: true)
        let clean: StepAction =
            format == .deb
            ? .removeFiles(directory: parent, suffixes: [".deb", ".buildinfo", ".changes"]) : .removeTree(tree + "/rpmbuild")
        return [
            step(
                .configure, tree,
                [
                    .copyFile(from: kernelConfigPath(options: options, host: host), to: tree + "/.config", onlyIfMissing: false),
                    .run(StepCommand(config + kernelConfigArguments, in: tree)),
                    .run(StepCommand(["make", "olddefconfig"], in: tree)),
                ]),
            // LOCALVERSION= on the command line keeps the kernel from appending '+' for an untagged tree.
            step(.compile, tree, [.run(StepCommand(["make", jobs, "LOCALVERSION="], in: tree))]),
            step(.package, tree, [clean, .run(StepCommand(["make", jobs, format.kernelTarget, "LOCALVERSION="], in: tree))]),
            step(
                .install, tree,
                [
                    .removeTree(staging), .makeDirectory(staging), collect,
                    .replaceDirectory(staging: staging, destination: layout.kernelPackages(component)), commitFile,
                ]),
        ]
    }

    /// Reads the toolchain tag an edk2 tree defines: GCC (newer edk2, which renamed GCC5) or GCC5.
    public static func detectToolchainTag(edk2Tree tree: String) -> String? {
        // The template is the checked-out tree's truth; Conf/tools_def.txt may be a stale copy.
        for candidate in ["/BaseTools/Conf/tools_def.template", "/Conf/tools_def.txt"] {
            guard let data = FileManager.default.contents(atPath: tree + candidate) else { continue }
            var hasGCC = false
            var hasGCC5 = false
            for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
                let trimmed = line.drop { $0 == " " || $0 == "\t" }
                if trimmed.hasPrefix("*_GCC_") { hasGCC = true }
                if trimmed.hasPrefix("*_GCC5_") { hasGCC5 = true }
            }
            if hasGCC { return "GCC" }
            if hasGCC5 { return "GCC5" }
        }
        return nil
    }
}

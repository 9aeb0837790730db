// `sevvm build` and `sevvm install-host`: parse, call the Builder library, print.
import ArgumentParser
import Builder
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

struct BuildCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Build the SEV-SNP host stack (kernels, QEMU, OVMF) from stable-commits, incrementally.",
        discussion: """
            Replaces AMD's build.sh. Sources are cloned under <workspace>/build/ (one clone per component; \
            the host and guest kernels share one object store), QEMU and OVMF are installed into \
            <workspace>/usr/local (where `sevvm start` and `sevvm caps` look first), kernel packages \
            are kept in build/linux/host and build/linux/guest.

            stable-commits names each component's repository and branch (AMD's variables). Pin a \
            component with QEMU_COMMIT=<id> or QEMU_TAG=<tag> (also OVMF_, KERNEL_HOST_, KERNEL_GUEST_).

            Every step logs to build/logs/<component>/<step>.log. A failed or interrupted build resumes \
            at the failed step on the next run. A component whose commit, inputs (configure flags, kernel \
            config and options, compiler version, CC/CFLAGS-like variables) and installed files match its \
            last successful build is skipped with one line; branch heads are checked with one \
            `git ls-remote` per repository, pinned commits need no network at all.

            Examples:
              sevvm build --dry-run          every step, command and folder; runs nothing
              sevvm build                    build or update everything
              sevvm build qemu ovmf -j 8
              sevvm build kernel guest --kernel-config ./guest.config
              sevvm build --package          also snp-release-<date>/ and its .tar.gz
              sevvm build ovmf --ovmf-platform AmdSevX64    for measured direct boot
            """)

    @OptionGroup var workspaceOptions: WorkspaceOptions

    @Argument(help: ArgumentHelp("What to build: qemu, ovmf, kernel, kernel host, kernel guest (default: all).", valueName: "component"))
    var components: [String] = []

    @Option(name: .long, help: ArgumentHelp("Install QEMU and OVMF here (default <workspace>/usr/local).", valueName: "DIR"))
    var install: String?

    @Option(name: [.short, .long], help: "Parallel jobs for make and edk2 build (default: the number of CPUs).")
    var jobs: Int?

    @Flag(name: .long, help: "Also make snp-release-<YYYY-MM-DD>/ (AMD's layout plus manifest.json) and its .tar.gz.")
    var package = false

    @Flag(name: .long, help: "Print the plan (steps, commands, folders) without fetching or running anything.")
    var dryRun = false

    @Flag(name: .long, help: "Rebuild even when up to date, and discard local modifications in the source trees.")
    var force = false

    @Flag(name: .long, help: "Install missing build tools with apt-get before building.")
    var installDeps = false

    @Option(name: .long, help: ArgumentHelp("The stable-commits file (default <workspace>/stable-commits).", valueName: "FILE"))
    var stableCommits: String?

    @Option(name: .long, help: ArgumentHelp("The .config kernels start from (default /boot/config-$(uname -r)).", valueName: "FILE"))
    var kernelConfig: String?

    @Option(name: .long, help: "OVMF platform: OvmfPkgX64 (default) or AmdSevX64 (measured direct boot; installs OVMF.fd only).")
    var ovmfPlatform: String = OVMFPlatform.ovmfX64.rawValue

    @Option(name: .long, help: "Kernel package format: deb or rpm (default: the distribution's).")
    var kernelPackage: String?

    mutating func run() async throws {
        let workspace = workspaceOptions.resolved
        let selection: [Component]
        do {
            selection = try Component.parseSelection(components)
        } catch {
            throw fail("\(error)")
        }
        var options = BuildOptions(workspace: workspace, components: selection)
        if let install { options.installDirectory = URL(fileURLWithPath: install).standardizedFileURL.path }
        if let stableCommits { options.stableCommitsPath = URL(fileURLWithPath: stableCommits).standardizedFileURL.path }
        if let kernelConfig { options.kernelConfig = URL(fileURLWithPath: kernelConfig).standardizedFileURL.path }
        if let jobs {
            guard jobs > 0 else { throw fail("--jobs must be at least 1") }
            options.jobs = jobs
        }
        guard let platform = OVMFPlatform(rawValue: ovmfPlatform) else {
            throw fail("--ovmf-platform must be OvmfPkgX64 or AmdSevX64, not '\(ovmfPlatform)'")
        }
        options.ovmfPlatform = platform
        if let kernelPackage {
            guard let format = PackageFormat(rawValue: kernelPackage) else { throw fail("--kernel-package must be deb or rpm") }
            options.kernelPackageFormat = format
        }
        options.force = force
        options.package = package
        options.installDependencies = installDeps

        if dryRun {
            do {
                print(try Builder(options: options).dryRun())
            } catch {
                throw fail("\(error)")
            }
            return
        }
        let progress = BuildProgress(terminal: Terminal())
        let started = Date()
        do {
            let report = try Builder(options: options, events: { progress.handle($0) }).run()
            progress.finish()
            let built = report.outcomes.filter { $0.result != .upToDate }.count
            let seconds = fixedDecimals(Date().timeIntervalSince(started), 2)
            print(
                built == 0
                    ? "nothing to do: everything is up to date (\(seconds)s)" : "built \(built) of \(report.outcomes.count) (\(seconds)s)")
        } catch let error as BuilderError {
            progress.finish()
            if case .interrupted = error { throw fail(error.description, code: 130) }
            throw fail(error.description)
        } catch {
            progress.finish()
            throw fail("\(error)")
        }
    }
}

struct InstallHostCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install-host",
        abstract: "Install a built release on this host: the SNP host kernel, QEMU/OVMF, and kvm.conf.",
        discussion: """
            Does what AMD's install.sh does, one printed step at a time: installs the host kernel \
            package from RELEASE-DIR/linux/host (dpkg on Debian and Ubuntu, dnf on Fedora-like \
            systems), copies the release's usr/local (QEMU and OVMF) into /usr/local or, with \
            --distribution-qemu, installs the distribution's qemu and ovmf packages instead, and \
            writes /etc/modprobe.d/kvm.conf (showing the difference when one exists). Finally it \
            says which kernel to boot.

            RELEASE-DIR defaults to the newest snp-release-* folder in the workspace.

            Examples:
              sevvm install-host --dry-run
              sudo sevvm install-host snp-release-2026-11-29
              sevvm install-host --root /srv/image    into a folder (packages unpacked)
            """)

    @OptionGroup var workspaceOptions: WorkspaceOptions

    @Argument(help: ArgumentHelp("The snp-release-<date> folder made by `sevvm build --package`.", valueName: "RELEASE-DIR"))
    var release: String?

    @Flag(name: .long, help: "Print every step without changing anything.")
    var dryRun = false

    @Option(name: .long, help: ArgumentHelp("Install into this root folder instead of /.", valueName: "DIR"))
    var root: String = "/"

    @Flag(name: .long, help: "Install the distribution's qemu and ovmf packages instead of the release's usr/local.")
    var distributionQemu = false

    mutating func run() async throws {
        let workspace = workspaceOptions.resolved
        do {
            let directory =
                try release.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
                ?? HostInstaller.newestRelease(in: workspace.root)
            var options = HostInstallOptions(releaseDirectory: directory)
            options.root = URL(fileURLWithPath: root).standardizedFileURL.path
            options.distributionQEMU = distributionQemu
            let plan = try HostInstaller.plan(options)
            if dryRun {
                print(plan.rendered())
                return
            }
            if options.root == "/" && geteuid() != 0 {
                throw fail("installing into / needs root: run it with sudo, or use --dry-run to see the steps")
            }
            try HostInstaller.run(plan, environment: options.environment) { print($0) }
        } catch let error as BuilderError {
            throw fail(error.description)
        }
    }
}

// The `sevvm build` engine: resolve commits, skip what is up to date, run or resume the rest, package.
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// What happened during a build, for progress displays.
public enum BuildEvent: Sendable {
    case upToDate(Component, commit: String)
    case componentStarted(Component, commit: String?, resumeAt: StepKind?, reason: String)
    case stepStarted(Component, StepKind, logPath: String)
    case stepFinished(Component, StepKind, seconds: Double)
    case componentFinished(Component, commit: String, seconds: Double)
    case note(String)
}

public typealias BuildEventHandler = @Sendable (BuildEvent) -> Void

public struct ComponentOutcome: Sendable, Equatable {
    public enum Result: Sendable, Equatable {
        case upToDate
        case built(steps: [StepKind])
    }
    public var component: Component
    public var commit: String
    public var result: Result
}

public struct BuildReport: Sendable {
    public var outcomes: [ComponentOutcome]
    public var release: ReleaseResult?
}

public final class Builder: @unchecked Sendable {
    public let options: BuildOptions
    private let events: BuildEventHandler
    private var hostFacts: BuildHost?
    private let cancellation = Cancellation()
    private var layout: BuildLayout { options.layout }

    public init(options: BuildOptions, host: BuildHost? = nil, events: @escaping BuildEventHandler = { _ in }) {
        self.options = options
        self.hostFacts = host
        self.events = events
    }

    private var host: BuildHost {
        if let hostFacts { return hostFacts }
        let probed = BuildHost.probe(environment: options.environment)
        hostFacts = probed
        return probed
    }

    private func sources() throws -> [ComponentSource] {
        let stable = try StableCommits.load(path: options.stableCommitsPath)
        return try options.components.map { try stable.source(for: $0) }
    }

    // MARK: dry run

    /// The whole plan as text, without touching the network or running anything: branch heads are
    /// shown as resolved at build time, pinned commits as they are.
    public func dryRun() throws -> String {
        let sources = try sources()
        let format = BuildPlanner.kernelPackageFormat(options: options, host: host)
        var sections = [
            "sevvm build plan (dry run: nothing is fetched, run or installed)",
            "stable-commits: \(options.stableCommitsPath)", "install: \(options.installDirectory)",
            "logs: \(layout.buildDirectory)/logs/<component>/<step>.log",
        ]
        let missing = ToolCheck.missing(for: options.components, packageFormat: format, environment: options.environment)
        if !missing.isEmpty {
            sections.append(
                "missing tools: \(missing.map(\.name).joined(separator: ", ")) (Debian packages: "
                    + "\(Self.packages(missing).joined(separator: " ")); --install-deps installs them)")
        }
        if options.components.contains(where: \.isKernel) {
            let config = BuildPlanner.kernelConfigPath(options: options, host: host)
            if !FileManager.default.fileExists(atPath: config) {
                sections.append("warning: the kernel config \(config) does not exist; pass --kernel-config FILE")
            }
        }
        for source in sources {
            var commit: String?
            if case .commit(let id) = source.ref, id.count == 40 { commit = id }
            let state = probeState(source.component, commit: commit)
            let inputs = BuildPlanner.inputs(
                for: source.component, options: options, host: host, kernelConfigDigest: kernelConfigDigestIfNeeded(source.component))
            let plan = BuildPlanner.plan(source: source, commit: commit, options: options, host: host, state: state, inputs: inputs)
            sections.append("")
            sections.append(plan.rendered())
        }
        if options.package {
            sections.append("")
            sections.append(ReleasePackager(options: options).describe())
        }
        return sections.joined(separator: "\n")
    }

    // MARK: build

    /// Builds what is not up to date. "Nothing changed" for a component means all of: the commit
    /// its branch head (one `git ls-remote` per URL) or pin resolves to equals the recorded one; its
    /// inputs (configure flags or kernel config digest and options, OVMF platform and flags, install
    /// folder, compiler version, CC/CFLAGS-like variables) equal the recorded ones; and every file its
    /// last build installed still has the recorded size and modification time. Anything else
    /// rebuilds it, resuming at the unfinished step when only a failure or Ctrl-C stopped it.
    public func run() throws -> BuildReport {
        let sources = try sources()
        try makeDirectory(layout.buildDirectory)
        let lock: FileLock
        do {
            lock = try FileLock.acquire(layout.lockPath, timeout: 0)
        } catch {
            throw BuilderError.io(path: layout.lockPath, operation: "lock", detail: "another `sevvm build` is running in this workspace")
        }
        defer { lock.unlock() }
        InterruptGuard.install()
        defer { InterruptGuard.uninstall() }

        let store = BuildRecordStore(layout: layout)
        let commits = try resolveCommits(sources)
        var outcomes: [ComponentOutcome] = []
        var pending: [PendingBuild] = []
        for source in sources {
            let component = source.component
            let commit = commits[component] ?? nil
            let inputs = BuildPlanner.inputs(
                for: component, options: options, host: host, kernelConfigDigest: kernelConfigDigestIfNeeded(component))
            let record = store.load(component)
            let staleness = record.map { $0.staleness(commit: commit, inputs: inputs) } ?? "never built"
            if let record, staleness == nil, !options.force {
                events(.upToDate(component, commit: record.commit))
                outcomes.append(ComponentOutcome(component: component, commit: record.commit, result: .upToDate))
            } else {
                let reason = options.force ? "--force" : staleness ?? "rebuild requested"
                pending.append(PendingBuild(source: source, commit: commit, inputs: inputs, previous: record, reason: reason))
            }
        }

        if !pending.isEmpty { try checkTools(pending.map(\.source.component)) }
        for item in pending {
            if item.source.component.isKernel {
                let config = BuildPlanner.kernelConfigPath(options: options, host: host)
                guard FileManager.default.fileExists(atPath: config) else { throw BuilderError.kernelConfigMissing(path: config) }
            }
            outcomes.append(try build(item, store: store))
        }
        var release: ReleaseResult?
        if options.package {
            release = try ReleasePackager(options: options).package(records: options.components.compactMap { store.load($0) })
            if let release { events(.note("release \(release.directory) and \(release.archive)")) }
        }
        return BuildReport(outcomes: outcomes, release: release)
    }

    /// A component that is not up to date, with what was found out about it.
    private struct PendingBuild {
        var source: ComponentSource
        var commit: String?
        var inputs: [String: String]
        var previous: BuildRecord?
        var reason: String
    }

    private func build(_ item: PendingBuild, store: BuildRecordStore) throws -> ComponentOutcome {
        let (source, inputs, previous, reason) = (item.source, item.inputs, item.previous, item.reason)
        let component = source.component
        let started = Date()
        var commit = item.commit
        var completed: [StepKind] = []
        if !options.force, let previous, let commit, previous.commit == commit, previous.inputs == inputs, !previous.complete {
            completed = previous.completedSteps
        }
        var record = BuildRecord(
            component: component, url: source.url, ref: source.ref.description, commit: commit ?? "", inputs: inputs,
            completedSteps: completed, failedStep: nil, complete: false, outputs: [], finished: nil)
        try store.save(record)
        var resumeAt: StepKind?
        var ran: [StepKind] = []
        let executor = StepExecutor(environment: options.environment, cancellation: cancellation)
        while true {
            let state = probeState(component, commit: commit)
            let plan = BuildPlanner.plan(source: source, commit: commit, options: options, host: host, state: state, inputs: inputs)
            guard let step = plan.steps.first(where: { !completed.contains($0.kind) }) else { break }
            if ran.isEmpty {
                if !completed.isEmpty { resumeAt = step.kind }
                events(.componentStarted(component, commit: commit, resumeAt: resumeAt, reason: reason))
            }
            if step.kind == .checkout && state.treeExists && !options.force { try refuseLocalModifications(component) }
            if component == .ovmf && step.kind == .compile && state.toolchainTag == nil {
                throw BuilderError.toolchainTagUnknown(path: plan.sourceTree + "/BaseTools/Conf/tools_def.template")
            }
            events(.stepStarted(component, step.kind, logPath: step.logPath))
            let stepStart = Date()
            let installed: [String]
            do {
                installed = try executor.run(step)
            } catch let error as BuilderError {
                // Failed or interrupted, the step stays unfinished: the next run starts there.
                record.failedStep = step.kind
                try? store.save(record)
                if step.kind == .fetch, case .stepFailed(_, _, _, _, let logPath, let tail) = error {
                    // Pinned sources skip ls-remote, so an unreachable URL shows up here first.
                    throw BuilderError.repositoryUnreachable(
                        variable: source.urlVariable, url: source.url, detail: (tail.last ?? "git fetch failed") + " (log \(logPath))")
                }
                throw error
            }
            events(.stepFinished(component, step.kind, seconds: Date().timeIntervalSince(stepStart)))
            ran.append(step.kind)
            completed.append(step.kind)
            if step.kind == .fetch && commit == nil {
                commit = try resolveLocally(source)
                record.commit = commit ?? ""
            }
            if !installed.isEmpty { record.outputs = installed.compactMap(OutputStamp.of) }
            record.completedSteps = completed
            try store.save(record)
        }
        record.complete = true
        record.failedStep = nil
        record.finished = Date()
        try store.save(record)
        events(.componentFinished(component, commit: record.commit, seconds: Date().timeIntervalSince(started)))
        return ComponentOutcome(component: component, commit: record.commit, result: .built(steps: ran))
    }

    /// Stops a running `run()` from another thread as Ctrl-C does: the current program is
    /// terminated, its step stays unfinished, and the next run resumes there.
    public func cancel() { cancellation.cancel() }

    // MARK: sources

    /// The commit each component builds. Branch heads cost one `git ls-remote` per repository URL
    /// (both kernels share one); commits need nothing; tags and short ids are read from the local
    /// clone when present (a tag is taken as immutable) and otherwise resolved by the fetch step.
    func resolveCommits(_ sources: [ComponentSource]) throws -> [Component: String?] {
        var result: [Component: String?] = [:]
        var branchesByURL: [String: [ComponentSource]] = [:]
        for source in sources {
            switch source.ref {
            case .branch: branchesByURL[source.url, default: []].append(source)
            case .commit(let id) where id.count == 40: result[source.component] = .some(id)
            case .commit, .tag: result[source.component] = .some(try? resolveLocally(source))
            }
        }
        for (url, group) in branchesByURL.sorted(by: { $0.key < $1.key }) {
            let refs = group.compactMap { source -> String? in
                if case .branch(let name) = source.ref { return "refs/heads/\(name)" }
                return nil
            }
            let answer: ProcessResult
            do {
                answer = try ProcessRunner.run(
                    ["git", "ls-remote", url] + refs, workingDirectory: layout.buildDirectory,
                    environment: options.environment.merging(["GIT_TERMINAL_PROMPT": "0"]) { _, new in new })
            } catch {
                throw BuilderError.missingTools(tools: ["git"], packages: ["git"])
            }
            guard answer.succeeded else {
                let detail = answer.stderrText.split(separator: "\n").last.map(String.init) ?? "git ls-remote exited with \(answer.status)"
                throw BuilderError.repositoryUnreachable(variable: group[0].urlVariable, url: url, detail: detail)
            }
            var heads: [String: String] = [:]
            for line in answer.stdoutText.split(separator: "\n") {
                let fields = line.split(separator: "\t")
                if fields.count == 2 { heads[String(fields[1])] = String(fields[0]) }
            }
            for source in group {
                guard case .branch(let name) = source.ref, let commit = heads["refs/heads/\(name)"] else {
                    throw BuilderError.refNotFound(variable: source.refVariable, ref: source.ref.description, url: url)
                }
                result[source.component] = .some(commit)
            }
        }
        return result
    }

    private func resolveLocally(_ source: ComponentSource) throws -> String? {
        let repository = layout.repository(source.component)
        let name: String
        switch source.ref {
        case .branch: name = layout.fetchedRef(source.component)
        case .tag(let tag): name = "refs/tags/\(tag)"
        case .commit(let id): name = id
        }
        guard FileManager.default.fileExists(atPath: repository) else { return nil }
        let answer = try ProcessRunner.run(["git", "-C", repository, "rev-parse", "--verify", "--quiet", "\(name)^{commit}"])
        guard answer.succeeded else {
            throw BuilderError.refNotFound(variable: source.refVariable, ref: source.ref.description, url: source.url)
        }
        return answer.stdoutText.trimmingWhitespace
    }

    private func probeState(_ component: Component, commit: String?) -> SourceState {
        let files = FileManager.default
        let repository = layout.repository(component)
        let tree = layout.sourceTree(component)
        let repositoryExists = files.fileExists(atPath: repository + (component.isKernel ? "/HEAD" : "/.git"))
        var present = false
        if repositoryExists, let commit {
            present = (try? ProcessRunner.run(["git", "-C", repository, "cat-file", "-e", "\(commit)^{commit}"]))?.succeeded ?? false
        }
        let treeExists = files.fileExists(atPath: tree + "/.git")
        return SourceState(
            repositoryExists: repositoryExists, treeExists: treeExists, commitPresent: present,
            toolchainTag: component == .ovmf && treeExists ? BuildPlanner.detectToolchainTag(edk2Tree: tree) : nil)
    }

    private func refuseLocalModifications(_ component: Component) throws {
        let tree = layout.sourceTree(component)
        let answer = try ProcessRunner.run(
            ["git", "-C", tree, "status", "--porcelain", "--untracked-files=no", "--ignore-submodules=all"])
        let changed = answer.stdoutText.split(separator: "\n").map(String.init)
        if !changed.isEmpty { throw BuilderError.localModifications(component: component.rawValue, tree: tree, files: changed) }
    }

    // MARK: inputs and tools

    private var configDigests: [String: String] = [:]

    private func kernelConfigDigestIfNeeded(_ component: Component) -> String? {
        guard component.isKernel else { return nil }
        let path = BuildPlanner.kernelConfigPath(options: options, host: host)
        if let known = configDigests[path] { return known }
        let digest = (try? FileDigest.sha256([path]))?[path]
        if let digest { configDigests[path] = digest }
        return digest
    }

    private func checkTools(_ components: [Component]) throws {
        let format = BuildPlanner.kernelPackageFormat(options: options, host: host)
        let missing = ToolCheck.missing(for: components, packageFormat: format, environment: options.environment)
        guard !missing.isEmpty else { return }
        let packages = Self.packages(missing)
        guard options.installDependencies else { throw BuilderError.missingTools(tools: missing.map(\.name), packages: packages) }
        events(.note("installing \(packages.joined(separator: " "))"))
        let step = BuildStep(
            component: components[0], kind: .configure, workingDirectory: layout.buildDirectory,
            actions: [.run(StepCommand(["apt-get", "install", "-y", "--no-install-recommends"] + packages, in: layout.buildDirectory))],
            logPath: layout.buildDirectory + "/logs/install-deps.log")
        _ = try StepExecutor(environment: options.environment.merging(["DEBIAN_FRONTEND": "noninteractive"]) { _, new in new }).run(step)
    }

    static func packages(_ requirements: [ToolRequirement]) -> [String] {
        var seen = Set<String>()
        return requirements.map(\.package).filter { seen.insert($0).inserted }
    }

    private func makeDirectory(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw BuilderError.io(path: path, operation: "create", detail: errorText(error))
        }
    }
}

/// SHA-256 of files through coreutils' sha256sum (argv, one process for all files).
public enum FileDigest {
    public static func sha256(_ paths: [String]) throws -> [String: String] {
        guard !paths.isEmpty else { return [:] }
        let answer = try ProcessRunner.run(["sha256sum", "--"] + paths)
        guard answer.succeeded else {
            throw BuilderError.io(path: paths.joined(separator: " "), operation: "hash", detail: answer.stderrText)
        }
        var digests: [String: String] = [:]
        for line in answer.stdoutText.split(separator: "\n") {
            // "<64 hex>  <path>"; paths with newlines are escaped by sha256sum and not expected here.
            guard line.count > 66 else { continue }
            let digest = String(line.prefix(64))
            digests[String(line.dropFirst(66))] = digest
        }
        return digests
    }
}

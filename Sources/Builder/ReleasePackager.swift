// --package: snp-release-<date>/ in AMD's layout with a manifest of commits, inputs and file hashes, plus its .tar.gz.
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

public struct ReleaseResult: Sendable, Equatable {
    public var directory: String
    public var archive: String
    public var manifest: String
    public var fileCount: Int
}

/// The manifest written into every release: what was built from where, and the hash of every file.
public struct ReleaseManifest: Codable, Sendable, Equatable {
    public struct ComponentEntry: Codable, Sendable, Equatable {
        public var component: Component
        public var url: String
        public var ref: String
        public var commit: String
        public var inputs: [String: String]
    }
    public struct FileEntry: Codable, Sendable, Equatable {
        public var path: String
        public var size: Int64
        public var sha256: String
    }
    public var release: String
    public var created: Date
    public var components: [ComponentEntry]
    public var files: [FileEntry]
}

public struct ReleasePackager: Sendable {
    public let options: BuildOptions
    /// AMD's kvm.conf: what makes kvm_amd enable SEV, SEV-ES and SEV-SNP at load.
    public static let kvmConf = "options kvm_amd sev-snp=1 sev=1 sev-es=1\n"

    public init(options: BuildOptions) { self.options = options }

    public var releaseName: String {
        "snp-release-" + Timestamp.localDay(options.releaseDate)
    }

    public var directory: String { options.releaseParent + "/" + releaseName }

    public func describe() -> String {
        [
            "package  \(directory)/ and \(directory).tar.gz",
            "      usr/local/...        files qemu and ovmf installed",
            "      linux/host, linux/guest  kernel packages",
            "      source-commit.*, source-config (stable-commits), kvm.conf, INSTALL, manifest.json (commits, inputs, SHA-256)",
            "      $ tar -czf \(directory).tar.gz -C \(options.releaseParent) \(releaseName)",
        ].joined(separator: "\n")
    }

    /// Builds the release in a hidden folder and renames it into place, so a failure never leaves
    /// half a release under the real name.
    public func package(records: [BuildRecord]) throws -> ReleaseResult {
        let missing = options.components.filter { component in !records.contains { $0.component == component && $0.complete } }
        guard missing.isEmpty else { throw BuilderError.nothingToPackage(missing: missing.map(\.rawValue)) }
        let files = FileManager.default
        let partial = options.releaseParent + "/." + releaseName + ".partial"
        do {
            if files.fileExists(atPath: partial) { try files.removeItem(atPath: partial) }
            try files.createDirectory(atPath: partial, withIntermediateDirectories: true)
            for record in records {
                for output in record.outputs {
                    let relative: String
                    if record.component.isKernel {
                        relative =
                            "linux/\(record.component == .kernelHost ? "host" : "guest")/" + output.path.fileName
                    } else if output.path.hasPrefix(options.installDirectory + "/") {
                        relative = "usr/local/" + output.path.dropFirst(options.installDirectory.count + 1)
                    } else {
                        continue
                    }
                    let target = partial + "/" + relative
                    try files.createDirectory(atPath: target.parentPath, withIntermediateDirectories: true)
                    try files.copyItem(atPath: output.path, toPath: target)
                }
                try AtomicFile.write(record.commit + "\n", to: partial + "/source-commit.\(record.component.sourceCommitName)")
            }
            try files.copyItem(atPath: options.stableCommitsPath, toPath: partial + "/source-config")
            try AtomicFile.write(Self.kvmConf, to: partial + "/kvm.conf")
            try AtomicFile.write(
                "Install on the SEV-SNP host with:\n    sevvm install-host \(releaseName)\n"
                    + "(add --dry-run to see every step first). Then reboot into the snp-host kernel.\n",
                to: partial + "/INSTALL")
            let manifest = try makeManifest(root: partial, records: records)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            encoder.dateEncodingStrategy = Timestamp.encodingStrategy
            try AtomicFile.write(try encoder.encode(manifest), to: partial + "/manifest.json")

            let previous = directory + ".previous"
            if files.fileExists(atPath: previous) { try files.removeItem(atPath: previous) }
            if files.fileExists(atPath: directory) { try files.moveItem(atPath: directory, toPath: previous) }
            try files.moveItem(atPath: partial, toPath: directory)
            if files.fileExists(atPath: previous) { try files.removeItem(atPath: previous) }
        } catch let error as BuilderError {
            throw error
        } catch {
            throw BuilderError.io(path: directory, operation: "write the release", detail: "\(error)")
        }
        let archive = directory + ".tar.gz"
        let partialArchive = options.releaseParent + "/." + releaseName + ".tar.gz.partial"
        let tar = try ProcessRunner.run(["tar", "-czf", partialArchive, "-C", options.releaseParent, releaseName])
        guard tar.succeeded, rename(partialArchive, archive) == 0 else {
            try? files.removeItem(atPath: partialArchive)
            if tar.stderrText.contains("No space left") { throw BuilderError.diskFull(path: archive, detail: "writing the archive") }
            throw BuilderError.io(path: archive, operation: "write", detail: tar.stderrText)
        }
        let count = ((try? files.subpathsOfDirectory(atPath: directory)) ?? []).count
        return ReleaseResult(directory: directory, archive: archive, manifest: directory + "/manifest.json", fileCount: count)
    }

    private func makeManifest(root: String, records: [BuildRecord]) throws -> ReleaseManifest {
        let files = FileManager.default
        let relativePaths = ((try? files.subpathsOfDirectory(atPath: root)) ?? []).sorted().filter { relative in
            var isDirectory = false
            return files.fileExists(atPath: root + "/" + relative, isDirectory: &isDirectory) && !isDirectory
        }
        let digests = try FileDigest.sha256(relativePaths.map { root + "/" + $0 })
        let entries = relativePaths.map { relative in
            ReleaseManifest.FileEntry(
                path: relative, size: OutputStamp.of(root + "/" + relative)?.size ?? 0, sha256: digests[root + "/" + relative] ?? "")
        }
        let components = records.map {
            ReleaseManifest.ComponentEntry(component: $0.component, url: $0.url, ref: $0.ref, commit: $0.commit, inputs: $0.inputs)
        }
        return ReleaseManifest(release: releaseName, created: options.releaseDate, components: components, files: entries)
    }
}

// `create` beyond the JSON file: new disk images (qemu-img), the per-VM OVMF vars copy, disk format detection.
import FoundationEssentials
import QMP
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// What `create` should make besides the definition itself.
public struct ProvisionRequest: Sendable {
    /// Create images/NAME.qcow2 of this many bytes and attach it as the first disk.
    public var newDiskBytes: Int64?
    /// Copy this OVMF_VARS template to images/NAME-OVMF_VARS.fd (modes with split firmware).
    public var varsTemplate: String?
    /// Detect the format of disks that do not say it (`qemu-img info`).
    public var detectFormats: Bool
    public var qemuImg: String

    public init(newDiskBytes: Int64? = nil, varsTemplate: String? = nil, detectFormats: Bool = true, qemuImg: String = "qemu-img") {
        self.newDiskBytes = newDiskBytes
        self.varsTemplate = varsTemplate
        self.detectFormats = detectFormats
        self.qemuImg = qemuImg
    }
}

extension DefinitionStore {
    /// The image `--disk-size` creates for `name`, relative to the workspace.
    public static func newDiskPath(for name: String) -> String { "images/\(name).qcow2" }
    /// The per-VM copy of the OVMF variables, relative to the workspace.
    public static func varsCopyPath(for name: String) -> String { "images/\(name)-OVMF_VARS.fd" }

    /// Creates a VM: new disk and vars copy as requested, formats detected, definition written
    /// exclusively. Everything is done under the vms/ lock, and whatever was made is removed
    /// again if a later step fails. Returns the written definition and warnings for the user.
    public func create(_ definition: VMDefinition, provisioning request: ProvisionRequest) throws -> (VMDefinition, [String]) {
        try withLock {
            var definition = definition
            let file = path(for: definition.name)
            try VMName.validate(definition.name)
            if exists(definition.name) { throw DefinitionError.alreadyExists(name: definition.name, path: file) }
            do {
                try definition.validate()
            } catch let error as DefinitionError {
                throw error.inFile(file)
            }
            var made: [String] = []
            do {
                if let bytes = request.newDiskBytes {
                    let relative = Self.newDiskPath(for: definition.name)
                    try makeDisk(at: workspace.resolve(relative), bytes: bytes, qemuImg: request.qemuImg)
                    made.append(workspace.resolve(relative))
                    definition.disks.insert(Disk(path: relative, format: "qcow2"), at: 0)
                    definition.created.disks.append(relative)
                }
                if let template = request.varsTemplate {
                    let relative = Self.varsCopyPath(for: definition.name)
                    try copyVars(from: template, to: workspace.resolve(relative))
                    made.append(workspace.resolve(relative))
                    definition.created.varsCopy = relative
                }
                if request.detectFormats {
                    for index in definition.disks.indices where definition.disks[index].format == nil {
                        definition.disks[index].format = DiskImage.format(
                            of: workspace.resolve(definition.disks[index].path), qemuImg: request.qemuImg)
                    }
                }
                try writeNew(definition)
            } catch {
                for path in made { unlink(path) }
                throw error
            }
            return (definition, Self.warnings(for: definition))
        }
    }

    /// Advice about choices that work but may hurt.
    public static func warnings(for definition: VMDefinition) -> [String] {
        var warnings: [String] = []
        for disk in definition.disks where disk.bus == .virtioBlk && definition.mode.isEncrypted {
            warnings.append(
                "disk \(disk.path) uses virtio-blk: in encrypted guests its multiqueue buffers can exhaust the SWIOTLB pool; "
                    + "prefer virtio-scsi (the default) or raise swiotlb= on the guest kernel command line")
        }
        for disk in definition.disks where disk.format == nil {
            warnings.append("the format of \(disk.path) is unknown; QEMU will probe it (set disks.N.format to be explicit)")
        }
        return warnings
    }

    private func makeDisk(at path: String, bytes: Int64, qemuImg: String) throws {
        guard access(path, F_OK) != 0 else {
            throw DefinitionError.io(
                path: path, operation: "create the disk image", reason: "a file is already there; use --disk \(path) to attach it")
        }
        try ensureDirectory(workspace.imagesDirectory)
        let arguments = [qemuImg, "create", "-q", "-f", "qcow2", path, String(bytes)]
        let result: ProcessResult
        do {
            result = try ProcessRunner.run(arguments)
        } catch {
            throw DefinitionError.toolFailed(tool: qemuImg, arguments: Array(arguments.dropFirst()), output: String(describing: error))
        }
        guard result.succeeded else {
            unlink(path)
            throw DefinitionError.toolFailed(tool: qemuImg, arguments: Array(arguments.dropFirst()), output: result.stderrText)
        }
    }

    private func copyVars(from template: String, to path: String) throws {
        guard let data = FileManager.default.contents(atPath: template) else {
            throw DefinitionError.missingFile(file: nil, field: "firmware vars template", path: template)
        }
        try ensureDirectory(workspace.imagesDirectory)
        do {
            try AtomicFile.write(data, to: path, permissions: 0o600, exclusive: true)
        } catch {
            throw DefinitionError.io(path: path, operation: "copy the OVMF variables to", reason: String(describing: error))
        }
    }
}

/// Facts about disk images from `qemu-img info`.
public enum DiskImage {
    /// The image's format as qemu-img reports it, or nil when qemu-img is missing or fails.
    public static func format(of path: String, qemuImg: String = "qemu-img") -> String? {
        guard let result = try? ProcessRunner.run([qemuImg, "info", "-U", "--output=json", path]), result.succeeded,
            case .string(let format)? = (try? JSONValue.parse(result.stdoutText))?["format"]
        else { return nil }
        return format
    }
}

// The vms/ folder: load, list, create, save and remove definitions with atomic writes under a lock.
import Dispatch
import FoundationEssentials
import QMP
import Support

#if canImport(Glibc)
    import Glibc
#endif

public struct DefinitionStore: Sendable {
    public let workspace: Workspace

    public init(workspace: Workspace) { self.workspace = workspace }

    /// One file in vms/: its name and either the definition or why it could not be read.
    public struct Entry: Sendable {
        public var name: String
        public var path: String
        public var result: Result<VMDefinition, DefinitionError>
    }

    public func path(for name: String) -> String { workspace.definitionPath(for: name) }

    /// The lock every change to vms/ is made under.
    public var lockPath: String { workspace.vmsDirectory + "/.lock" }

    /// Names of all definitions (files vms/NAME.json with a valid NAME), sorted.
    public func names() throws -> [String] {
        guard let directory = opendir(workspace.vmsDirectory) else {
            if errno == ENOENT { return [] }
            throw DefinitionError.io(path: workspace.vmsDirectory, operation: "read the folder", reason: String(cString: strerror(errno)))
        }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let file = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            guard file.hasSuffix(".json"), !file.hasPrefix(".") else { continue }
            let name = String(file.dropLast(5))
            if VMName.isValid(name) { names.append(name) }
        }
        return names.sorted()
    }

    /// Every definition, each decoded on its own so one broken file does not hide the others.
    /// Files are read and decoded in parallel: `list` of 1,000 definitions must stay fast.
    public func entries() throws -> [Entry] {
        let names = try names()
        let results = EntrySlots(count: names.count)
        DispatchQueue.concurrentPerform(iterations: names.count) { index in
            let file = path(for: names[index])
            do {
                results.set(index, .success(try decode(contentsOf: file, name: names[index])))
            } catch let error as DefinitionError {
                results.set(index, .failure(error))
            } catch {
                results.set(index, .failure(.io(path: file, operation: "read", reason: String(describing: error))))
            }
        }
        return names.indices.map { index in
            Entry(name: names[index], path: path(for: names[index]), result: results.get(index))
        }
    }

    /// Every definition, sorted by name; throws the first broken file's error.
    public func list() throws -> [VMDefinition] {
        try entries().map { try $0.result.get() }
    }

    public func exists(_ name: String) -> Bool { access(path(for: name), F_OK) == 0 }

    /// The definition called `name`, decoded strictly and validated (files are not checked here).
    public func load(_ name: String) throws -> VMDefinition {
        try VMName.validate(name)
        return try decode(contentsOf: path(for: name), name: name)
    }

    /// Decodes and validates definition JSON; errors name `file`. json-c parses, and the
    /// definition is read straight from its tree: `list` of 1,000 files stays fast.
    public static func decode(_ data: Data, file: String) throws -> VMDefinition {
        try decode(json: DefinitionError.parse(String(decoding: data, as: UTF8.self), file: file), file: file)
    }

    /// Validates and reads an already parsed definition; errors name `file`.
    public static func decode(json: JSONValue, file: String) throws -> VMDefinition {
        do {
            let definition = try VMDefinition(json: json, path: "")
            if definition.schemaVersion > VMDefinition.currentSchemaVersion {
                throw DefinitionError.unsupportedSchema(
                    file: file, version: definition.schemaVersion, supported: VMDefinition.currentSchemaVersion)
            }
            try definition.validate()
            return definition
        } catch let error as DefinitionError {
            throw error.inFile(file)
        }
    }

    /// The JSON sevvm writes: pretty, sorted keys (a stable order for diffs), trailing newline.
    public static func encode(_ definition: VMDefinition) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(definition)
        data.append(UInt8(ascii: "\n"))
        return data
    }

    /// Writes a new definition. Exclusive: when two `create`s race for one name, exactly one
    /// succeeds and the other gets `alreadyExists`.
    public func create(_ definition: VMDefinition) throws {
        try withLock { try writeNew(definition) }
    }

    /// Replaces an existing definition atomically.
    public func save(_ definition: VMDefinition) throws {
        try withLock { try replace(definition) }
    }

    /// Loads, changes, validates (files included) and saves one definition under the lock.
    @discardableResult
    public func update(_ name: String, _ change: (inout VMDefinition) throws -> Void) throws -> VMDefinition {
        try withLock {
            var definition = try load(name)
            try change(&definition)
            guard definition.name == name else {
                throw DefinitionError.unknownKey(key: "name", reason: "a VM cannot be renamed by editing")
            }
            try checkAll(definition)
            try replace(definition)
            return definition
        }
    }

    /// Removes the definition and the files sevvm created for it (its disk images and vars
    /// copy), plus disks it did not create only with `deleteUserDisks`. Refuses a running VM.
    /// Returns the paths removed.
    @discardableResult
    public func remove(_ name: String, deleteUserDisks: Bool = false) throws -> [String] {
        try withLock {
            let definition = try load(name)
            if case .running(let pid) = LiveState.probe(workspace: workspace, name: name) {
                throw DefinitionError.vmRunning(name: name, pid: pid)
            }
            // images/NAME-OVMF_VARS.fd is sevvm's own name: it may have been made by a later `start --sev`.
            var files = definition.created.disks + [definition.created.varsCopy, Self.varsCopyPath(for: name)].compactMap { $0 }
            if deleteUserDisks { files += definition.disks.map(\.path) }
            var removed: [String] = []
            for file in Set(files.map(workspace.resolve)).sorted() where unlink(file) == 0 {
                removed.append(file)
            }
            let file = path(for: name)
            guard unlink(file) == 0 else {
                throw DefinitionError.io(path: file, operation: "remove", reason: String(cString: strerror(errno)))
            }
            removed.append(file)
            // The runtime folder only holds leftovers of past runs (logs, stale sockets).
            let runtime = workspace.runtimeDirectory(for: name)
            if (try? FileManager.default.removeItem(atPath: runtime)) != nil { removed.append(runtime) }
            return removed
        }
    }

    /// Runs `body` holding the vms/ lock (creating vms/ when needed).
    public func withLock<T>(_ body: () throws -> T) throws -> T {
        try ensureDirectory(workspace.vmsDirectory)
        let lock: FileLock
        do {
            lock = try FileLock.acquire(lockPath, timeout: 30)
        } catch {
            throw DefinitionError.io(path: lockPath, operation: "lock", reason: String(describing: error))
        }
        defer { lock.unlock() }
        return try body()
    }

    /// Full check before a write: structure, then the files it names.
    func checkAll(_ definition: VMDefinition) throws {
        let file = path(for: definition.name)
        do {
            try definition.validate()
            try definition.validateFiles(in: workspace)
        } catch let error as DefinitionError {
            throw error.inFile(file)
        }
    }

    /// Writes a new file; the caller holds the lock.
    func writeNew(_ definition: VMDefinition) throws {
        try VMName.validate(definition.name)
        let file = path(for: definition.name)
        if exists(definition.name) { throw DefinitionError.alreadyExists(name: definition.name, path: file) }
        try checkAll(definition)
        do {
            try AtomicFile.write(try Self.encode(definition), to: file, permissions: 0o644, exclusive: true)
        } catch SupportError.io(_, _, EEXIST) {
            throw DefinitionError.alreadyExists(name: definition.name, path: file)
        } catch let error as SupportError {
            throw DefinitionError.io(path: file, operation: "write", reason: error.description)
        }
    }

    private func replace(_ definition: VMDefinition) throws {
        let file = path(for: definition.name)
        guard exists(definition.name) else { throw DefinitionError.notFound(name: definition.name, path: file) }
        do {
            try AtomicFile.write(try Self.encode(definition), to: file, permissions: 0o644)
        } catch let error as SupportError {
            throw DefinitionError.io(path: file, operation: "write", reason: error.description)
        }
    }

    /// Creates a workspace folder (vms/, images/) when it is missing.
    func ensureDirectory(_ path: String) throws {
        guard access(path, F_OK) != 0 else { return }
        do {
            try AtomicFile.makeDirectory(path, permissions: 0o755)
        } catch {
            throw DefinitionError.io(path: path, operation: "create", reason: String(describing: error))
        }
    }

    private func decode(contentsOf file: String, name: String) throws -> VMDefinition {
        let data = try Self.read(file, name: name)
        let definition = try Self.decode(data, file: file)
        guard definition.name == name else {
            throw DefinitionError.invalidValue(
                file: file, field: "name", value: definition.name, allowed: "'\(name)', the file's name (rename the file or fix the field)")
        }
        return definition
    }

    /// Reads a whole file with plain read(2): cheaper than Foundation's file APIs for many small files.
    static func read(_ file: String, name: String) throws -> Data {
        let fd = open(file, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { throw DefinitionError.notFound(name: name, path: file) }
            throw DefinitionError.io(path: file, operation: "read", reason: String(cString: strerror(errno)))
        }
        defer { close(fd) }
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            let count = Glibc.read(fd, &buffer, buffer.count)
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { throw DefinitionError.io(path: file, operation: "read", reason: String(cString: strerror(errno))) }
            if count == 0 { return data }
            data.append(contentsOf: buffer[0..<count])
        }
    }
}

/// Results written by parallel decoders, one slot each.
private final class EntrySlots: @unchecked Sendable {
    private let lock = Lock()
    private var slots: [Result<VMDefinition, DefinitionError>?]

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func set(_ index: Int, _ result: Result<VMDefinition, DefinitionError>) { lock.withLock { slots[index] = result } }

    func get(_ index: Int) -> Result<VMDefinition, DefinitionError> {
        lock.withLock { slots[index] } ?? .failure(.io(path: "", operation: "decode", reason: "not decoded"))
    }
}

// The one error type of the Builder target: every way `sevvm build` and `install-host` can fail, with what to do.
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

public enum BuilderError: Error, CustomStringConvertible, Equatable {
    case stableCommitsMissing(path: String)
    case stableCommitsSyntax(path: String, line: Int, text: String, reason: String)
    case variableMissing(path: String, variable: String, component: String)
    case variableInvalid(path: String, line: Int, variable: String, value: String, allowed: String)
    case conflictingPins(path: String, first: String, second: String)
    case unknownComponent(word: String)
    case repositoryUnreachable(variable: String, url: String, detail: String)
    case refNotFound(variable: String, ref: String, url: String)
    case localModifications(component: String, tree: String, files: [String])
    case missingTools(tools: [String], packages: [String])
    case stepFailed(component: String, step: String, command: String, status: Int32, logPath: String, logTail: [String])
    case interrupted(component: String, step: String)
    case diskFull(path: String, detail: String)
    case kernelConfigMissing(path: String)
    case toolchainTagUnknown(path: String)
    case outputMissing(component: String, path: String, step: String)
    case nothingToPackage(missing: [String])
    case releaseNotFound(path: String)
    case unsupportedDistribution(id: String)
    case io(path: String, operation: String, detail: String)

    public var description: String {
        switch self {
        case .stableCommitsMissing(let path):
            return "\(path) does not exist; create it with KERNEL_GIT_URL, QEMU_GIT_URL, OVMF_GIT_URL and their branches "
                + "(see the stable-commits file at the root of the sevvm repository), or pass --stable-commits FILE"
        case .stableCommitsSyntax(let path, let line, let text, let reason):
            return "\(path):\(line): \(reason)\n    \(text)\n"
                + "stable-commits holds NAME=VALUE lines (optionally quoted, optionally prefixed by export), comments and blank lines"
        case .variableMissing(let path, let variable, let component):
            return "\(path): \(variable) is not set, so \(component) cannot be built; add \(variable)=... to the file"
        case .variableInvalid(let path, let line, let variable, let value, let allowed):
            return "\(path):\(line): \(variable)=\(value) is not valid: \(allowed)"
        case .conflictingPins(let path, let first, let second):
            return "\(path): both \(first) and \(second) are set; keep one of them"
        case .unknownComponent(let word):
            return "unknown component '\(word)'; choose qemu, ovmf, kernel, kernel host or kernel guest (default: all)"
        case .repositoryUnreachable(let variable, let url, let detail):
            return "could not reach \(url) (\(variable)): \(detail)\n"
                + "check the network, or point \(variable) in stable-commits at a reachable mirror"
        case .refNotFound(let variable, let ref, let url):
            return "\(url) has no \(ref) (\(variable)); check the name in stable-commits"
        case .localModifications(let component, let tree, let files):
            let shown = files.prefix(8).joined(separator: "\n    ")
            return "\(tree) (\(component)) has local modifications:\n    \(shown)\n"
                + "commit or stash them, or rerun with --force to discard them"
        case .missingTools(let tools, let packages):
            return "missing build tools and headers: \(tools.joined(separator: ", "))\n"
                + "install them with: apt-get install \(packages.joined(separator: " "))  (or rerun with --install-deps)"
        case .stepFailed(let component, let step, let command, let status, let logPath, let logTail):
            let tail = logTail.isEmpty ? "    (the log is empty)" : logTail.map { "    " + $0 }.joined(separator: "\n")
            return "\(component) \(step) failed (exit status \(status)) running:\n    \(command)\n"
                + "last lines of \(logPath):\n\(tail)\n"
                + "fix the cause and run `sevvm build` again: it resumes at \(step); earlier installed files are untouched"
        case .interrupted(let component, let step):
            return "interrupted during \(component) \(step); run `sevvm build` again to resume from that step"
        case .diskFull(let path, let detail):
            return "no space left on the device holding \(path) (\(detail)); free some space and run `sevvm build` again "
                + "(it resumes where it stopped; earlier installed files are untouched)"
        case .kernelConfigMissing(let path):
            return "kernel configuration \(path) does not exist; pass --kernel-config FILE with a .config to start from"
        case .toolchainTagUnknown(let path):
            return "\(path) defines neither the GCC nor the GCC5 toolchain tag; this edk2 tree is not supported"
        case .outputMissing(let component, let path, let step):
            return "\(component) \(step) finished but \(path) was not produced; see build/logs/\(component)/\(step).log"
        case .nothingToPackage(let missing):
            return "cannot package: no successful build recorded for \(missing.joined(separator: ", ")); run `sevvm build` first"
        case .releaseNotFound(let path):
            return "no release folder at \(path); run `sevvm build --package` first or name the snp-release-DATE folder"
        case .unsupportedDistribution(let id):
            return "distribution '\(id)' is neither Debian-like nor Fedora-like; install the kernel package by hand"
        case .io(let path, let operation, let detail):
            return "could not \(operation) \(path): \(detail)"
        }
    }
}

// The four things `sevvm build` builds, and how the command line names them.
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

public enum Component: String, CaseIterable, Codable, Sendable, CustomStringConvertible {
    case qemu
    case ovmf
    case kernelHost = "kernel-host"
    case kernelGuest = "kernel-guest"

    public var description: String { rawValue }

    /// The prefix of this component's variables in stable-commits (QEMU_BRANCH, KERNEL_HOST_COMMIT, ...).
    public var variablePrefix: String {
        switch self {
        case .qemu: return "QEMU"
        case .ovmf: return "OVMF"
        case .kernelHost: return "KERNEL_HOST"
        case .kernelGuest: return "KERNEL_GUEST"
        }
    }

    /// The variable holding the repository URL (both kernels share one repository).
    public var urlVariable: String {
        switch self {
        case .qemu: return "QEMU_GIT_URL"
        case .ovmf: return "OVMF_GIT_URL"
        case .kernelHost, .kernelGuest: return "KERNEL_GIT_URL"
        }
    }

    /// The suffix of AMD's `source-commit.<name>` file.
    public var sourceCommitName: String {
        switch self {
        case .qemu: return "qemu"
        case .ovmf: return "ovmf"
        case .kernelHost: return "kernel.host"
        case .kernelGuest: return "kernel.guest"
        }
    }

    public var isKernel: Bool { self == .kernelHost || self == .kernelGuest }

    /// Parses the positional words of `sevvm build [qemu|ovmf|kernel [host|guest]]`; none means all.
    public static func parseSelection(_ words: [String]) throws -> [Component] {
        var chosen: [Component] = []
        var index = 0
        func add(_ component: Component) { if !chosen.contains(component) { chosen.append(component) } }
        while index < words.count {
            let word = words[index].lowercased()
            index += 1
            switch word {
            case "qemu": add(.qemu)
            case "ovmf": add(.ovmf)
            case "kernel-host": add(.kernelHost)
            case "kernel-guest": add(.kernelGuest)
            case "kernel", "linux":
                if index < words.count, ["host", "guest"].contains(words[index].lowercased()) {
                    add(words[index].lowercased() == "host" ? .kernelHost : .kernelGuest)
                    index += 1
                } else {
                    add(.kernelHost)
                    add(.kernelGuest)
                }
            default: throw BuilderError.unknownComponent(word: words[index - 1])
            }
        }
        let all = chosen.isEmpty ? Component.allCases : chosen
        return Component.allCases.filter { all.contains($0) }
    }
}

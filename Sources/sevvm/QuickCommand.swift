// QuickCommand: `status` and `measure` without swift-argument-parser's start-up, for plain argument lists.
import ArgumentParser
import FoundationEssentials
import Support

/// Why: swift-argument-parser builds its parsers by reflection, and every new type makes the Swift
/// runtime scan all ~4,800 protocol conformance records in the binary: about 3 ms of a 12 ms
/// `status`. Scripts poll `status`, and verifiers run `measure` for every launch, so these two
/// commands read a plain argument list themselves and call the same code the parsed command runs.
///
/// Anything that is not plain goes to ArgumentParser, which owns every message: help, --version,
/// an unknown or repeated option, a missing or odd value, `--`, bundled short flags, a number that
/// does not parse. SEVVM_ARGUMENT_PARSER=1 sends everything there (CLITests run each case both
/// ways and require the same output and exit status).
enum QuickCommand {
    /// The long options and flags a command takes, as ArgumentParser spells them.
    struct Grammar {
        var flags: Set<String> = []
        var shortFlags: [String: String] = [:]
        var options: Set<String> = []
        var positionals = 0
    }

    /// A plain argument list split by a grammar.
    struct Arguments {
        var flags: Set<String> = []
        var options: [String: String] = [:]
        var positionals: [String] = []

        /// The option's integer: `.some(nil)` when the option is absent, nil when its value is
        /// not an integer (then ArgumentParser must say so).
        func integer(_ name: String) -> Int?? {
            guard let text = options[name] else { return .some(nil) }
            guard let value = Int(text) else { return nil }
            return .some(value)
        }
    }

    static let status = Grammar(flags: ["--json"], options: ["--workspace"], positionals: 1)
    static let measure = Grammar(
        flags: ["--verbose", "--json"], shortFlags: ["-v": "--verbose"],
        options: [
            "--mode", "--ovmf", "--kernel", "--initrd", "--append", "--vcpus", "--vcpu-type", "--vcpu-sig", "--vcpu-family",
            "--vcpu-model", "--vcpu-stepping", "--vmm-type", "--guest-features", "--snp-ovmf-hash", "--output-format",
            "--workspace",
        ],
        positionals: 1)

    /// Runs the command when `arguments` (without the program name) are plain; false when
    /// ArgumentParser must handle them. Errors end the process as ArgumentParser's main would.
    static func runIfPlain(_ arguments: [String]) -> Bool {
        guard environmentValue("SEVVM_ARGUMENT_PARSER") != "1", let command = arguments.first else { return false }
        do {
            switch command {
            case "status":
                guard let request = statusRequest(arguments.dropFirst()) else { return false }
                try StatusCommand.run(name: request.name, workspace: Workspace.resolve(option: request.workspace), json: request.json)
                return true
            case "measure":
                guard let request = measureRequest(arguments.dropFirst()) else { return false }
                try request.run()
                return true
            default:
                return false
            }
        } catch {
            Sevvm.exit(withError: error)
        }
    }

    static func statusRequest(_ arguments: ArraySlice<String>) -> (name: String, json: Bool, workspace: String?)? {
        guard let parsed = split(arguments, status), let name = parsed.positionals.first else { return nil }
        return (name, parsed.flags.contains("--json"), parsed.options["--workspace"])
    }

    static func measureRequest(_ arguments: ArraySlice<String>) -> MeasureRequest? {
        guard let parsed = split(arguments, measure),
            case .some(let vcpus) = parsed.integer("--vcpus"),
            case .some(let family) = parsed.integer("--vcpu-family"),
            case .some(let model) = parsed.integer("--vcpu-model"),
            case .some(let stepping) = parsed.integer("--vcpu-stepping")
        else { return nil }
        let options = parsed.options
        var request = MeasureRequest(
            name: parsed.positionals.first, mode: options["--mode"], ovmf: options["--ovmf"], kernel: options["--kernel"],
            initrd: options["--initrd"], append: options["--append"], vcpus: vcpus, vcpuType: options["--vcpu-type"],
            vcpuSig: options["--vcpu-sig"], vcpuFamily: family, vcpuModel: model, vcpuStepping: stepping,
            snpOVMFHash: options["--snp-ovmf-hash"], verbose: parsed.flags.contains("--verbose"), workspace: options["--workspace"],
            json: parsed.flags.contains("--json"))
        if let vmm = options["--vmm-type"] { request.vmmType = vmm }
        if let features = options["--guest-features"] { request.guestFeatures = features }
        if let format = options["--output-format"] { request.outputFormat = format }
        return request
    }

    /// Splits `arguments` by `grammar`, or nil when any of them is not plain.
    static func split(_ arguments: ArraySlice<String>, _ grammar: Grammar) -> Arguments? {
        var result = Arguments()
        var rest = arguments[...]
        while let argument = rest.popFirst() {
            if let long = grammar.shortFlags[argument] {
                guard result.flags.insert(long).inserted else { return nil }
                continue
            }
            guard argument.hasPrefix("--") else {
                // A lone "-", short options and negative numbers are ArgumentParser's to judge.
                guard !argument.hasPrefix("-"), result.positionals.count < grammar.positionals else { return nil }
                result.positionals.append(argument)
                continue
            }
            let parts = argument.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0])
            if grammar.flags.contains(name) {
                guard parts.count == 1, result.flags.insert(name).inserted else { return nil }
            } else if grammar.options.contains(name), result.options[name] == nil {
                let value = parts.count == 2 ? String(parts[1]) : rest.popFirst()
                guard let value, !value.isEmpty, !value.hasPrefix("-") else { return nil }
                result.options[name] = value
            } else {
                return nil
            }
        }
        return result
    }
}

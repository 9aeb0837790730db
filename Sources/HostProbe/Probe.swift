// HostProber.probe: runs the check tree over CPU, BIOS, kernel, KVM, PSP, QEMU, OVMF and QMP, and builds the report.
import FoundationEssentials
import QMP
import Support

#if canImport(Glibc)
    import Glibc
#endif

extension HostProber {
    /// Probes the host. The slow part, QEMU, runs while the file and device checks do: a throw-away
    /// QEMU answers its version, SEV objects and query-sev-capabilities in one start; with another
    /// route, `--version` and `-object ...,help` are asked of the binary instead.
    public func probe(_ options: ProbeOptions) async -> HostReport {
        let location = Result {
            try QEMUDiscovery.locate(workspace: options.workspace, explicitPath: options.qemuPath, searchPath: options.searchPath)
        }
        var throwaway = false
        if case .throwawayQEMU = options.capabilities { throwaway = true }
        async let capabilityQuery = queryCapabilities(options.capabilities, qemuPath: try? location.get().path)
        async let askedBinary = throwaway ? nil : Self.askBinary(location)

        var tree = CheckTree()
        let cpu = CPUIdentity(cpuid: cpuid)
        let features = MemoryEncryptionFeatures.read(from: cpuid)
        let facts = HostProber.probeSEVHostFacts(root: root.path, cpuid: cpuid)
        checkCPU(&tree, cpu: cpu, features: features)
        checkBIOS(&tree)
        let kernel = checkKernel(&tree)
        checkKVM(&tree)
        let platform = checkPlatform(&tree, cpu: cpu)
        checkResources(&tree, options: options)
        let firmware = Dictionary(
            uniqueKeysWithValues: [GuestMode.sev, .snp].map { mode in
                (
                    mode.rawValue,
                    Result { try FirmwareDiscovery.find(for: mode, workspace: options.workspace, explicitPath: nil, root: root) }
                )
            })

        let query = await capabilityQuery
        var binary = await askedBinary
        if binary == nil {
            // The throw-away QEMU told its version over QMP; if it never started, ask the binary.
            if let version = query?.qemuVersion, case .success(let location) = location {
                binary = (.success(QEMUInstallation(path: location.path, version: version, origin: location.origin)), query?.qemuSupport)
            } else {
                binary = await Self.askBinary(location)
            }
        }
        let qemu = binary?.0 ?? .failure(HostProbeError.qemuNotFound(searched: []))
        let support = binary?.1
        checkQEMU(&tree, qemu: qemu, support: support)
        checkFirmware(&tree, firmware: firmware)
        let capabilities = checkCapabilities(&tree, query)
        checkLibvirt(&tree, searchPath: options.searchPath)

        let summary = HostSummary(
            cpu: cpu, encryption: features, kernel: kernel, sevFirmware: platform.sev, snpFirmware: platform.snp, chipID: platform.chipID)
        return HostReport(
            schemaVersion: HostReport.currentSchemaVersion, host: summary, facts: facts, checks: tree.checks,
            verdicts: HostReport.verdicts(for: tree.checks), qemu: try? qemu.get(), qemuSupport: support,
            firmware: firmware.compactMapValues { try? $0.get() }, capabilities: capabilities)
    }

    // MARK: CPU and BIOS

    private func checkCPU(_ tree: inout CheckTree, cpu: CPUIdentity, features: MemoryEncryptionFeatures?) {
        let all: [GuestMode] = [.sev, .sevES, .snp]
        tree.add("cpu.vendor", .cpu, gates: all) {
            let name = cpu.brand.isEmpty ? cpu.vendor : cpu.brand
            let family = "family 0x\(String(cpu.family, radix: 16)) model 0x\(String(cpu.model, radix: 16))"
            let generation = cpu.generation.map { "\($0), " } ?? ""
            guard cpu.isAMD else {
                return .fail("\(name) (\(cpu.vendor)) is not an AMD CPU", hint: "SEV needs an AMD EPYC processor (7001 or newer)")
            }
            return .pass("\(name) (\(generation)\(family))")
        }
        tree.add("cpu.sev", .cpu, parent: "cpu.vendor", gates: all) {
            guard let features, features.sev else {
                return .fail(
                    "CPUID 0x8000001F does not report SEV",
                    hint: "SEV needs an EPYC CPU with SEV switched on: \(Fix.smee); in a VM the hypervisor hides it")
            }
            return .pass(
                "SEV: C-bit \(features.cbitpos), \(features.reducedPhysBits) reduced physical address bit(s), "
                    + "\(features.encryptedGuests) encrypted guests, SEV-only ASIDs from \(features.minimumSEVASID)")
        }
        tree.add("cpu.sev-es", .cpu, parent: "cpu.sev", gates: [.sevES, .snp]) {
            features?.sevES == true
                ? .pass("SEV-ES supported")
                : .fail("CPUID does not report SEV-ES", hint: "SEV-ES needs EPYC 7002 (Rome) or newer")
        }
        tree.add("cpu.snp", .cpu, parent: "cpu.sev-es", gates: [.snp]) {
            guard let features, features.snp else {
                return .fail("CPUID does not report SEV-SNP", hint: "SNP needs EPYC 7003 (Milan) or newer with \(Fix.snpBIOS)")
            }
            return .pass("SEV-SNP supported, \(features.vmplCount) VMPLs")
        }
    }

    private func checkBIOS(_ tree: inout CheckTree) {
        let syscfg = Result { try msr.read(0xC001_0010) }
        tree.add("bios.smee", .bios, parent: "cpu.sev", gates: [.sev, .sevES, .snp]) {
            switch syscfg {
            case .failure(let error):
                return .skip("SYSCFG MSR unreadable (\(error)); `modprobe msr` and run as root to check SMEE")
            case .success(let value):
                return value & (1 << 23) != 0
                    ? .pass("SYSCFG 0x\(String(value, radix: 16)): memory encryption (SMEE) enabled")
                    : .fail("SYSCFG 0x\(String(value, radix: 16)): SMEE (bit 23) is off", hint: Fix.smee)
            }
        }
        tree.add("bios.snp", .bios, parent: "bios.smee", gates: [.snp]) {
            guard case .success(let value) = syscfg else { return .skip("SYSCFG MSR unreadable") }
            return value & (1 << 24) != 0
                ? .pass("SYSCFG: SNP enabled (bit 24)")
                : .fail("SYSCFG: SNP (bit 24) is off", hint: Fix.snpBIOS)
        }
        tree.add("bios.rmp", .bios, parent: "bios.snp", gates: [.snp]) {
            guard let base = try? msr.read(0xC001_0132), let end = try? msr.read(0xC001_0133) else {
                return .skip("RMP_BASE/RMP_END MSRs unreadable")
            }
            guard base != 0, end > base else {
                return .fail(
                    "no RMP table reserved (RMP_BASE 0x\(String(base, radix: 16)), RMP_END 0x\(String(end, radix: 16)))", hint: Fix.snpBIOS)
            }
            return .pass("RMP table at 0x\(String(base, radix: 16))-0x\(String(end, radix: 16))")
        }
    }

    // MARK: Kernel and KVM

    /// Returns the kernel release.
    private func checkKernel(_ tree: inout CheckTree) -> String {
        let release = root.text("/proc/sys/kernel/osrelease") ?? ""
        let numbers = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        let version = numbers.count == 2 ? (numbers[0], numbers[1]) : nil
        // The version gates only the modes it is too old for.
        let short = version.map { version in [GuestMode.sev, .sevES, .snp].filter { version < MinimumVersions.hostKernel(for: $0) } } ?? []
        tree.add("kernel.version", .kernel, gates: short) {
            guard version != nil else { return .skip("kernel release unknown (/proc/sys/kernel/osrelease unreadable)") }
            guard short.isEmpty else {
                let needs = short.map { mode in
                    let minimum = MinimumVersions.hostKernel(for: mode)
                    return "\(mode.displayName) needs \(minimum.0).\(minimum.1)"
                }
                return .fail(
                    "Linux \(release) is too old (\(needs.joined(separator: ", ")))",
                    hint: "install a newer host kernel (`sevvm build kernel host` builds AMD's)")
            }
            return .pass("Linux \(release)")
        }

        let log = KernelLog.read(root: root).map(KernelLogFacts.init(lines:))
        let blocked = Set((log?.errors ?? []).flatMap(KernelLogFacts.modesBlocked(by:)))
        let logGates = [GuestMode.sev, .sevES, .snp].filter { log == nil || blocked.contains($0) }
        tree.add("kernel.log", .kernel, gates: logGates) {
            guard let log else { return .skip("kernel log unreadable (dmesg_restrict: run as root to read SEV messages)") }
            if let error = log.errors.first {
                let more = log.errors.count > 1 ? " (+\(log.errors.count - 1) more)" : ""
                return .fail(
                    "kernel reported: \(error)\(more)",
                    hint: KernelLogFacts.hint(for: error) ?? "read `dmesg | grep -i -e sev -e snp -e ccp` for the full story")
            }
            var parts: [String] = []
            if let api = log.snpAPI { parts.append("SEV-SNP API \(api)") } else if let api = log.sevAPI { parts.append("SEV API \(api)") }
            parts += log.asidLines.map { $0.replacing("kvm_amd: ", with: "") }
            if log.rmpTableFound { parts.append("RMP table reserved") }
            return .pass(parts.isEmpty ? "no SEV messages and no SEV errors" : parts.joined(separator: "; "))
        }
        return release
    }

    private func checkKVM(_ tree: inout CheckTree) {
        tree.add("kvm.device", .kvm, gates: [.sev, .sevES, .snp]) {
            do {
                let version = try kvm.apiVersion()
                return version == 12
                    ? .pass("\(kvm.path): KVM API version 12")
                    : .fail("\(kvm.path): unexpected KVM API version \(version)", hint: "this kernel's KVM is not the one QEMU expects")
            } catch {
                return .fail("\(error)", hint: "load kvm_amd (`modprobe kvm_amd`) and let this user open /dev/kvm (group kvm)")
            }
        }
        tree.add("kvm.amd", .kvm, parent: "kvm.device", gates: [.sev, .sevES, .snp]) {
            root.exists(KVMParameters.module)
                ? .pass("kvm_amd is loaded")
                : .fail("kvm_amd is not loaded (\(KVMParameters.module) is missing)", hint: "`modprobe kvm_amd` with `\(Fix.modprobeLine)`")
        }
        let configured = modprobeConfiguration()
        let parameters: [(String, String, String, [GuestMode], String)] = [
            ("kvm.sev", KVMParameters.sev, "sev", [.sev, .sevES, .snp], "kvm.amd"),
            ("kvm.sev-es", KVMParameters.sevES, "sev_es", [.sevES, .snp], "kvm.sev"),
            ("kvm.snp", KVMParameters.snp, "sev_snp", [.snp], "kvm.sev-es"),
        ]
        for (name, path, parameter, gates, parent) in parameters {
            tree.add(name, .kvm, parent: parent, gates: gates) {
                switch root.flag(path) {
                case true?: return .pass("kvm_amd \(parameter)=Y")
                case false?:
                    return .fail("kvm_amd \(parameter)=N", hint: Fix.kvmParameter(parameter, configured: configured[parameter]))
                case nil:
                    return .fail(
                        "kvm_amd has no \(parameter) parameter (\(path) is missing)",
                        hint: "this kernel's kvm_amd lacks \(parameter): boot an SEV-capable host kernel (SNP: Linux 6.11 or newer)")
                }
            }
        }
    }

    /// kvm_amd options set in /etc/modprobe.d, as parameter → the file that sets it to 1/Y.
    private func modprobeConfiguration() -> [String: String] {
        var found: [String: String] = [:]
        for file in root.list("/etc/modprobe.d") where file.hasSuffix(".conf") {
            for line in (root.text("/etc/modprobe.d/" + file) ?? "").split(separator: "\n") {
                let words = line.split(separator: " ")
                guard words.count >= 3, words[0] == "options", words[1] == "kvm_amd" || words[1] == "kvm-amd" else { continue }
                for word in words.dropFirst(2) {
                    let pair = word.split(separator: "=", maxSplits: 1)
                    guard pair.count == 2, ["1", "Y", "y"].contains(pair[1]) else { continue }
                    found[String(pair[0]).replacing("-", with: "_")] = "/etc/modprobe.d/" + file
                }
            }
        }
        return found
    }
}

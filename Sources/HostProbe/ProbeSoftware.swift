// HostProber's platform (/dev/sev), resource, QEMU, OVMF, QMP and libvirt checks.
import FoundationEssentials
import QMP
import Support

#if canImport(Glibc)
    import Glibc
#endif

/// Firmware versions and chip ID the platform checks learned, for the report's summary.
struct PlatformSummary {
    var sev: String?
    var snp: String?
    var chipID: String?
}

extension HostProber {
    // MARK: The AMD Secure Processor (/dev/sev)

    func checkPlatform(_ tree: inout CheckTree, cpu: CPUIdentity) -> PlatformSummary {
        var summary = PlatformSummary()
        let all: [GuestMode] = [.sev, .sevES, .snp]
        tree.add("platform.device", .platform, gates: all) {
            sevDevice.isPresent
                ? .pass("\(sevDevice.path) present")
                : .fail(
                    "\(sevDevice.path) is missing (the ccp driver did not find an SEV-capable PSP)",
                    hint: "`modprobe ccp`; if /dev/sev stays missing, \(Fix.smee) and check dmesg for ccp errors")
        }
        let status = Result { try sevDevice.platformStatus() }
        tree.add("platform.status", .platform, parent: "platform.device", gates: all) {
            switch status {
            case .failure(let error):
                return .fail("PLATFORM_STATUS failed: \(error)", hint: platformHint(error))
            case .success(let status):
                summary.sev = status.firmwareVersion
                return .pass("SEV firmware \(status.firmwareVersion), \(status.guestCount) guest(s)")
            }
        }
        tree.add("platform.init", .platform, parent: "platform.status", gates: all) {
            guard case .success(let status) = status else { return .skip("no platform status") }
            guard status.state != .uninitialized else {
                return .fail(
                    "the SEV platform is not initialized (state \(status.state.rawValue))",
                    hint: "kvm_amd initializes it when loaded with sev=1; look for `failed to INIT` in dmesg (kernel.log) for the reason")
            }
            return .pass("platform state \(status.state.rawValue)")
        }
        tree.add("platform.es-init", .platform, parent: "platform.init", gates: []) {
            guard case .success(let status) = status else { return .skip("no platform status") }
            return status.sevESInitialized
                ? .pass("SEV-ES initialized")
                : .warn("SEV-ES is not initialized yet", hint: "the kernel initializes SEV-ES with the first SEV-ES guest; \(Fix.esASIDs)")
        }
        let snp = Result { try sevDevice.snpPlatformStatus() }
        tree.add("platform.snp-status", .platform, parent: "platform.device", gates: [.snp]) {
            switch snp {
            case .failure(let error):
                return .fail("SNP_PLATFORM_STATUS failed: \(error)", hint: platformHint(error))
            case .success(let snp):
                summary.snp = snp.firmwareVersion
                return .pass("SNP firmware \(snp.firmwareVersion), \(snp.guestCount) guest(s)")
            }
        }
        tree.add("platform.snp-firmware", .platform, parent: "platform.snp-status", gates: [.snp]) {
            guard case .success(let snp) = snp else { return .skip("no SNP status") }
            guard snp.meetsMinimumFirmware else {
                let file = Fix.firmwareFile(family: cpu.family, model: cpu.model)
                let staged = root.exists("/lib/firmware/amd/" + file) ? " (/lib/firmware/amd/\(file) is staged: reload ccp to load it)" : ""
                return .fail(
                    "SNP firmware \(snp.apiMajor).\(snp.apiMinor) is older than 1.51\(staged)",
                    hint: "get \(file) from AMD's SEV developer page or the linux-firmware package, copy it to /lib/firmware/amd/, "
                        + "then `rmmod kvm_amd; rmmod ccp; modprobe ccp; modprobe kvm_amd` (EPYC 9004 and later: update the BIOS)")
            }
            return .pass("SNP firmware \(snp.apiMajor).\(snp.apiMinor) meets the 1.51 minimum")
        }
        tree.add("platform.snp-init", .platform, parent: "platform.snp-firmware", gates: [.snp]) {
            guard case .success(let snp) = snp else { return .skip("no SNP status") }
            guard snp.state != .uninitialized, snp.rmpInitialized else {
                return .fail(
                    "SNP is not initialized (state \(snp.state.rawValue), RMP initialized: \(snp.rmpInitialized))",
                    hint: "load kvm_amd with sev_snp=1 after \(Fix.snpBIOS); dmesg tells why SNP_INIT failed")
            }
            return .pass("SNP initialized, RMP initialized\(snp.aliasCheckComplete ? ", alias check complete" : "")")
        }
        tree.add("platform.tcb", .platform, parent: "platform.snp-init", gates: []) {
            guard case .success(let snp) = snp else { return .skip("no SNP status") }
            guard snp.currentTCB == snp.reportedTCB else {
                return .warn(
                    "reported TCB (\(TCBVersion(snp.reportedTCB))) differs from the current TCB (\(TCBVersion(snp.currentTCB)))",
                    hint: "attestation reports carry the reported TCB: fetch the VCEK for it, or commit the new firmware "
                        + "(`snphost commit`) so both match")
            }
            return .pass("TCB \(TCBVersion(snp.currentTCB))")
        }
        tree.add("platform.chip-id", .platform, parent: "platform.status", gates: []) {
            do {
                let id = try sevDevice.chipID()
                let hex = hexString(id)
                summary.chipID = hex
                return .pass("chip ID \(hex.prefix(16))…")
            } catch {
                return .warn("GET_ID2 failed: \(error)", hint: "the chip ID is needed to fetch the VCEK; run as root")
            }
        }
        return summary
    }

    private func platformHint(_ error: Error) -> String {
        if case HostProbeError.sevCommandFailed(_, _, _, let firmwareError) = error, firmwareError == 0x13 {
            return KernelLogFacts.hint(for: "error 0x13") ?? Fix.smee
        }
        if case HostProbeError.unreadable(_, _, let code) = error, code == EACCES || code == EPERM {
            return "run as root, or give this user access to /dev/sev (udev rule for group kvm)"
        }
        return "check `dmesg | grep -i -e ccp -e sev` for the PSP's complaint"
    }

    // MARK: Resources

    func checkResources(_ tree: inout CheckTree, options: ProbeOptions) {
        tree.add("resources.asids", .resources, gates: []) {
            guard let capacity = root.text("/sys/fs/cgroup/misc.capacity") else {
                return .skip("/sys/fs/cgroup/misc.capacity unavailable (no misc cgroup controller)")
            }
            let values = Dictionary(
                capacity.split(separator: "\n").compactMap { line -> (String, Int)? in
                    let words = line.split(separator: " ")
                    guard words.count == 2, let value = Int(words[1]) else { return nil }
                    return (String(words[0]), value)
                }, uniquingKeysWith: { first, _ in first })
            let sev = values["sev"] ?? 0
            let es = values["sev_es"] ?? 0
            guard sev > 0 || es > 0 else {
                return .warn("no SEV ASIDs in the misc cgroup (sev \(sev), sev_es \(es))", hint: Fix.esASIDs)
            }
            return .pass("ASIDs: sev \(sev), sev_es \(es)")
        }
        tree.add("resources.iommu", .resources, gates: [.snp]) {
            let units = root.list("/sys/class/iommu")
            return units.isEmpty
                ? .fail(
                    "no IOMMU is active (/sys/class/iommu is empty)",
                    hint: "SNP needs the IOMMU: enable Advanced → NBIO Common Options → IOMMU and drop amd_iommu=off / iommu=pt")
                : .pass("IOMMU active (\(units.joined(separator: ", ")))")
        }
        tree.add("resources.memlock", .resources, gates: []) {
            guard let limit = options.memlockLimit, !options.isRoot else {
                return .pass(options.isRoot ? "running as root: guest memory can be pinned" : "memlock limit unlimited")
            }
            // SEV pins guest memory; without CAP_IPC_LOCK the limit caps the guest size.
            return .warn(
                "memlock limit \(limit / 1024) KiB limits how much guest memory SEV can pin",
                hint: "raise it (`ulimit -l unlimited`, or memlock in /etc/security/limits.conf) or run as root")
        }
    }

    // MARK: QEMU, OVMF, QMP, libvirt

    /// Asks the QEMU binary itself: `--version` and its SEV objects' help, all three at once.
    static func askBinary(
        _ location: Result<(path: String, origin: String), Error>
    ) async -> (Result<QEMUInstallation, Error>, QEMUSEVSupport?) {
        do {
            let location = try location.get()
            let folder = try ChildProcess.privateFolder()
            defer { try? FileManager.default.removeItem(atPath: folder) }
            async let version = ChildProcess.run([location.path, "--version"], in: folder)
            async let support = try? QEMUDiscovery.sevSupport(path: location.path)
            let (status, output) = try await version
            guard status == 0, let parsed = QEMUVersion(parsing: output) else {
                throw HostProbeError.qemuVersionUnknown(path: location.path, output: output)
            }
            return (.success(QEMUInstallation(path: location.path, version: parsed, origin: location.origin)), await support)
        } catch {
            return (.failure(error), nil)
        }
    }

    func checkQEMU(_ tree: inout CheckTree, qemu: Result<QEMUInstallation, Error>, support: QEMUSEVSupport?) {
        tree.add("qemu.binary", .qemu, gates: [.sev, .sevES, .snp]) {
            switch qemu {
            case .failure(let error):
                return .fail("\(error)", hint: "`sevvm build qemu`, or install qemu-system-x86 (9.1 or newer for SNP)")
            case .success(let qemu): return .pass("QEMU \(qemu.version) at \(qemu.path) (\(qemu.origin))")
            }
        }
        let objects: [(String, GuestMode, String, KeyPath<QEMUSEVSupport, Bool>)] = [
            ("qemu.sev", .sev, "sev-guest", \.hasSEVGuest),
            ("qemu.sev-es", .sevES, "sev-guest", \.hasSEVGuest),
            ("qemu.snp", .snp, "sev-snp-guest", \.hasSNPGuest),
        ]
        for (name, mode, object, has) in objects {
            tree.add(name, .qemu, parent: "qemu.binary", gates: [mode]) {
                guard case .success(let qemu) = qemu else { return .skip("no QEMU") }
                let minimum = MinimumVersions.qemu(for: mode)
                guard qemu.version >= minimum else {
                    return .fail(
                        "QEMU \(qemu.version) is older than \(minimum), the first with \(mode.displayName)",
                        hint: "`sevvm build qemu` builds AMD's QEMU into the workspace, which sevvm then prefers")
                }
                guard let support, support[keyPath: has] else {
                    return .fail(
                        "this QEMU has no \(object) object", hint: "it was built without SEV: `sevvm build qemu` or a distribution QEMU")
                }
                return .pass("\(object) available (QEMU \(qemu.version) ≥ \(minimum))")
            }
        }
    }

    func checkFirmware(_ tree: inout CheckTree, firmware: [String: Result<FirmwareChoice, Error>]) {
        let rows: [(String, GuestMode, [GuestMode])] = [("firmware.sev", .sev, [.sev, .sevES]), ("firmware.snp", .snp, [.snp])]
        for (name, mode, gates) in rows {
            tree.add(name, .firmware, gates: gates) {
                switch firmware[mode.rawValue] {
                case .success(let choice)?:
                    let layout = choice.singleFile ? "single file" : "code + vars \(choice.vars ?? "")"
                    return .pass("\(choice.code) (\(layout), \(choice.origin)\(choice.hasSEVMetadata ? ", SEV metadata" : ""))")
                case .failure(let error)?:
                    return .fail("\(error)", hint: "`sevvm build ovmf`, or install the ovmf package (Debian's OVMF.fd has SEV metadata)")
                case nil:
                    return .skip("not looked for")
                }
            }
        }
        tree.add("firmware.hashes", .firmware, parent: "firmware.snp", gates: []) {
            guard case .success(let choice)? = firmware[GuestMode.snp.rawValue] else { return .skip("no SNP firmware") }
            return choice.hasHashesTable
                ? .pass("kernel hashes table present: measured direct boot (kernel-hashes=on) works")
                : .warn(
                    "no kernel hashes table: -kernel boots are not covered by the launch measurement",
                    hint: "build OvmfPkg/AmdSev/AmdSevX64.dsc (`sevvm build ovmf`) for measured direct boot")
        }
    }

    func checkCapabilities(_ tree: inout CheckTree, _ query: CapabilityQuery?) -> SEVCapabilities? {
        var capabilities: SEVCapabilities?
        tree.add("qmp.capabilities", .qmp, parent: "qemu.binary", gates: [.sev, .sevES, .snp]) {
            guard let query else { return .skip("query-sev-capabilities not asked") }
            let note = query.note.map { " (\($0))" } ?? ""
            switch query.answer {
            case .answered(let answer):
                capabilities = answer
                return .pass(
                    "query-sev-capabilities via \(query.origin): cbitpos \(answer.cbitpos), reduced-phys-bits \(answer.reducedPhysBits), "
                        + "PDH \(answer.pdhSize) bytes, cert chain \(answer.certChainSize) bytes")
            case .refused(let errorClass, let description):
                return .fail(
                    "query-sev-capabilities via \(query.origin)\(note): \(errorClass): \(description)",
                    hint: CapabilityAdvice.hint(for: description))
            case .unavailable(let reason):
                return .fail("query-sev-capabilities could not be asked\(note): \(reason)", hint: CapabilityAdvice.hint(for: reason))
            }
        }
        return capabilities
    }

    func checkLibvirt(_ tree: inout CheckTree, searchPath: String?) {
        tree.add("libvirt.version", .libvirt, gates: []) {
            guard let virsh = ProcessRunner.which("virsh", path: searchPath),
                let result = try? ProcessRunner.run([virsh, "--version"]), result.succeeded,
                let version = QEMUVersion(parsing: result.stdoutText)
            else {
                return .skip("libvirt not installed (optional: sevvm manages QEMU directly)")
            }
            let minimum = MinimumVersions.libvirt(for: .snp)
            return version >= minimum
                ? .pass("libvirt \(version)")
                : .warn("libvirt \(version) predates SNP support (\(minimum))", hint: "only matters for `sevvm export --libvirt`")
        }
    }

    /// Asks query-sev-capabilities along `route`.
    func queryCapabilities(_ route: CapabilityRoute, qemuPath: String?) async -> CapabilityQuery? {
        switch route {
        case .none:
            return nil
        case .source(let source):
            return await source.query()
        case .socket(let path):
            return await SocketCapabilities(socketPath: path).query()
        case .throwawayQEMU:
            guard let qemuPath else { return nil }
            return await ThrowawayQEMUCapabilities(qemuPath: qemuPath, kvmPath: kvm.path).query()
        }
    }
}

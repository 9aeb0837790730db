// LaunchDigest: the measurement the AMD secure processor computes while QEMU loads an SEV, SEV-ES or SNP guest.
import Crypto
import Dispatch
import Firmware
import Support

/// Everything the launch digest depends on, named as sev-snp-measure names its options.
public struct MeasurementInput: Sendable, Equatable {
    public var mode: GuestMode
    public var ovmfPath: String
    public var vcpus: Int
    /// CPUID family/model/stepping the VMM reports in RDX at reset; needed for SEV-ES/SNP under QEMU.
    public var vcpuSignature: UInt32?
    public var vmmType: VMMType
    /// SEV_FEATURES in every VMSA (SNP only; bit 0 is SNPActive). sev-snp-measure defaults to 0x1.
    public var guestFeatures: UInt64
    /// With a kernel, the hashes table (kernel, initrd, command line) is measured: QEMU's kernel-hashes=on.
    public var kernel: String?
    public var initrd: String?
    public var append: String?
    /// A precalculated SHA-384 of the OVMF pages (SNP), replacing the firmware's own pages.
    public var snpOVMFHash: [UInt8]?

    public static let defaultGuestFeatures: UInt64 = 0x1

    public init(
        mode: GuestMode, ovmfPath: String, vcpus: Int, vcpuSignature: UInt32? = nil, vmmType: VMMType = .qemu,
        guestFeatures: UInt64 = MeasurementInput.defaultGuestFeatures, kernel: String? = nil, initrd: String? = nil,
        append: String? = nil, snpOVMFHash: [UInt8]? = nil
    ) {
        self.mode = mode
        self.ovmfPath = ovmfPath
        self.vcpus = vcpus
        self.vcpuSignature = vcpuSignature
        self.vmmType = vmmType
        self.guestFeatures = guestFeatures
        self.kernel = kernel
        self.initrd = initrd
        self.append = append
        self.snpOVMFHash = snpOVMFHash
    }

    /// The input for a guest as sevvm launches it under QEMU: `cpuModel` is the `-cpu` value
    /// ("EPYC-v4", "EPYC-Milan,+x2apic"); pass `kernel` only when kernel-hashes=on.
    public init(
        launching mode: GuestMode, firmware: String, vcpus: Int, cpuModel: String, kernel: String?, initrd: String?,
        append: String?, guestFeatures: UInt64 = MeasurementInput.defaultGuestFeatures
    ) throws {
        let signature: UInt32? = mode == .sev ? nil : try VCPUType.signature(named: cpuModel)
        self.init(
            mode: mode, ovmfPath: firmware, vcpus: vcpus, vcpuSignature: signature, guestFeatures: guestFeatures,
            kernel: kernel, initrd: kernel == nil ? nil : initrd, append: kernel == nil ? nil : append)
    }
}

public enum LaunchDigest {
    /// Reads the firmware and computes the digest (48 bytes for SNP, 32 for SEV and SEV-ES).
    public static func compute(_ input: MeasurementInput) throws -> [UInt8] {
        try validate(input)
        // Load libcrypto while the firmware is read. Not with a kernel: the kernel's hashing must
        // start at once on the other core, not queue behind the loading.
        if input.mode == .snp && input.snpOVMFHash == nil && input.kernel == nil { PageHasher.warmUp() }
        return try digest(input) { try OVMFImage(path: input.ovmfPath) }
    }

    /// Computes the digest for an already parsed firmware image.
    public static func compute(_ input: MeasurementInput, firmware: OVMFImage) throws -> [UInt8] {
        try validate(input)
        return try digest(input) { firmware }
    }

    /// The kernel's SHA-256 is the longest single job: with a kernel, it runs on a thread of its
    /// own from the start, beside getting the firmware and (SNP) hashing its pages.
    private static func digest(_ input: MeasurementInput, firmware load: () throws -> OVMFImage) throws -> [UInt8] {
        func firmwareJob() -> Result<(OVMFImage, [UInt8]?), any Error> {
            Result {
                let image = try load()
                let hashPages = input.mode == .snp && input.snpOVMFHash == nil && image.hasSEVMetadata
                return (image, hashPages ? SNPLaunchContext.pageDigests(image.bytes) : nil)
            }
        }
        let hashes: Result<KernelHashes?, any Error>
        let loaded: Result<(OVMFImage, [UInt8]?), any Error>
        if let kernel = input.kernel {
            (hashes, loaded) = inParallel(
                { Result { try KernelHashes(kernel: kernel, initrd: input.initrd, append: input.append) } }, firmwareJob)
        } else {
            (hashes, loaded) = (.success(nil), firmwareJob())
        }
        let (firmware, pages) = try loaded.get()
        switch input.mode {
        case .snp:
            return try snpDigest(input, firmware: firmware, hashes: try hashes.get(), firmwarePageDigests: pages)
        case .sevES:
            return try sevDigest(input, firmware: firmware, hashes: try hashes.get(), withVMSAs: true)
        case .sev:
            return try sevDigest(input, firmware: firmware, hashes: try hashes.get(), withVMSAs: false)
        case .none:
            throw MeasureError.unsupportedMode(input.mode)
        }
    }

    /// The SNP digest after only the firmware pages: what `--snp-ovmf-hash` takes.
    public static func snpOVMFHash(_ firmware: OVMFImage) throws -> [UInt8] {
        var context = SNPLaunchContext()
        try context.addFirmware(firmware)
        return context.digest
    }

    static func validate(_ input: MeasurementInput) throws {
        if input.mode == .none { throw MeasureError.unsupportedMode(input.mode) }
        if input.vcpus < 1 { throw MeasureError.noVCPUs }
        if input.kernel == nil && (input.initrd != nil || input.append != nil) {
            throw MeasureError.initrdOrAppendWithoutKernel
        }
        if let hash = input.snpOVMFHash {
            if input.mode != .snp { throw MeasureError.ovmfHashNeedsSNP(input.mode) }
            if hash.count != SNPLaunchContext.digestSize { throw MeasureError.invalidOVMFHash(hexString(hash)) }
        }
    }

    static func snpDigest(
        _ input: MeasurementInput, firmware: OVMFImage, hashes: KernelHashes?, firmwarePageDigests: [UInt8]? = nil
    ) throws -> [UInt8] {
        // QEMU refuses to launch SNP from such firmware (sev-snp-measure would still print a digest).
        guard firmware.hasSEVMetadata else { throw MeasureError.noSEVMetadata(path: firmware.path) }
        var context = SNPLaunchContext()
        if let seed = input.snpOVMFHash {
            context.digest = seed
        } else {
            try context.addFirmware(firmware, pageDigests: firmwarePageDigests)
        }
        if hashes != nil && !firmware.hasSection(.snpKernelHashes) {
            throw MeasureError.noHashesTable(path: firmware.path, mode: .snp)
        }
        for section in firmware.sevMetadata {
            guard let kind = section.kind else {
                throw MeasureError.unknownSectionKind(path: firmware.path, value: section.kindValue)
            }
            let base = UInt64(section.base)
            switch kind {
            case .snpSecureMemory:
                context.addEmptyPages(base: base, size: Int(section.size), type: input.vmmType == .gce ? .unmeasured : .zero)
            case .svsmCallingArea:
                context.addEmptyPages(base: base, size: Int(section.size), type: .zero)
            case .snpSecrets:
                context.add(type: .secrets, address: base, contents: SNPLaunchContext.zeroDigest)
            case .cpuid:
                // EC2 measures the CPUID page after all other sections.
                if input.vmmType != .ec2 { context.add(type: .cpuid, address: base, contents: SNPLaunchContext.zeroDigest) }
            case .snpKernelHashes:
                if let hashes {
                    let page = try hashesPage(hashes, firmware: firmware, sectionSize: section.size)
                    context.add(type: .normal, address: base, contents: page.withUnsafeBytes { SNPLaunchContext.pageDigest($0) })
                } else {
                    context.addEmptyPages(base: base, size: Int(section.size), type: .zero)
                }
            }
        }
        if input.vmmType == .ec2 {
            for section in firmware.sevMetadata where section.kind == .cpuid {
                context.add(type: .cpuid, address: UInt64(section.base), contents: SNPLaunchContext.zeroDigest)
            }
        }
        let pages = try vmsaPageDigests(input, firmware: firmware, sevFeatures: input.guestFeatures) {
            $0.withUnsafeBytes { SNPLaunchContext.pageDigest($0) }
        }
        for index in 0..<input.vcpus {
            context.add(type: .vmsa, address: SNPLaunchContext.vmsaAddress, contents: index == 0 ? pages.bootstrap : pages.application)
        }
        return context.digest
    }

    /// SEV: SHA-256 over the firmware (and hashes table). SEV-ES adds every vCPU's VMSA page.
    static func sevDigest(_ input: MeasurementInput, firmware: OVMFImage, hashes: KernelHashes?, withVMSAs: Bool) throws -> [UInt8] {
        var hasher = SHA256()
        firmware.bytes.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        if let hashes {
            guard firmware.hasHashesTable else { throw MeasureError.noHashesTable(path: firmware.path, mode: input.mode) }
            hasher.update(data: hashes.table)
        }
        if withVMSAs {
            let pages = try vmsaPageDigests(input, firmware: firmware, sevFeatures: 0) { $0 }
            for index in 0..<input.vcpus {
                hasher.update(data: index == 0 ? pages.bootstrap : pages.application)
            }
        }
        return Array(hasher.finalize())
    }

    /// The BSP's and the APs' VMSA pages, each passed through `transform` once (not once per vCPU).
    static func vmsaPageDigests(
        _ input: MeasurementInput, firmware: OVMFImage, sevFeatures: UInt64, transform: ([UInt8]) -> [UInt8]
    ) throws -> (bootstrap: [UInt8], application: [UInt8]) {
        // Checked here, after the firmware checks, so errors come in sev-snp-measure's order.
        if input.vmmType == .qemu && input.vcpuSignature == nil { throw MeasureError.missingVCPUSignature(mode: input.mode) }
        guard let resetEIP = firmware.sevESResetEIP, resetEIP != 0 || input.vcpus == 1 else {
            throw MeasureError.missingResetBlock(path: firmware.path)
        }
        let builder = VMSABuilder(vmm: input.vmmType, vcpuSignature: input.vcpuSignature ?? 0, sevFeatures: sevFeatures)
        let bootstrap = transform(builder.page(eip: VMSABuilder.bootstrapEIP))
        let application = input.vcpus > 1 ? transform(builder.page(eip: resetEIP)) : bootstrap
        return (bootstrap, application)
    }

    static func hashesPage(_ hashes: KernelHashes, firmware: OVMFImage, sectionSize: UInt32) throws -> [UInt8] {
        guard let entry = firmware.footerEntry(OVMFGUID.sevHashTable), entry.count >= 4 else {
            throw MeasureError.badHashesSection(path: firmware.path, reason: "no SEV hash table entry in the footer table")
        }
        guard sectionSize == 4096 else {
            throw MeasureError.badHashesSection(path: firmware.path, reason: "the section is \(sectionSize) bytes, not one page")
        }
        let address = Int(entry[0]) | Int(entry[1]) << 8 | Int(entry[2]) << 16 | Int(entry[3]) << 24
        guard let page = hashes.page(tableOffset: address & 0xFFF) else {
            throw MeasureError.badHashesSection(
                path: firmware.path, reason: "the table at 0x\(String(address, radix: 16)) crosses its page")
        }
        return page
    }
}

/// Runs `other` on a thread of its own while `here` runs on the calling thread; returns both results.
/// A plain thread, not Dispatch's pool: the pool starts its workers lazily, and the kernel's hashing
/// sometimes began milliseconds late.
func inParallel<A: Sendable, B>(_ other: @escaping @Sendable () -> A, _ here: () -> B) -> (A, B) {
    let slot = ResultSlot<A>()
    let done = DispatchSemaphore(value: 0)
    let job: @Sendable () -> Void = {
        slot.value = other()
        done.signal()
    }
    if !startDetachedThread(name: "sevvm-measure", job) { DispatchQueue.global().async(execute: job) }
    let mine = here()
    done.wait()
    // The semaphore orders the write before this read; `other` always stores a value.
    guard let theirs = slot.value else { preconditionFailure("inParallel: the other job stored no result") }
    return (theirs, mine)
}

/// Where `inParallel`'s other job leaves its result (written once, read after a semaphore wait).
private final class ResultSlot<Value>: @unchecked Sendable {
    var value: Value?
}

/// Bytes from hex text (whitespace ignored, optional 0x prefix); nil when not hex or odd.
public func bytes(fromHex text: some StringProtocol) -> [UInt8]? {
    var digits = text.unicodeScalars.filter { !$0.properties.isWhitespace }.map { Character($0) }
    if digits.count >= 2, digits[0] == "0", digits[1] == "x" || digits[1] == "X" { digits.removeFirst(2) }
    guard digits.count % 2 == 0 else { return nil }
    var result: [UInt8] = []
    result.reserveCapacity(digits.count / 2)
    var index = 0
    while index < digits.count {
        guard let high = digits[index].hexDigitValue, let low = digits[index + 1].hexDigitValue else { return nil }
        result.append(UInt8(high << 4 | low))
        index += 2
    }
    return result
}

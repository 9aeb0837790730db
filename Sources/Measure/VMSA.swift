// VMSA: the 4096-byte initial register state (VMCB save area) of one SEV-ES/SNP vCPU, as the VMM encrypts it.

/// Builds VMSA pages. Offsets follow the VMCB save area (AMD APM vol. 2, table B-4; Linux
/// `struct sev_es_save_area`); values are what KVM/QEMU, EC2 and GCE put there at reset.
struct VMSABuilder {
    static let pageSize = 4096
    /// The bootstrap processor starts at the architectural reset vector.
    static let bootstrapEIP: UInt32 = 0xFFFF_FFF0

    let vmm: VMMType
    let vcpuSignature: UInt32
    let sevFeatures: UInt64

    /// The page for a vCPU starting at `eip` (the BSP's reset vector, or OVMF's AP reset EIP).
    func page(eip: UInt32) -> [UInt8] {
        var page = [UInt8](repeating: 0, count: Self.pageSize)
        var codeAttributes: UInt16 = 0x9B
        var stackAttributes: UInt16 = 0x93
        var taskAttributes: UInt16 = 0x8B
        var pat: UInt64 = 0x0007_0406_0007_0406  // the PAT MSR's reset value (APM vol. 2, A.3)
        var rdx = UInt64(vcpuSignature)
        var mxcsr: UInt32 = 0x1F80
        var fpuControl: UInt16 = 0x37F
        switch vmm {
        case .qemu:
            break
        case .ec2:
            if eip == Self.bootstrapEIP { codeAttributes = 0x9A }
            stackAttributes = 0x92
            taskAttributes = 0x83
            rdx = 0x600
            mxcsr = 0
            fpuControl = 0
        case .gce:
            pat = 0x0007_0106  // GCE's hypervisor sets its own PAT
            rdx = 0x600
            mxcsr = 0
            fpuControl = 0
        }
        // Segment registers: selector u16, attributes u16, limit u32, base u64 (16 bytes each).
        func segment(_ offset: Int, selector: UInt16, attributes: UInt16, base: UInt64 = 0) {
            page.store(selector, at: offset)
            page.store(attributes, at: offset + 2)
            page.store(UInt32(0xFFFF), at: offset + 4)
            page.store(base, at: offset + 8)
        }
        segment(0x000, selector: 0, attributes: 0x93)  // es
        segment(0x010, selector: 0xF000, attributes: codeAttributes, base: UInt64(eip & 0xFFFF_0000))  // cs
        segment(0x020, selector: 0, attributes: stackAttributes)  // ss
        segment(0x030, selector: 0, attributes: 0x93)  // ds
        segment(0x040, selector: 0, attributes: 0x93)  // fs
        segment(0x050, selector: 0, attributes: 0x93)  // gs
        segment(0x060, selector: 0, attributes: 0)  // gdtr
        segment(0x070, selector: 0, attributes: 0x82)  // ldtr
        segment(0x080, selector: 0, attributes: 0)  // idtr
        segment(0x090, selector: 0, attributes: taskAttributes)  // tr
        page.store(UInt64(0x1000), at: 0x0D0)  // EFER: KVM sets SVME
        page.store(UInt64(0x40), at: 0x148)  // CR4: KVM sets MCE
        page.store(UInt64(0x10), at: 0x158)  // CR0: ET
        page.store(UInt64(0x400), at: 0x160)  // DR7
        page.store(UInt64(0xFFFF_0FF0), at: 0x168)  // DR6
        page.store(UInt64(0x2), at: 0x170)  // RFLAGS
        page.store(UInt64(eip & 0xFFFF), at: 0x178)  // RIP
        page.store(pat, at: 0x268)  // G_PAT
        page.store(rdx, at: 0x310)  // RDX carries the CPUID signature at reset
        page.store(sevFeatures, at: 0x3B0)  // SEV_FEATURES
        page.store(UInt64(0x1), at: 0x3E8)  // XCR0
        page.store(mxcsr, at: 0x408)  // MXCSR
        page.store(fpuControl, at: 0x410)  // x87 FCW
        return page
    }
}

extension Array where Element == UInt8 {
    /// Writes `value` little-endian at `offset` (offsets are fixed layout constants within bounds).
    mutating func store<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        for index in 0..<(T.bitWidth / 8) {
            self[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * index))
        }
    }
}

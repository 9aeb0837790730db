// Every digest virtee/sev-snp-measure's own test-suite asserts, reproduced (see Fixtures/PROVENANCE.md).
import Firmware
import Foundation
import Support
import Testing

@testable import Measure

struct Vector: CustomStringConvertible, Sendable {
    var name: String
    var mode: GuestMode
    var vcpus: Int
    var signature: UInt32?
    var firmware = "ovmf_AmdSev_suffix.bin"
    var kernel: String?
    var initrd: String?
    var append: String?
    var features: UInt64
    var vmm = VMMType.qemu
    var ovmfHash: String?
    var expected: String

    var description: String { name }
}

let epycV4: UInt32 = 0x800F12

let upstreamVectors: [Vector] = [
    Vector(
        name: "snp_ovmf_hash_gen_default", mode: .snp, vcpus: 1, signature: epycV4, kernel: "/dev/null", initrd: "/dev/null",
        append: "", features: 0x21, ovmfHash: amdSevOVMFHash,
        expected: "329c8ce0972ae52343b64d34a434a86f245dfd74f5ed7aae15d22efc78fb9683632b9b50e4e1d7fa41179ef98a7ef198"),
    Vector(
        name: "snp_ovmf_hash_gen_feature_snp_only", mode: .snp, vcpus: 1, signature: epycV4, kernel: "/dev/null",
        initrd: "/dev/null", append: "", features: 0x1, ovmfHash: amdSevOVMFHash,
        expected: "ddc5224521617a536ee7ce9dd6224d1b58a8d4fda1c741f3ac99fc4bfa04ba6e9fc98646d4a07a9079397fa3852819b5"),
    Vector(
        name: "snp_ovmf_hash_full_default", mode: .snp, vcpus: 1, signature: epycV4, kernel: "/dev/null", initrd: "/dev/null",
        append: "console=ttyS0 loglevel=7", features: 0x21, ovmfHash: amdSevOVMFHash,
        expected: "803f691094946e42068aaa3a8f9e26a5c89f36f7b73ecfb28c653360fe4b3aba7e534442e7e1e17895dfe778d0228977"),
    Vector(
        name: "snp_ovmf_hash_full_feature_snp_only", mode: .snp, vcpus: 1, signature: epycV4, kernel: "/dev/null",
        initrd: "/dev/null", append: "console=ttyS0 loglevel=7", features: 0x1, ovmfHash: amdSevOVMFHash,
        expected: "6d287813eb5222d770f75005c664e34c204f385ce832cc2ce7d0d6f354454362f390ef83a92046c042e706363b4b08fa"),
    Vector(
        name: "snp_ec2_default", mode: .snp, vcpus: 1, signature: epycV4, kernel: "/dev/null", initrd: "/dev/null", append: "",
        features: 0x21, vmm: .ec2,
        expected: "0ce9ccc06bab55eebe8abc234f3df6514883977a68a591b71052498ab52b2f1aa415db338033946ef93aa8278c0d67fb"),
    Vector(
        name: "snp_ec2_feature_snp_only", mode: .snp, vcpus: 1, signature: epycV4, kernel: "/dev/null", initrd: "/dev/null",
        append: "", features: 0x1, vmm: .ec2,
        expected: "0883bd0eeb716e65b7b977a321c278d1e51b33b5c655fab985443bbcc65c086b9c15e8a0bd8811050dec7e24964e5056"),
    Vector(
        name: "snp_gce_default", mode: .snp, vcpus: 1, signature: nil, kernel: "/dev/null", initrd: "/dev/null", append: "",
        features: 0x1, vmm: .gce,
        expected: "5da7106cf14cf46b1725ebab123eb9e53bd46a1e9f400cd0c08e7827b04b688ea8b4e403c8404efed4397ea5d5d0722e"),
    Vector(
        name: "snp_gce_with_multiple_vcpus_default", mode: .snp, vcpus: 4, signature: nil, kernel: "/dev/null",
        initrd: "/dev/null", append: "", features: 0x1, vmm: .gce,
        expected: "5c5debf100fc339f90276e761ee1f1658d08922c3b20e2a2e6c7a6c3370b2452a15a00eae11886a93d6fd1e7ab81e29d"),
    Vector(
        name: "snp_default", mode: .snp, vcpus: 1, signature: epycV4, kernel: "/dev/null", initrd: "/dev/null",
        append: "console=ttyS0 loglevel=7", features: 0x21,
        expected: "803f691094946e42068aaa3a8f9e26a5c89f36f7b73ecfb28c653360fe4b3aba7e534442e7e1e17895dfe778d0228977"),
    Vector(
        name: "snp_guest_feature_snp_only", mode: .snp, vcpus: 1, signature: epycV4, kernel: "/dev/null", initrd: "/dev/null",
        append: "console=ttyS0 loglevel=7", features: 0x1,
        expected: "6d287813eb5222d770f75005c664e34c204f385ce832cc2ce7d0d6f354454362f390ef83a92046c042e706363b4b08fa"),
    Vector(
        name: "snp_without_kernel_default", mode: .snp, vcpus: 1, signature: epycV4, features: 0x21,
        expected: "e1e1ca029dd7973ab9513295be68198472dcd4fc834bd9af9b63f6e8a1674dbf281a9278a4a2ebe0eed9f22adbcd0e2b"),
    Vector(
        name: "snp_without_kernel_feature_snp_only", mode: .snp, vcpus: 1, signature: epycV4, features: 0x1,
        expected: "19358ba9a7615534a9a1e2f0dfc29384dcd4dcb7062ff9c6013b26869a5fc6ecabe033c48dd6f6db5d6d76e7c5df632d"),
    Vector(
        name: "snp_with_multiple_vcpus_default", mode: .snp, vcpus: 4, signature: epycV4, kernel: "/dev/null",
        initrd: "/dev/null", append: "", features: 0x21,
        expected: "4953b1fb416fa874980e8442b3706d345926d5f38879134e00813c5d7abcbe78eafe7b422907be0b4698e2414a631942"),
    Vector(
        name: "snp_with_multiple_vcpus_feature_snp_only", mode: .snp, vcpus: 4, signature: epycV4, kernel: "/dev/null",
        initrd: "/dev/null", append: "", features: 0x1,
        expected: "5061fffb019493a903613d56d54b94912a1a2f9e4502385f5c194616753720a92441310ba6c4933de877c36e23046ad5"),
    Vector(
        name: "snp_with_ovmfx64_without_default", mode: .snp, vcpus: 1, signature: epycV4, firmware: "ovmf_OvmfX64_suffix.bin",
        features: 0x21,
        expected: "28797ae0afaba4005a81e629acebfb59e6687949d6be44007cd5506823b0dd66f146aaae26ff291eed7b493d8a64c385"),
    Vector(
        name: "snp_with_ovmfx64_without_kernel_feature_snp_only", mode: .snp, vcpus: 1, signature: epycV4,
        firmware: "ovmf_OvmfX64_suffix.bin", features: 0x1,
        expected: "da0296de8193586a5512078dcd719eccecbd87e2b825ad4148c44f665dc87df21e5b49e21523a9ad993afdb6a30b4005"),
    Vector(
        name: "seves", mode: .sevES, vcpus: 1, signature: epycV4, kernel: "/dev/null", initrd: "/dev/null", append: "",
        features: 0x1, expected: "13810ae661ea11e2bb205621f582fee268f0367c8f97bc297b7fadef3e12002c"),
    Vector(
        name: "seves_with_multiple_vcpus", mode: .sevES, vcpus: 4, signature: epycV4, kernel: "/dev/null", initrd: "/dev/null",
        append: "", features: 0x21, expected: "0dccbcaba8e90b261bd0d2e1863a2f9da714768b7b2a19363cd6ae35aa90de91"),
    Vector(
        name: "sev", mode: .sev, vcpus: 1, kernel: "/dev/null", initrd: "/dev/null", append: "console=ttyS0 loglevel=7",
        features: 0x21, expected: "82a3ee5d537c3620628270c292ae30cb40c3c878666a7890ee7ef2a08fb535ff"),
    Vector(
        name: "sev_with_kernel_without_initrd_and_append", mode: .sev, vcpus: 1, kernel: "/dev/null", features: 0x21,
        expected: "77f613d7bbcdf12a73782ea9e88b0172aeda50d1a54201cb903594ff52846898"),
    Vector(
        name: "sev_with_ovmfx64_without_kernel", mode: .sev, vcpus: 1, firmware: "ovmf_OvmfX64_suffix.bin", features: 0x21,
        expected: "b4c021e085fb83ceffe6571a3d357b4a98773c83c474e47f76c876708fe316da"),
]

/// test_snp_ovmf_hash_full_*: the SNP digest of the AmdSev suffix's pages alone.
let amdSevOVMFHash = "086e2e9149ebf45abdc3445fba5b2da8270bdbb04094d7a2c37faaa4b24af3aa16aff8c374c2a55c467a50da6d466b74"

@Suite struct SevSnpMeasureVectorTests {
    @Test(arguments: upstreamVectors)
    func digestMatches(vector: Vector) throws {
        let input = MeasurementInput(
            mode: vector.mode, ovmfPath: try Fixtures.path(vector.firmware), vcpus: vector.vcpus, vcpuSignature: vector.signature,
            vmmType: vector.vmm, guestFeatures: vector.features, kernel: vector.kernel, initrd: vector.initrd,
            append: vector.append, snpOVMFHash: try vector.ovmfHash.map { try #require(bytes(fromHex: $0)) })
        #expect(hexString(try LaunchDigest.compute(input)) == vector.expected)
    }

    @Test func ovmfHashOfTheAmdSevSuffix() throws {
        let image = try OVMFImage(path: try Fixtures.path("ovmf_AmdSev_suffix.bin"))
        #expect(hexString(try LaunchDigest.snpOVMFHash(image)) == amdSevOVMFHash)
    }

    /// test_{snp,seves,sev}_with_ovmfx64_and_kernel_should_fail: OvmfPkgX64 cannot measure a kernel.
    @Test(arguments: [(GuestMode.snp, UInt32?.some(epycV4)), (.sevES, nil), (.sev, nil)])
    func kernelOnFirmwareWithoutHashesTableFails(mode: GuestMode, signature: UInt32?) throws {
        let path = try Fixtures.path("ovmf_OvmfX64_suffix.bin")
        let input = MeasurementInput(
            mode: mode, ovmfPath: path, vcpus: 1, vcpuSignature: signature, guestFeatures: 0x21, kernel: "/dev/null",
            initrd: "/dev/null", append: "")
        #expect(throws: MeasureError.noHashesTable(path: path, mode: mode)) { try LaunchDigest.compute(input) }
    }

    /// test_vcpu_types.py.
    @Test func cpuSignatureFromFamilyModelStepping() {
        #expect(VCPUType.signature(family: 14, model: 1, stepping: 2) == 0x0E12)
        #expect(VCPUType.signature(family: 23, model: 1, stepping: 2) == 0x800F12)
    }

    /// test_cli.py: get_vcpu_sig's precedence and its zero case.
    @Test func vcpuSignatureOptions() throws {
        #expect(try VCPUType.signature(type: nil, signature: "0", family: nil, model: nil, stepping: nil) == 0)
        #expect(try VCPUType.signature(type: nil, signature: nil, family: nil, model: nil, stepping: nil) == nil)
        #expect(
            try VCPUType.signature(type: "EPYC-Milan", signature: nil, family: nil, model: nil, stepping: nil)
                == VCPUType.signature(family: 25, model: 1, stepping: 1))
        #expect(
            try VCPUType.signature(type: nil, signature: nil, family: 25, model: 1, stepping: 1)
                == VCPUType.signature(family: 25, model: 1, stepping: 1))
    }

    /// With QEMU as the VMM and no signature at all, SEV-ES/SNP cannot be measured (get_vcpu_sig errors).
    @Test func missingSignatureUnderQEMUFails() throws {
        let input = MeasurementInput(mode: .snp, ovmfPath: try Fixtures.path("ovmf_AmdSev_suffix.bin"), vcpus: 1)
        #expect(throws: MeasureError.missingVCPUSignature(mode: .snp)) { try LaunchDigest.compute(input) }
    }

    /// sev-snp-measure's CPU_SIGS table, every name with its signature.
    @Test func cpuTypeTableMatchesUpstream() throws {
        let upstream: [(String, UInt32)] = [
            ("EPYC", 0x800F12), ("EPYC-v1", 0x800F12), ("EPYC-v2", 0x800F12), ("EPYC-IBPB", 0x800F12), ("EPYC-v3", 0x800F12),
            ("EPYC-v4", 0x800F12), ("EPYC-Rome", 0x830F10), ("EPYC-Rome-v1", 0x830F10), ("EPYC-Rome-v2", 0x830F10),
            ("EPYC-Rome-v3", 0x830F10), ("EPYC-Milan", 0xA00F11), ("EPYC-Milan-v1", 0xA00F11), ("EPYC-Milan-v2", 0xA00F11),
            ("EPYC-Genoa", 0xA10F10), ("EPYC-Genoa-v1", 0xA10F10), ("EPYC-Turin", 0xB00F00),
        ]
        for (name, signature) in upstream {
            #expect(try VCPUType.signature(named: name) == signature, "\(name)")
        }
        #expect(Array(VCPUType.names.prefix(upstream.count)) == upstream.map(\.0))
        #expect(try VCPUType.signature(named: "EPYC-Milan,+x2apic") == 0xA00F11)
    }
}

// Strict decoding and validation of vms/NAME.json: every refusal names the file, field, value and what is allowed.
import Definitions
import Foundation
import Support
import Testing

private let file = "/ws/vms/web.json"

private func decode(_ json: String) throws -> VMDefinition {
    try DefinitionStore.decode(Data(json.utf8), file: file)
}

@Suite struct DefinitionDecodingTests {
    @Test func minimalFileGetsDefaults() throws {
        let definition = try decode(#"{"schemaVersion": 1, "name": "web"}"#)
        #expect(definition.mode == .none)
        #expect(definition.memoryMiB == 2048)
        #expect(definition.vcpus == 4)
        #expect(definition.cpu == "EPYC-v4")
        #expect(definition.machine == "q35")
        #expect(definition.firmware == .auto)
        #expect(definition.snp.policy == SNPPolicy(rawValue: 0x30000))
        #expect(definition.accel == .kvm)
        #expect(definition.console == .serial)
    }

    @Test func fullFileRoundTrips() throws {
        let json = #"""
            {"schemaVersion": 1, "name": "web", "mode": "snp", "memory": "4G", "vcpus": 8, "cpu": "EPYC-Genoa",
             "machine": "q35", "firmware": "/opt/OVMF.fd",
             "disks": [{"path": "images/web.qcow2", "format": "qcow2"}, {"path": "/data/raw.img", "bus": "virtio-blk", "readOnly": true}],
             "cdrom": "debian.iso", "directBoot": {"kernel": "vmlinuz", "initrd": "initrd.img", "append": "console=ttyS0"},
             "network": {"mode": "user", "forwards": ["2222:22", "udp:5353:53"]}, "console": "none",
             "sev": {"policy": "0x5", "kernelHashes": true},
             "snp": {"policy": ["smt", "debug"], "hostData": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
                     "idBlock": "id-block.bin", "idAuth": "id-auth.bin", "authorKeyEnabled": true, "vcekDisabled": true,
                     "guestVisibleWorkarounds": "AAAAAAAAAAAAAAAAAAAAAA==", "kernelHashes": true},
             "cbitpos": 51, "reducedPhysBits": 1, "accel": "tcg", "pciPassthrough": ["0000:01:00.0"], "hugepages": true,
             "extraArgs": ["-d", "guest_errors"], "created": {"disks": ["images/web.qcow2"], "varsCopy": null}}
            """#
        let definition = try decode(json)
        #expect(definition.memoryMiB == 4096)
        #expect(definition.snp.policy.rawValue == 0xB0000)
        #expect(definition.snp.policy.flags == [.smt, .debug])
        #expect(
            definition.network.forwards == [
                PortForward(hostPort: 2222, guestPort: 22), PortForward(transport: .udp, hostPort: 5353, guestPort: 53),
            ])
        #expect(definition.disks[1].bus == .virtioBlk)
        #expect(definition.sev.policy == SEVPolicy(rawValue: 5))
        let again = try DefinitionStore.decode(try DefinitionStore.encode(definition), file: file)
        #expect(again == definition)
        let text = String(decoding: try DefinitionStore.encode(definition), as: UTF8.self)
        #expect(text.contains(#""policy" : "0xb0000""#))
        #expect(text.contains(#""memory" : 4096"#))
    }

    struct Refusal: Sendable, CustomTestStringConvertible {
        var json: String
        var expected: DefinitionError
        var testDescription: String { expected.description }
    }

    private static let base = #""schemaVersion": 1, "name": "web""#

    static let refusals: [Refusal] = [
        Refusal(
            json: "{\(base), \"memmory\": 2048}",
            expected: .unknownField(
                file: file, field: "memmory",
                allowed: [
                    "schemaVersion", "name", "mode", "memory", "vcpus", "cpu", "machine", "firmware", "disks", "cdrom", "directBoot",
                    "network", "console", "sev", "snp", "cbitpos", "reducedPhysBits", "accel", "pciPassthrough", "hugepages",
                    "extraArgs", "created",
                ])),
        Refusal(
            json: "{\(base), \"snp\": {\"hostdata\": \"x\"}}",
            expected: .unknownField(
                file: file, field: "snp.hostdata",
                allowed: [
                    "policy", "hostData", "idBlock", "idAuth", "authorKeyEnabled", "vcekDisabled", "guestVisibleWorkarounds",
                    "kernelHashes",
                ]
            )),
        Refusal(json: "{\(base), \"vcpus\": \"four\"}", expected: .wrongType(file: file, field: "vcpus", expected: "a whole number")),
        Refusal(json: "{\(base), \"hugepages\": 1}", expected: .wrongType(file: file, field: "hugepages", expected: "true or false")),
        Refusal(json: "{\"name\": \"web\"}", expected: .missingField(file: file, field: "schemaVersion")),
        Refusal(
            json: "{\(base), \"memory\": 8}",
            expected: .invalidValue(file: file, field: "memory", value: "8", allowed: "16 MiB to 4 TiB")),
        Refusal(
            json: "{\(base), \"memory\": \"2X\"}",
            expected: .invalidValue(file: file, field: "memory", value: "2X", allowed: "MiB as a number, or a size such as 512M or 2G")),
        Refusal(
            json: "{\(base), \"vcpus\": 0}",
            expected: .invalidValue(file: file, field: "vcpus", value: "0", allowed: "1...1024")),
        Refusal(
            json: "{\(base), \"mode\": \"tdx\"}",
            expected: .invalidValue(file: file, field: "mode", value: "tdx", allowed: "none, sev, sev-es, snp")),
        Refusal(
            json: "{\(base), \"snp\": {\"policy\": \"0x10000\"}}",
            expected: .invalidValue(
                file: file, field: "snp.policy", value: "0x10000", allowed: "bit 17 is reserved and must be 1 (e.g. 0x30000)")),
        Refusal(
            json: "{\(base), \"snp\": {\"policy\": 196608, \"hostData\": \"AAEC\"}}",
            expected: .invalidValue(
                file: file, field: "snp.hostData", value: "AAEC", allowed: "base64 of exactly 32 bytes (this decodes to 3 bytes)")),
        Refusal(
            json: "{\(base), \"snp\": {\"policy\": [\"smt\", \"turbo\"]}}",
            expected: .invalidValue(
                file: file, field: "snp.policy", value: "turbo",
                allowed:
                    "a number such as 0x30000, or a list of flag names (smt, migrate-ma, debug, single-socket, cxl-allow, mem-aes-256-xts, rapl-dis, ciphertext-hiding, page-swap-disable)"
            )),
        Refusal(
            json: "{\"schemaVersion\": 1, \"name\": \"a/b\"}",
            expected: .invalidValue(file: file, field: "name", value: "a/b", allowed: "1 to 64 characters from A-Z a-z 0-9 . _ -")),
        Refusal(
            json: "{\(base), \"network\": {\"mode\": \"user\", \"forwards\": [\"70000:22\"]}}",
            expected: .invalidValue(file: file, field: "network.forwards.0", value: "70000:22", allowed: PortForward.syntax)),
        Refusal(
            json: "{\(base), \"pciPassthrough\": [\"01:00.0\"]}",
            expected: .invalidValue(
                file: file, field: "pciPassthrough.0", value: "01:00.0", allowed: "a host PCI address DDDD:BB:DD.F, e.g. 0000:01:00.0")),
        Refusal(
            json: "{\(base), \"cbitpos\": 64}",
            expected: .invalidValue(file: file, field: "cbitpos", value: "64", allowed: "1...63 (CPUID 0x8000001F EBX[5:0], e.g. 51)")),
        Refusal(
            json: "{\(base), \"disks\": [{\"path\": \"a.img\", \"bus\": \"ide\"}]}",
            expected: .invalidValue(file: file, field: "disks.0.bus", value: "ide", allowed: "virtio-scsi, virtio-blk")),
        Refusal(json: "{\"schemaVersion\": 2, \"name\": \"web\"}", expected: .unsupportedSchema(file: file, version: 2, supported: 1)),
    ]

    @Test(arguments: refusals) func refusesInvalidInput(_ refusal: Refusal) {
        #expect(throws: refusal.expected) { try decode(refusal.json) }
    }

    @Test func malformedJSONNamesTheFile() {
        do {
            _ = try decode("{\"schemaVersion\": 1,")
            Issue.record("decoding broken JSON succeeded")
        } catch let error as DefinitionError {
            guard case .malformedJSON(let path, _) = error else {
                Issue.record("unexpected error \(error)")
                return
            }
            #expect(path == file)
            #expect(error.description.hasPrefix(file))
        } catch {
            Issue.record("unexpected error type \(error)")
        }
    }

    @Test func errorMessagesSayWhatIsAllowed() {
        let error = DefinitionError.invalidValue(file: file, field: "snp.policy", value: "0x10000", allowed: "bit 17 must be 1")
        #expect(error.description == "/ws/vms/web.json: field 'snp.policy' has the value '0x10000'; allowed: bit 17 must be 1")
    }
}

@Suite struct NamesSizesPoliciesTests {
    @Test(arguments: ["web", "a", "A.b_c-9", String(repeating: "x", count: 64), "..a"])
    func acceptsValidNames(_ name: String) {
        #expect(VMName.isValid(name))
    }

    @Test(arguments: ["", ".", "..", "a/b", "a b", "é", String(repeating: "x", count: 65), "a\u{0}"])
    func refusesInvalidNames(_ name: String) {
        #expect(throws: DefinitionError.invalidName(name: name)) { try VMName.validate(name) }
    }

    @Test(arguments: [("2G", 2048), ("512M", 512), ("512", 512), ("1.5G", 1536), ("2GiB", 2048), ("1T", 1 << 20), ("4096K", 4)])
    func parsesMemorySizes(_ text: String, _ mib: Int) {
        #expect(ByteSize.parseMiB(text) == mib)
    }

    @Test(arguments: ["", "G", "-1G", "2X", "1.3M", "1K"])
    func refusesBadMemorySizes(_ text: String) {
        #expect(ByteSize.parseMiB(text) == nil)
    }

    @Test func snpPolicyFlagsMatchTheABI() {
        #expect(SNPPolicy(flags: [.smt]).rawValue == 0x30000)
        #expect(SNPPolicy(flags: [.smt, .debug]).rawValue == 0xB0000)
        #expect(SNPPolicy(flags: SNPPolicy.Flag.allCases).rawValue == 0x3FF0000 & ~0 | 0x20000)
        #expect(SNPPolicy(rawValue: 0x10000).problem != nil)
        #expect(SNPPolicy(rawValue: 0x4030000).problem == "bits 26..63 are reserved and must be 0")
        #expect(SNPPolicy(flags: [], abiMajor: 1, abiMinor: 0x33).rawValue == 0x20133)
    }

    @Test func sevPolicyFlags() {
        #expect(SEVPolicy.sevESDefault.flags == [.noDebug, .encryptedState])
        #expect(SEVPolicy.sevDefault.description == "0x1")
    }
}

/// Other areas embed VMDefinition in their own JSON through Codable: the same strict rules apply.
@Suite struct CodableEntryPointTests {
    @Test func jsonDecoderRoundTripAndStrictness() throws {
        var definition = VMDefinition(name: "web", mode: .snp)
        definition.network = Network(mode: .user, forwards: [PortForward(hostPort: 2222, guestPort: 22)])
        let data = try JSONEncoder().encode(["definition": definition])
        #expect(try JSONDecoder().decode([String: VMDefinition].self, from: data)["definition"] == definition)
        let unknown = Data(#"{"schemaVersion": 1, "name": "web", "turbo": true}"#.utf8)
        #expect(throws: DefinitionError.self) { try JSONDecoder().decode(VMDefinition.self, from: unknown) }
    }
}

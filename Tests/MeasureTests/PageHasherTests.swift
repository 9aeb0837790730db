// Both SHA-384 page hashers (system OpenSSL, swift-crypto) give the same page digests.
import Crypto
import Firmware
import Foundation
import Testing

@testable import Measure

@Suite struct PageHasherTests {
    /// A mapped image of `pages` pages of deterministic, non-repeating bytes.
    func image(pages: Int) throws -> (ImageBytes, String) {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<pages * SNPLaunchContext.pageSize).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let path = NSTemporaryDirectory() + "/sevvm-pagehasher-\(UUID().uuidString).bin"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return (try ImageBytes.load(path: path), path)
    }

    @Test func openSSLIsFoundOnDebian() {
        // libssl3 is on every Debian 12 system (systemd and apt need it); without it sevvm is correct
        // but slower, and this test says so.
        #expect(PageHasher.preferred == .openSSL, "libcrypto.so.3 did not load: measure falls back to swift-crypto")
    }

    @Test(arguments: [1, 2, 3, 17, 900])
    func hashersAgree(pages: Int) throws {
        let (bytes, path) = try image(pages: pages)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let viaSwiftCrypto = SNPLaunchContext.pageDigests(bytes, hasher: .swiftCrypto)
        let viaPreferred = SNPLaunchContext.pageDigests(bytes, hasher: .preferred)
        #expect(viaSwiftCrypto.count == pages * 48)
        #expect(viaPreferred == viaSwiftCrypto)
        // And both are SHA-384 of each page, in order.
        try bytes.withUnsafeBytes { raw in
            for page in [0, pages / 2, pages - 1] {
                let expected = Array(SHA384.hash(data: UnsafeRawBufferPointer(rebasing: raw[page * 4096..<(page + 1) * 4096])))
                #expect(Array(viaPreferred[page * 48..<(page + 1) * 48]) == expected, "page \(page)")
            }
            _ = try #require(raw.baseAddress)
        }
    }

    @Test(arguments: [0, 1, 111, 112, 113, 128, 4096])
    func singleDigestsAgree(size: Int) {
        let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        var results: [[UInt8]] = []
        for hasher in [PageHasher.preferred, .swiftCrypto] {
            var digest = [UInt8](repeating: 0, count: 48)
            bytes.withUnsafeBytes { input in
                digest.withUnsafeMutableBytes { output in
                    guard let destination = output.baseAddress else { return }
                    hasher.digest(of: input, into: destination)
                }
            }
            results.append(digest)
        }
        #expect(results[0] == results[1])
        #expect(results[1] == Array(SHA384.hash(data: bytes)))
    }
}

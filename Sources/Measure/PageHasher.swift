// PageHasher: SHA-384 of firmware pages, with the system's OpenSSL when present, else swift-crypto.
import CShims
import Crypto
import Dispatch
import FoundationEssentials
import Support

/// Which SHA-384 code hashes the firmware pages of an SNP measurement.
///
/// Why two: SNP measurement is mostly SHA-384 of 4 KiB pages. On AMD CPUs the system's OpenSSL
/// runs its AVX2 SHA-512 code, about twice as fast here as the BoringSSL in swift-crypto, which
/// takes its plain x86-64 path on non-Intel CPUs. libcrypto is loaded with dlopen by `measure` only,
/// so no other command pays its ~2 ms of loading; a known-answer check guards its use.
enum PageHasher: String, Sendable, CaseIterable {
    case openSSL = "openssl"
    case swiftCrypto = "swift-crypto"

    /// OpenSSL when it loads, else swift-crypto. SEVVM_SHA384=swift-crypto picks swift-crypto.
    static var preferred: PageHasher {
        if forcedSwiftCrypto { return .swiftCrypto }
        return sevvm_openssl_sha384_load() == 1 ? .openSSL : .swiftCrypto
    }

    /// OpenSSL if the page hashing already loaded it, else swift-crypto: for a few digests
    /// (chain records, VMSA pages) that would not repay loading libcrypto.
    static var loaded: PageHasher {
        !forcedSwiftCrypto && sevvm_openssl_sha384_loaded() == 1 ? .openSSL : .swiftCrypto
    }

    private static let forcedSwiftCrypto = environmentValue("SEVVM_SHA384") == PageHasher.swiftCrypto.rawValue

    /// Starts loading libcrypto on another thread, so it overlaps reading the firmware.
    static func warmUp() {
        DispatchQueue.global().async { _ = sevvm_openssl_sha384_load() }
    }

    /// The SHA-384 of `bytes`, written as 48 bytes at `destination`.
    func digest(of bytes: UnsafeRawBufferPointer, into destination: UnsafeMutableRawPointer) {
        if self == .openSSL, let source = bytes.baseAddress {
            sevvm_openssl_sha384(source, bytes.count, destination.assumingMemoryBound(to: UInt8.self))
            return
        }
        var hasher = SHA384()
        hasher.update(bufferPointer: bytes)
        hasher.finalize().withUnsafeBytes { digest in
            guard let digest = digest.baseAddress else { return }
            destination.copyMemory(from: digest, byteCount: SNPLaunchContext.digestSize)
        }
    }

    /// The SHA-384 of `pages` consecutive 4 KiB pages at `source`, written 48 bytes apart at `destination`.
    func hash(pages: Int, from source: UnsafeRawPointer, into destination: UnsafeMutableRawPointer) {
        for index in 0..<pages {
            let page = UnsafeRawBufferPointer(start: source + index * SNPLaunchContext.pageSize, count: SNPLaunchContext.pageSize)
            digest(of: page, into: destination + index * SNPLaunchContext.digestSize)
        }
    }
}

// Trimming and formatting text in plain Swift: no Foundation character sets or printf formats.
extension StringProtocol {
    /// The text without leading and trailing whitespace (newlines included).
    ///
    /// Why not Foundation's `trimmingCharacters(in:)`: it needs all of Foundation (sevvm links only
    /// FoundationEssentials, for start-up time), and its first use initialises CoreFoundation's
    /// character sets.
    public var trimmingWhitespace: String { trimming { $0.isWhitespace } }

    /// The text without leading and trailing spaces and tabs (newlines are kept), as Foundation's
    /// `.whitespaces` set.
    public var trimmingSpaces: String { trimming { $0.isWhitespace && !$0.isNewline } }

    /// The text without leading and trailing newlines (spaces and tabs are kept).
    public var trimmingNewlines: String { trimming { $0.isNewline } }

    /// The text without leading and trailing characters for which `drop` is true.
    public func trimming(_ drop: (Character) -> Bool) -> String {
        guard let first = firstIndex(where: { !drop($0) }), let last = lastIndex(where: { !drop($0) }) else {
            return ""
        }
        return String(self[first...last])
    }
}

/// Lower-case hex of bytes, two digits each: what digests and IDs look like in reports and JSON.
public func hexString(_ bytes: some Sequence<UInt8>) -> String {
    let digits: [UInt8] = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(bytes.underestimatedCount * 2)
    for byte in bytes {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 0x0f)])
    }
    return String(decoding: out, as: UTF8.self)
}

/// A number with a fixed count of decimals, as printf's "%.Nf" (half away from zero).
public func fixedDecimals(_ value: Double, _ digits: Int) -> String {
    guard value.isFinite else { return "\(value)" }
    var scale = 1.0
    for _ in 0..<max(digits, 0) { scale *= 10 }
    let scaled = (abs(value) * scale).rounded(.toNearestOrAwayFromZero)
    let whole = Int(scaled / scale)
    let fraction = Int(scaled - Double(whole) * scale)
    let sign = value < 0 && scaled != 0 ? "-" : ""
    guard digits > 0 else { return "\(sign)\(whole)" }
    let fractionText = String(fraction)
    return "\(sign)\(whole)." + String(repeating: "0", count: digits - fractionText.count) + fractionText
}

/// An integer padded with leading zeros to `width` digits, as printf's "%0Nd".
public func zeroPadded(_ value: Int, _ width: Int) -> String {
    let text = String(abs(value))
    return (value < 0 ? "-" : "") + String(repeating: "0", count: max(0, width - text.count)) + text
}

extension StringProtocol {
    /// The text padded with spaces on the right to `width` characters (never cut).
    public func padded(to width: Int) -> String {
        String(self) + String(repeating: " ", count: Swift.max(0, width - count))
    }
}

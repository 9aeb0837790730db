// Human sizes ("2G", "512M", "20G") parsed into MiB or bytes, as users type them on the command line.
public enum ByteSize {
    /// Parses `2G`, `512M`, `1.5G`, `2GiB`, `4096` (plain numbers are MiB) into MiB.
    /// Returns nil for anything else or for sizes that are not a whole number of MiB.
    public static func parseMiB(_ text: String) -> Int? {
        guard let bytes = parseBytes(text, plainUnit: 1 << 20), bytes % (1 << 20) == 0 else { return nil }
        return Int(bytes >> 20)
    }

    /// Parses `20G`, `512M`, `1T`, `4096K` or plain bytes into bytes (`plainUnit` scales a bare number).
    public static func parseBytes(_ text: String, plainUnit: Int64 = 1) -> Int64? {
        var number = text.trimmingWhitespace()
        guard !number.isEmpty else { return nil }
        var unit = plainUnit
        let suffixes: [(String, Int64)] = [
            ("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10),
            ("TB", 1 << 40), ("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10),
            ("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10), ("B", 1),
        ]
        for (suffix, scale) in suffixes where number.uppercased().hasSuffix(suffix.uppercased()) {
            number = String(number.dropLast(suffix.count))
            unit = scale
            break
        }
        if let whole = Int64(number), whole >= 0 {
            let (product, overflow) = whole.multipliedReportingOverflow(by: unit)
            return overflow ? nil : product
        }
        // Fractions such as 1.5G: exact only when the result is whole.
        guard let fraction = Double(number), fraction >= 0, fraction.isFinite else { return nil }
        let value = fraction * Double(unit)
        guard value < 9.0e18, value == value.rounded() else { return nil }
        return Int64(value)
    }

    /// `2048` MiB as "2G", `512` as "512M": the shortest exact spelling.
    public static func formatMiB(_ mib: Int) -> String {
        if mib >= 1024 * 1024, mib % (1024 * 1024) == 0 { return "\(mib / (1024 * 1024))T" }
        if mib >= 1024, mib % 1024 == 0 { return "\(mib / 1024)G" }
        return "\(mib)M"
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars = scalars.dropFirst() }
        while let last = scalars.last, last.isWhitespace { scalars = scalars.dropLast() }
        return String(scalars)
    }
}

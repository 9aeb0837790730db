// Timestamp: ISO 8601 UTC text for dates in sevvm's JSON files and output, without ICU.
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// Why not Foundation's `.iso8601` strategies: on Linux they go through Calendar and ICU's time
/// zone tables, which cost over a millisecond on first use: a third of `sevvm status`'s own work.
/// Dates here are always UTC (`2026-11-29T21:41:17Z`, optionally with a fraction), which libc's
/// `timegm`/`gmtime_r` handle exactly.
public enum Timestamp {
    /// `2026-11-29T21:41:17Z`, or with `fractionDigits` (1...9) after the seconds; the same text
    /// ISO8601DateFormatter writes.
    public static func format(_ date: Date, fractionDigits: Int = 0) -> String {
        // As ISO8601DateFormatter: round to the millisecond (or to the digits shown, when finer),
        // then cut to the digits shown: 0.9996 s is the next second, 0.5 s is not.
        let digits = min(max(fractionDigits, 0), 9)
        let precision = max(3, digits)
        let units = (date.timeIntervalSince1970 * pow(10.0, Double(precision))).rounded()
        let perSecond = pow(10.0, Double(precision))
        var seconds = time_t((units / perSecond).rounded(.down))
        let scaled = Int((units - Double(seconds) * perSecond).rounded()) / Int(pow(10.0, Double(precision - digits)))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        var text =
            pad(Int(parts.tm_year) + 1900, 4) + "-" + pad(Int(parts.tm_mon) + 1, 2) + "-" + pad(Int(parts.tm_mday), 2) + "T"
            + pad(Int(parts.tm_hour), 2) + ":" + pad(Int(parts.tm_min), 2) + ":" + pad(Int(parts.tm_sec), 2)
        if digits > 0 { text += "." + pad(scaled, digits) }
        return text + "Z"
    }

    /// Parses `YYYY-MM-DDThh:mm:ss[.fraction](Z|±hh:mm)`; nil for anything else.
    /// The date's day in the local time zone, "2026-11-29" (release folder names).
    public static func localDay(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var fields = tm()
        localtime_r(&seconds, &fields)
        return pad(Int(fields.tm_year) + 1900, 4) + "-" + pad(Int(fields.tm_mon) + 1, 2) + "-" + pad(Int(fields.tm_mday), 2)
    }

    public static func parse(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        func number(_ start: Int, _ count: Int) -> Int? {
            guard start + count <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[start..<start + count] {
                guard byte >= 48 && byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            return value
        }
        func at(_ index: Int, _ character: Character) -> Bool {
            index < bytes.count && bytes[index] == character.asciiValue
        }
        guard let year = number(0, 4), at(4, "-"), let month = number(5, 2), at(7, "-"), let day = number(8, 2),
            at(10, "T") || at(10, "t"), let hour = number(11, 2), at(13, ":"), let minute = number(14, 2), at(16, ":"),
            let second = number(17, 2), (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        var index = 19
        var fraction = 0.0
        if at(index, ".") {
            index += 1
            var scale = 0.1
            let start = index
            while index < bytes.count, let digit = number(index, 1) {
                fraction += Double(digit) * scale
                scale /= 10
                index += 1
            }
            guard index > start else { return nil }
        }
        var offset = 0
        if at(index, "Z") || at(index, "z") {
            index += 1
        } else if at(index, "+") || at(index, "-"), let hours = number(index + 1, 2), at(index + 3, ":"),
            let minutes = number(index + 4, 2)
        {
            offset = (hours * 3600 + minutes * 60) * (at(index, "-") ? -1 : 1)
            index += 6
        } else {
            return nil
        }
        guard index == bytes.count else { return nil }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        let seconds = timegm(&parts)
        return Date(timeIntervalSince1970: Double(seconds - offset) + fraction)
    }

    /// For `JSONEncoder.dateEncodingStrategy`: whole seconds, as `.iso8601` wrote them.
    public static let encodingStrategy = JSONEncoder.DateEncodingStrategy.custom { date, encoder in
        var container = encoder.singleValueContainer()
        try container.encode(format(date))
    }

    /// For `JSONDecoder.dateDecodingStrategy`: what `format` writes (and `.iso8601` wrote).
    public static let decodingStrategy = JSONDecoder.DateDecodingStrategy.custom { decoder in
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let date = parse(text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "'\(text)' is not an ISO 8601 UTC date such as 2026-11-29T21:41:17Z")
        }
        return date
    }

    private static func pad(_ value: Int, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
}

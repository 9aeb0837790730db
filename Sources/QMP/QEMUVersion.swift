// QEMUVersion: QEMU's major.minor.micro, parsed from QMP greetings or `qemu-system-* --version` text.

public struct QEMUVersion: Sendable, Codable, Comparable, Hashable, CustomStringConvertible {
    public var major: Int
    public var minor: Int
    public var micro: Int

    public init(major: Int, minor: Int, micro: Int) {
        self.major = major
        self.minor = minor
        self.micro = micro
    }

    /// Finds the first `N.N` or `N.N.N` in text such as "10.0.2" or
    /// "QEMU emulator version 9.2.0 (Debian 1:9.2.0+ds-1)". Returns nil when there is none.
    public init?(parsing text: String) {
        let bytes = Array(text.utf8)
        var index = 0
        while index < bytes.count {
            guard isDigit(bytes[index]), index == 0 || !isDigit(bytes[index - 1]) && bytes[index - 1] != UInt8(ascii: ".") else {
                index += 1
                continue
            }
            var numbers: [Int] = []
            var cursor = index
            while cursor < bytes.count, numbers.count < 3 {
                var value = 0
                let start = cursor
                while cursor < bytes.count, isDigit(bytes[cursor]), cursor - start < 9 {
                    value = value * 10 + Int(bytes[cursor] - UInt8(ascii: "0"))
                    cursor += 1
                }
                guard cursor > start else { break }
                numbers.append(value)
                guard cursor < bytes.count, bytes[cursor] == UInt8(ascii: "."), numbers.count < 3 else { break }
                cursor += 1
            }
            if numbers.count >= 2 {
                self.init(major: numbers[0], minor: numbers[1], micro: numbers.count > 2 ? numbers[2] : 0)
                return
            }
            index = max(cursor, index + 1)
        }
        return nil
    }

    public var description: String { "\(major).\(minor).\(micro)" }

    public static func < (lhs: QEMUVersion, rhs: QEMUVersion) -> Bool {
        (lhs.major, lhs.minor, lhs.micro) < (rhs.major, rhs.minor, rhs.micro)
    }

    /// Encoded as the string "10.0.2"; decodes that string or an object with major/minor/micro.
    public init(from decoder: any Decoder) throws {
        if let container = try? decoder.singleValueContainer(), let text = try? container.decode(String.self) {
            guard let version = QEMUVersion(parsing: text) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a QEMU version: \(text)"))
            }
            self = version
            return
        }
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            major: try container.decode(Int.self, forKey: .major),
            minor: try container.decode(Int.self, forKey: .minor),
            micro: try container.decodeIfPresent(Int.self, forKey: .micro) ?? 0)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    private enum CodingKeys: String, CodingKey { case major, minor, micro }
}

private func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

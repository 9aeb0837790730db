// Interim QEMUVersion with the QMP contract's exact API, deleted when the QMP module's own lands on main.
import Foundation

/// A QEMU release number ("10.0.2"), parsed from `--version` output or a QMP greeting.
public struct QEMUVersion: Sendable, Codable, Comparable, CustomStringConvertible {
    public var major: Int
    public var minor: Int
    public var micro: Int

    public init(major: Int, minor: Int, micro: Int) {
        self.major = major
        self.minor = minor
        self.micro = micro
    }

    /// Accepts "10.0.2" and "QEMU emulator version 9.2.0 (...)": the first dotted number wins.
    public init?(parsing text: String) {
        let words = text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "(" })
        guard let word = words.first(where: { $0.first?.isNumber == true && $0.contains(".") }) else { return nil }
        let parts = word.split(separator: ".").map { Int($0.prefix { $0.isNumber }) }
        guard parts.count >= 2, let major = parts[0], let minor = parts[1] else { return nil }
        self.init(major: major, minor: minor, micro: parts.count > 2 ? parts[2] ?? 0 : 0)
    }

    public var description: String { "\(major).\(minor).\(micro)" }

    public static func < (lhs: QEMUVersion, rhs: QEMUVersion) -> Bool {
        (lhs.major, lhs.minor, lhs.micro) < (rhs.major, rhs.minor, rhs.micro)
    }
}

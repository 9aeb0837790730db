// Terminal styling: colour only on a TTY and never with NO_COLOR.
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

public struct Terminal: Sendable {
    public let colorEnabled: Bool
    public let isTTY: Bool

    /// `environment` nil reads sevvm's own (NO_COLOR, TERM).
    public init(fd: Int32 = STDOUT_FILENO, environment: [String: String]? = nil) {
        isTTY = isatty(fd) == 1
        let lookup = { (name: String) in environment.map { $0[name] } ?? environmentValue(name) }
        let noColor = lookup("NO_COLOR").map { !$0.isEmpty } ?? false
        colorEnabled = isTTY && !noColor && lookup("TERM") != "dumb"
    }

    public enum Style: String, Sendable {
        case bold = "1", dim = "2", red = "31", green = "32", yellow = "33", blue = "34", cyan = "36"
    }

    public func paint(_ text: String, _ style: Style) -> String {
        colorEnabled ? "\u{1B}[\(style.rawValue)m\(text)\u{1B}[0m" : text
    }
}

// Whitespace trimming in plain Swift, for paths that run on every command.
extension StringProtocol {
    /// The text without leading and trailing whitespace (newlines included).
    ///
    /// Why not Foundation's `trimmingCharacters(in:)`: its first use initialises CoreFoundation's
    /// character sets, a few hundred microseconds of a command that should take a few milliseconds.
    public var trimmingWhitespace: String {
        guard let first = firstIndex(where: { !$0.isWhitespace }), let last = lastIndex(where: { !$0.isWhitespace }) else {
            return ""
        }
        return String(self[first...last])
    }
}

// File-path text helpers (parent folder, file name) without NSString, which needs all of Foundation.
extension StringProtocol {
    /// The folder part of a path, as NSString's `deletingLastPathComponent`: "/a/b" -> "/a",
    /// "/a" -> "/", "a" -> "", trailing slashes ignored.
    public var parentPath: String {
        let trimmed = Self.droppingTrailingSlashes(String(self))
        guard let slash = trimmed.lastIndex(of: "/") else { return "" }
        if slash == trimmed.startIndex { return "/" }
        return Self.droppingTrailingSlashes(String(trimmed[..<slash]))
    }

    /// The last part of a path, as NSString's `lastPathComponent`: "/a/b/" -> "b", "/" -> "/".
    public var fileName: String {
        let trimmed = Self.droppingTrailingSlashes(String(self))
        guard let slash = trimmed.lastIndex(of: "/") else { return trimmed }
        if trimmed == "/" { return "/" }
        return String(trimmed[trimmed.index(after: slash)...])
    }

    private static func droppingTrailingSlashes(_ path: String) -> String {
        var result = Substring(path)
        while result.count > 1, result.hasSuffix("/") { result = result.dropLast() }
        return String(result)
    }
}

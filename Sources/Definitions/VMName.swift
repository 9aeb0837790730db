// VM names: the one rule that keeps names safe as file names and socket paths.
public enum VMName {
    public static let maximumLength = 64

    /// True for names made of 1 to 64 characters from `[A-Za-z0-9._-]`, except "." and "..".
    public static func isValid(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty, bytes.count <= maximumLength, name != ".", name != ".." else { return false }
        return bytes.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                return true
            case UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
                return true
            default:
                return false
            }
        }
    }

    /// Throws `DefinitionError.invalidName` unless `name` is valid.
    public static func validate(_ name: String) throws {
        guard isValid(name) else { throw DefinitionError.invalidName(name: name) }
    }
}

// Timestamp against Foundation's ISO8601DateFormatter (the oracle), both directions.
import Foundation
import Support
import Testing

@Suite("ISO 8601 timestamps without ICU")
struct TimestampTests {
    static let instants: [Double] = [0, 1_795_990_029, 1_795_990_029.5, 951_782_400, 4_102_444_799, 1_700_000_000.999_6, -86_400.25]

    @Test("whole seconds format (rounded) exactly like ISO8601DateFormatter", arguments: instants)
    func formatsLikeFoundation(seconds: Double) {
        let date = Date(timeIntervalSince1970: seconds)
        let oracle = ISO8601DateFormatter()
        oracle.formatOptions = [.withInternetDateTime]
        #expect(Timestamp.format(date) == oracle.string(from: date))
    }

    @Test("milliseconds format like ISO8601DateFormatter with fractional seconds", arguments: [1_795_990_029.123, 0.5, 1_700_000_000.25])
    func formatsMilliseconds(seconds: Double) {
        let oracle = ISO8601DateFormatter()
        oracle.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let date = Date(timeIntervalSince1970: seconds)
        #expect(Timestamp.format(date, fractionDigits: 3) == oracle.string(from: date))
    }

    @Test("0.9996 s rounds up to the next second, not to .1000")
    func roundsIntoTheNextSecond() {
        #expect(Timestamp.format(Date(timeIntervalSince1970: 1_700_000_000.999_6), fractionDigits: 3) == "2023-11-14T22:13:21.000Z")
    }

    @Test("parses what it writes and what .iso8601 wrote", arguments: instants)
    func roundTrips(seconds: Double) throws {
        let whole = Date(timeIntervalSince1970: seconds.rounded(.down))
        #expect(Timestamp.parse(Timestamp.format(whole)) == whole)
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        let foundationText = try #require(String(data: encoder.encode([whole]), encoding: .utf8))
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = Timestamp.decodingStrategy
        #expect(try decoder.decode([Date].self, from: Data(foundationText.utf8)) == [whole])
    }

    @Test(
        "offsets and fractions parse to the right instant",
        arguments: [
            ("2026-11-29T22:41:17+01:00", 1_795_988_477.0), ("2026-11-29T21:41:17.250Z", 1_795_988_477.25),
            ("2026-11-29t21:41:17z", 1_795_988_477.0), ("2026-11-29T16:11:17-05:30", 1_795_988_477.0),
        ])
    func parsesOffsets(text: String, seconds: Double) {
        #expect(Timestamp.parse(text) == Date(timeIntervalSince1970: seconds))
    }

    @Test(
        "anything else is refused",
        arguments: [
            "", "2026-11-29", "2026-11-29T21:41:17", "2026-13-01T00:00:00Z", "2026-11-29T21:41:17.Z", "2026-11-29T21:41:17Zjunk",
            "2026-11-29T24:00:00Z", "20x6-11-29T21:41:17Z",
        ])
    func refusesGarbage(text: String) {
        #expect(Timestamp.parse(text) == nil)
    }

    @Test("the decoding strategy names the bad value")
    func decodingErrorNamesTheValue() {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = Timestamp.decodingStrategy
        #expect {
            _ = try decoder.decode([Date].self, from: Data(#"["yesterday"]"#.utf8))
        } throws: { error in
            "\(error)".contains("'yesterday' is not an ISO 8601 UTC date")
        }
    }
}

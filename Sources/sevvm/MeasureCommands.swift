// Placeholder commands, replaced by the owning area's implementation before anything lands.
import ArgumentParser

struct MeasureCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "measure", abstract: "(not yet built)")
}
struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "report", abstract: "(not yet built)")
}

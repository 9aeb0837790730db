// Placeholder commands, replaced by the owning area's implementation before anything lands.
import ArgumentParser

struct CapsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "caps", abstract: "(not yet built)")
}

// Placeholder commands, replaced by the owning area's implementation before anything lands.
import ArgumentParser

struct BuildCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "build", abstract: "(not yet built)")
}
struct InstallHostCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "install-host", abstract: "(not yet built)")
}

// Placeholder commands, replaced by the owning area's implementation before anything lands.
import ArgumentParser

struct QMPCommand: AsyncParsableCommand { static let configuration = CommandConfiguration(commandName: "qmp", abstract: "(not yet built)") }

// Placeholder commands, replaced by the owning area's implementation before anything lands.
import ArgumentParser

struct CreateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "(not yet built)")
}
struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "(not yet built)")
}
struct ShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "(not yet built)")
}
struct EditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "edit", abstract: "(not yet built)")
}
struct RmCommand: AsyncParsableCommand { static let configuration = CommandConfiguration(commandName: "rm", abstract: "(not yet built)") }

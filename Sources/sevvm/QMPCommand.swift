// `sevvm qmp`: run one QMP command against a QMP socket and print its reply as JSON.
import ArgumentParser
import FoundationEssentials
import QMP
import Runtime
import Support

#if canImport(Glibc)
    import Glibc
#endif

struct QMPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qmp",
        abstract: "Run one QMP command and print its result as JSON.",
        usage: """
            sevvm qmp NAME COMMAND [ARGUMENTS-JSON] [--raw] [--pretty|--compact] [--timeout S]
            sevvm qmp --socket PATH COMMAND [ARGUMENTS-JSON] [--raw] [--pretty|--compact] [--timeout S]
            """,
        discussion: """
            Connects to a QEMU QMP socket, negotiates capabilities, runs COMMAND with the \
            optional ARGUMENTS-JSON object and prints the command's "return" value (--raw: the \
            whole reply, including its id). QMP errors are printed with QEMU's error class and \
            description and exit with status 1.

            A QMP socket serves one client at a time: if another client (a running sevvm \
            session, socat, virsh) holds it, the greeting never comes and sevvm says so after \
            --timeout seconds.

            Without --socket the first argument names a running VM of the workspace, and sevvm \
            uses that VM's control socket (run/NAME/qmp.sock).

            Examples:
              sevvm qmp web query-status
              sevvm qmp web query-sev
              sevvm qmp --socket /run/vm/qmp.sock query-status
              sevvm qmp --socket /run/vm/qmp.sock query-sev
              sevvm qmp --socket /run/vm/qmp.sock --raw query-version
              sevvm qmp --socket /run/vm/qmp.sock qom-get '{"path": "/machine", "property": "type"}'
              sevvm qmp --socket /run/vm/qmp.sock --compact query-qmp-schema | jq length
            """
    )

    @Option(name: .long, help: ArgumentHelp("The QMP socket (QEMU's -qmp unix:PATH,server=on).", valueName: "PATH"))
    var socket: String?

    @Flag(name: .long, help: "Print the whole reply ({\"return\": ..., \"id\": ...}) rather than its return value.")
    var raw = false

    @Flag(name: .long, help: "Indent the JSON (the default when printing to a terminal).")
    var pretty = false

    @Flag(name: .long, help: "Print the JSON on one line (the default when printing to a pipe or file).")
    var compact = false

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Seconds to wait for the connection and greeting, and for the reply (default: 5 to connect; 30 for most commands).",
            valueName: "SECONDS"))
    var timeout: Double?

    @Argument(
        help: ArgumentHelp(
            "NAME COMMAND [ARGUMENTS-JSON] for a VM of the workspace, or COMMAND [ARGUMENTS-JSON] with --socket; ARGUMENTS-JSON is one JSON object, e.g. '{\"device\": \"virtio0\"}'.",
            valueName: "NAME|COMMAND"))
    var words: [String] = []

    @OptionGroup var workspace: WorkspaceOptions

    /// The VM (without --socket), the QMP command and its arguments, from the positionals.
    private var request: (vm: String?, command: String, arguments: String?) {
        let rest = socket == nil ? Array(words.dropFirst()) : words
        return (socket == nil ? words.first : nil, rest.first ?? "", rest.count > 1 ? rest[1] : nil)
    }

    func validate() throws {
        if pretty && compact { throw ValidationError("--pretty and --compact exclude each other") }
        if let timeout, !(timeout > 0 && timeout <= 86_400) { throw ValidationError("--timeout must be between 0 and 86400 seconds") }
        let expected = socket == nil ? "NAME COMMAND [ARGUMENTS-JSON]" : "COMMAND [ARGUMENTS-JSON] after --socket PATH"
        let minimum = socket == nil ? 2 : 1
        guard (minimum...minimum + 1).contains(words.count) else {
            throw ValidationError(
                "expected \(expected), got \(words.count) argument(s): sevvm qmp web query-status, or sevvm qmp --socket PATH query-status")
        }
        let command = request.command
        if command.isEmpty || command.hasPrefix("{") {
            throw ValidationError(
                "COMMAND comes before ARGUMENTS-JSON: sevvm qmp web query-status, or sevvm qmp --socket PATH query-status")
        }
    }

    func run() async throws {
        let socketPath = try resolveSocketPath()
        let (_, command, arguments) = request
        var argumentsValue: JSONValue?
        if let arguments {
            do {
                argumentsValue = try QMPArguments.parse(arguments)
            } catch QMPError.invalidJSON(let offset, let reason) {
                throw fail("invalid ARGUMENTS-JSON at byte \(offset): \(reason)\n\(QMPArguments.pointer(to: offset, in: arguments))")
            }
        }
        let limit = timeout.map { Duration.milliseconds(Int64(($0 * 1000).rounded(.up))) }
        do {
            let reply = try await QMPClient.withSession(socketPath: socketPath, timeout: limit ?? .seconds(5)) { client in
                raw
                    ? try await client.executeRaw(command, arguments: argumentsValue, timeout: limit)
                    : try await client.execute(command, arguments: argumentsValue, timeout: limit)
            }
            let indent = pretty || (!compact && Terminal(fd: STDOUT_FILENO).isTTY)
            print(reply.serialized(pretty: indent))
        } catch let error as QMPError {
            throw fail(error.description)
        }
    }

    /// The socket to talk to. `--socket` is the only source for now; `sevvm qmp NAME ...` for
    /// defined VMs resolves NAME to its runtime folder's QMP socket here.
    private func resolveSocketPath() throws -> String {
        if let socket { return socket }
        guard let name = request.vm else {
            throw fail(
                "say which VM or QMP socket to use: sevvm qmp NAME \(request.command), or sevvm qmp --socket PATH \(request.command)")
        }
        try VMNameArgument.checkKnown(name, in: workspace.resolved)
        do {
            return try VMRuntime(workspace: workspace.resolved, name: name).controlSocket()
        } catch let error as RuntimeError {
            throw fail(error.description, code: error.isWrongState ? ExitCodes.wrongState : ExitCodes.failure)
        }
    }
}

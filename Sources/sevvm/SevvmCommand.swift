// The sevvm command line: the root command and its subcommands.
import ArgumentParser

/// The root command. The program starts in main.swift, which gives QuickCommand the first look.
struct Sevvm: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sevvm",
        abstract: "Define, launch, measure and manage AMD SEV, SEV-ES and SEV-SNP confidential guests.",
        discussion: """
            A workspace is the folder holding vms/ (definitions), images/ and stable-commits; \
            it is the current directory unless --workspace DIR or SEVVM_WORKSPACE says otherwise.

            Typical flow:
              sevvm caps                         is this host ready for SEV, SEV-ES, SNP?
              sevvm create web --mode snp --disk-size 20G --cdrom debian.iso
              sevvm start web --console          launch it and attach to its serial console
              sevvm status web                   state, SEV state, what the guest reported
              sevvm measure web                  the launch digest a verifier should expect
              sevvm stop web

            Exit status: 0 success, 1 failure (the message says what to do), 2 usage error, \
            3 host not ready (caps), 4 VM not in the needed state.
            """,
        version: SevvmVersion.string,
        subcommands: [
            CapsCommand.self,
            CreateCommand.self, ListCommand.self, ShowCommand.self, EditCommand.self, RmCommand.self,
            StartCommand.self, StatusCommand.self, StopCommand.self, KillCommand.self,
            PauseCommand.self, ResumeCommand.self, ResetCommand.self,
            ConsoleCommand.self, LogsCommand.self, EventsCommand.self, QMPCommand.self, RecordEventsCommand.self,
            BuildCommand.self, InstallHostCommand.self,
            MeasureCommand.self, ReportCommand.self,
        ]
    )
}

enum SevvmVersion {
    static let string = "0.1.0"
}

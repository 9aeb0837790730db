// The full QEMU argv of a run: the launch plan's machine arguments plus sevvm's runtime plumbing.
import FoundationEssentials
import Launch

#if canImport(Glibc)
    import Glibc
#endif

public enum QEMUCommandLine {
    /// Runtime plumbing (not part of a LaunchPlan): name, paused start, daemonizing, pidfile, two QMP
    /// sockets (control and the recorder's), the serial port on a socket (the recorder logs and relays
    /// it: QEMU's chardev logfile stays empty while no client is connected), no display.
    /// Socket paths are relative: QEMU runs in the VM's runtime folder, so deep workspaces still fit
    /// in a unix socket address.
    public static func plumbing(name: String, folder: RuntimeFolder) -> [String] {
        [
            "-name", "guest=\(name),process=sevvm-\(name)",
            "-S",
            "-daemonize",
            "-pidfile", folder.pidfile,
            "-D", folder.qemuLog,
            "-qmp", "unix:\(RuntimeFolder.controlSocketName),server=on,wait=off",
            "-qmp", "unix:\(RuntimeFolder.eventSocketName),server=on,wait=off",
            "-chardev", "socket,id=console0,path=\(RuntimeFolder.serialSocketName),server=on,wait=off",
            "-serial", "chardev:console0",
            "-display", "none",
        ]
    }

    /// The exact argv: QEMU's path, the plan's machine arguments, then the plumbing.
    public static func argv(plan: LaunchPlan, name: String, folder: RuntimeFolder) -> [String] {
        [plan.qemu.path] + plan.arguments + plumbing(name: name, folder: folder)
    }

    /// The argv as a shell command, one option (with its value) per line, quoted where needed, to be
    /// pasted into a shell: it changes into the runtime folder first (the sockets are relative to it).
    public static func render(_ argv: [String], workingDirectory: String) -> String {
        "cd \(LaunchPlan.shellQuote(workingDirectory)) && \\\n" + LaunchPlan.shellCommand(argv)
    }
}

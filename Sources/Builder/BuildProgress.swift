// Progress of a build: one rewritten line (component, step, elapsed, current log line) on a TTY, plain lines otherwise.
import Dispatch
import FoundationEssentials
import Support

#if canImport(Glibc)
    import Glibc
#endif

public final class BuildProgress: @unchecked Sendable {
    private let terminal: Terminal
    private let write: @Sendable (String) -> Void
    private let lock = Lock()
    private var timer: DispatchSourceTimer?
    private let queue = DispatchQueue(label: "sevvm.build.progress")

    public init(terminal: Terminal, write: @escaping @Sendable (String) -> Void = { StandardStream.print($0) }) {
        self.terminal = terminal
        self.write = write
    }

    public func handle(_ event: BuildEvent) {
        lock.withLock {
            switch event {
            case .upToDate(let component, let commit):
                write("\(terminal.paint(component.rawValue, .bold)) is up to date (\(commit.prefix(12)))\n")
            case .componentStarted(let component, let commit, let resumeAt, let reason):
                let what = commit.map { "building \($0.prefix(12))" } ?? "building"
                let resume = resumeAt.map { ", resuming at \($0)" } ?? ""
                write("\(terminal.paint(component.rawValue, .bold)): \(what) (\(reason))\(resume)\n")
            case .stepStarted(let component, let step, let logPath):
                if terminal.isTTY {
                    startTicker(component: component, step: step, logPath: logPath)
                } else {
                    write("\(component): \(step) (log \(logPath))\n")
                }
            case .stepFinished(let component, let step, let seconds):
                stopTicker()
                write("\(terminal.isTTY ? "\r\u{1B}[K" : "")\(component): \(step) done in \(Self.format(seconds))\n")
            case .componentFinished(let component, let commit, let seconds):
                write("\(terminal.paint(component.rawValue, .green)) built \(commit.prefix(12)) in \(Self.format(seconds))\n")
            case .note(let text):
                write(text + "\n")
            }
        }
    }

    /// Clears the progress line (before an error is printed).
    public func finish() {
        lock.withLock {
            stopTicker()
            if terminal.isTTY { write("\r\u{1B}[K") }
        }
    }

    private func startTicker(component: Component, step: StepKind, logPath: String) {
        stopTicker()
        let started = Date()
        let timer = DispatchSource.makeTimerSource(queue: queue)
        timer.schedule(deadline: .now(), repeating: .milliseconds(500))
        let write = self.write
        timer.setEventHandler {
            // Until the step rewrites its log, the file still holds the previous run's lines.
            let fresh = (OutputStamp.of(logPath)?.modified ?? 0) >= Int64(started.timeIntervalSince1970 * 1e9) - 50_000_000
            let line = fresh ? StepExecutor.tail(of: logPath, lines: 1, maximumBytes: 2_048).last ?? "" : ""
            let prefix = "\(component) \(step) \(Self.format(Date().timeIntervalSince(started)))  "
            let room = max(10, 100 - prefix.count)
            let shown = line.count > room ? String(line.prefix(room - 1)) + "…" : line
            write("\r\u{1B}[K" + prefix + shown)
        }
        timer.resume()
        self.timer = timer
    }

    private func stopTicker() {
        timer?.cancel()
        timer = nil
        queue.sync {}
    }

    static func format(_ seconds: Double) -> String {
        let whole = Int(seconds)
        return seconds < 60 ? fixedDecimals(seconds, 1) + "s" : "\(whole / 60)m" + zeroPadded(whole % 60, 2) + "s"
    }
}

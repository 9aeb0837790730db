// The program's entry: QuickCommand for plain `status` and `measure` argument lists, ArgumentParser for the rest.
import Dispatch
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

// Synchronous and before Swift concurrency starts: a plain `sevvm status` creates no threads.
if QuickCommand.runIfPlain(Array(CommandLine.arguments.dropFirst())) { exit(0) }

Task {
    await Sevvm.main()
    exit(0)
}
dispatchMain()

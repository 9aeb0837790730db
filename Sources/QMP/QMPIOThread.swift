// QMPIOThread: a connection's own thread: it waits for the socket and runs the tasks that prefer it.
import CShims
import Dispatch
import FoundationEssentials
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The thread that reads a QMP connection, and a `TaskExecutor` for the tasks that talk over it.
///
/// Why: when a reply arrives, the task waiting for it has to run somewhere. On the global executor
/// that costs a second thread wake-up per round trip (socket -> reader thread -> pool thread), which
/// is most of a round trip's time on a small host. A task that prefers this executor instead runs
/// on the reader thread itself, right after the reader decoded its reply: one wake-up per round
/// trip, like a blocking C client. Jobs enqueued from other threads wake the thread through an
/// eventfd; jobs enqueued by the thread itself (a reply resuming its task) cost no system call.
/// (Without descriptors for epoll and the eventfd the thread still works: it blocks in read(2),
/// and jobs from other threads wait for the next message, as they would on a busy thread.)
///
/// Once the connection ends the thread exits, and jobs still arriving go to Dispatch's global
/// queue, so a task that keeps the preference after closing its session keeps running.
final class QMPIOThread: TaskExecutor, @unchecked Sendable {
    private struct Queue {
        var jobs: [UnownedJob] = []
        /// The thread is (about to be) blocked in epoll_wait(2) and needs the eventfd to notice new jobs.
        var sleeping = false
        var stopped = false
    }

    private let queue = Mutex(Queue())
    private let wakeFD: Int32
    /// Only touched by the thread itself.
    private var batch: [UnownedJob] = []

    init() {
        wakeFD = sevvm_wake_fd()
    }

    deinit { if wakeFD >= 0 { Glibc.close(wakeFD) } }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let (accepted, wake) = queue.withLock { queue -> (Bool, Bool) in
            if queue.stopped { return (false, false) }
            queue.jobs.append(job)
            defer { queue.sleeping = false }
            return (true, queue.sleeping)
        }
        if !accepted {
            handToDispatch(job)
        } else if wake {
            var one: UInt64 = 1
            _ = Glibc.write(wakeFD, &one, 8)
        }
    }

    /// Runs the thread: `onReadable` is called whenever `fd` can be read (or hung up) and returns
    /// false when the connection is over. Returns after handing leftover jobs to Dispatch.
    func run(fd: Int32, onReadable: () -> Bool) {
        // epoll rather than poll: the wait-queue registration is made once, not on every wait.
        let epoll = sevvm_epoll_create()
        defer { if epoll >= 0 { Glibc.close(epoll) } }
        let watching = epoll >= 0 && wakeFD >= 0 && sevvm_epoll_watch(epoll, fd) == 0 && sevvm_epoll_watch(epoll, wakeFD) == 0
        var ready: (Int32, Int32) = (-1, -1)
        var open = true
        while open {
            runJobs()
            guard watching else {
                // No descriptors left for epoll: block in read(2) and run jobs between messages.
                open = onReadable()
                continue
            }
            let mustWait = queue.withLock { queue -> Bool in
                if !queue.jobs.isEmpty { return false }
                queue.sleeping = true
                return true
            }
            guard mustWait else { continue }
            let count = withUnsafeMutableBytes(of: &ready) {
                sevvm_epoll_wait(epoll, $0.baseAddress?.assumingMemoryBound(to: Int32.self), 2, -1)
            }
            queue.withLock { $0.sleeping = false }
            if count < 0 {
                if errno == EINTR { continue }
                open = onReadable()  // Let the reader meet the failure through read(2).
                continue
            }
            if ready.0 == wakeFD || (count > 1 && ready.1 == wakeFD) {
                var counter: UInt64 = 0
                _ = Glibc.read(wakeFD, &counter, 8)
            }
            if ready.0 == fd || (count > 1 && ready.1 == fd) { open = onReadable() }
        }
        runJobs()
        let leftovers = queue.withLock { queue -> [UnownedJob] in
            queue.stopped = true
            defer { queue.jobs = [] }
            return queue.jobs
        }
        leftovers.forEach(handToDispatch)
    }

    /// After the thread has ended, jobs still run (on Dispatch's global queue) as this executor's.
    private func handToDispatch(_ job: UnownedJob) {
        let executor = asUnownedTaskExecutor()
        DispatchQueue.global().async { job.runSynchronously(on: executor) }
    }

    private func runJobs() {
        let executor = asUnownedTaskExecutor()
        // The (empty) batch buffer is swapped with the queue's, so steady traffic allocates nothing.
        while true {
            queue.withLock { queue in swap(&queue.jobs, &batch) }
            if batch.isEmpty { return }
            for job in batch { job.runSynchronously(on: executor) }
            batch.removeAll(keepingCapacity: true)
        }
    }
}

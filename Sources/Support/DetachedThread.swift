// Starting a plain detached thread: for a socket reader or a job that must not wait for a pool thread.
import CShims

#if canImport(Glibc)
    import Glibc
#endif

/// Starts `body` on a new detached thread named `name` (at most 15 bytes show in `ps`); Foundation's
/// Thread would need all of Foundation. Returns false when the thread could not be created.
@discardableResult
public func startDetachedThread(name: String, _ body: @escaping @Sendable () -> Void) -> Bool {
    final class Box: @unchecked Sendable {
        let name: String
        let body: @Sendable () -> Void
        init(name: String, body: @escaping @Sendable () -> Void) {
            self.name = name
            self.body = body
        }
    }
    let box = Unmanaged.passRetained(Box(name: name, body: body))
    var attributes = pthread_attr_t()
    pthread_attr_init(&attributes)
    defer { pthread_attr_destroy(&attributes) }
    pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
    var thread = pthread_t()
    let result = pthread_create(
        &thread, &attributes,
        { context in
            guard let context else { return nil }
            let box = Unmanaged<Box>.fromOpaque(context).takeRetainedValue()
            sevvm_name_thread(box.name)
            box.body()
            return nil
        }, box.toOpaque())
    if result != 0 { box.release() }
    return result == 0
}

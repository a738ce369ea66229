import Dispatch

/// The staging ring of a session's first run, allocated on another thread while the session compiles its pipelines
/// and makes its other objects: pinning host memory is slow (64 MiB took 20-24 ms of an H100 host's start-up,
/// `StartupReport.stagingSeconds`). `take` waits for it; the first run's streamer then uses it as a shared ring
/// (`ChunkStreamer`), as it would the ring a session keeps between residencies.
final class EarlyRing: @unchecked Sendable {
    private let done = DispatchGroup()
    // Written once by the allocating thread before `done` leaves, read only after waiting on it.
    private var buffer: HostBuffer?
    private var seconds = 0.0

    /// Starts allocating a ring of `capacity` bytes on a global queue.
    init(device: Device, capacity: UInt64) {
        done.enter()
        DispatchQueue.global(qos: .userInitiated).async { [self] in
            let start = monotonicSeconds()
            // A failure leaves it nil: the streamer then allocates its own ring and reports the error in context.
            buffer = try? ChunkStreamer.makeRing(device: device, bytes: capacity)
            seconds = monotonicSeconds() - start
            done.leave()
        }
    }

    /// The ring (nil if its allocation failed), how long allocating it took on its thread, and how long the caller
    /// waited for it.
    func take() -> (buffer: HostBuffer?, seconds: Double, waited: Double) {
        let start = monotonicSeconds()
        done.wait()
        return (buffer, seconds, monotonicSeconds() - start)
    }
}

/// `SessionOptions.signalsBeforeWaits`: the two submitting threads of a streamed run (compute batches, the
/// streamer's copies) submit each timeline-semaphore wait only after the submission that signals its value. Each
/// thread publishes the highest value it has submitted and, before submitting a wait for the other's value, waits
/// on the host until that value is published.
///
/// No cycle: a compute batch starting at step s waits for chunks whose issue steps are ≤ s, whose copies wait for
/// batches ending at or before s, which were submitted earlier on the compute thread (the format's rule, issue
/// step ≤ wait step ≤ first use, and issue steps non-decreasing along the copy order).
final class SubmissionOrder: @unchecked Sendable {
    private let lock = ConditionLock()
    private var loaded: UInt64
    private var computed: UInt64
    private var abandoned = false

    /// What a thread throws when the other failed first (the run reports the other thread's error).
    struct Abandoned: Error {}

    /// Values already signalled (or submitted) before the run.
    init(loaded: UInt64, computed: UInt64) {
        self.loaded = loaded
        self.computed = computed
    }

    func copiesSubmitted(through value: UInt64) { publish { loaded = max(loaded, value) } }
    func computeSubmitted(through value: UInt64) { publish { computed = max(computed, value) } }

    /// One thread failed: the other stops waiting (and its wait returns false).
    func abandon() { publish { abandoned = true } }

    /// Blocks until copies signalling `value` are submitted; false if the run was abandoned.
    func awaitCopies(_ value: UInt64) -> Bool { wait { loaded >= value } }
    /// Blocks until compute batches signalling `value` are submitted; false if the run was abandoned.
    func awaitCompute(_ value: UInt64) -> Bool { wait { computed >= value } }

    private func publish(_ change: () -> Void) {
        lock.locked {
            change()
            lock.broadcast()
        }
    }

    private func wait(_ ready: () -> Bool) -> Bool {
        lock.locked {
            while !ready() && !abandoned { lock.wait() }
            return ready()
        }
    }
}

import CVulkan

extension Device {
    /// vkQueueSubmit on `queue` (the compute or the transfer queue) while holding that queue's lock, so
    /// sessions may submit from several threads. Never wait for the GPU inside: waits are on semaphores.
    func submit(_ submissions: [VK.Submission], to queue: VkQueue) throws {
        let lock = queue == computeQueue ? computeQueueLock : transferQueueLock
        try lock.locked { try VK.submit(submissions, to: queue) }
    }

    /// Waits until each queue has processed everything submitted to it before this call: an empty batch signalling
    /// the queue's own drain timeline, then a host wait outside the lock (so other sessions keep submitting). A
    /// session calls it before it destroys objects its submissions used. Waiting for the session's own timeline
    /// values is not enough on lavapipe: its queue thread still touches a submission after signalling its semaphores
    /// (destroying them then crashed the tests). Best effort: on failure the caller has no better option than to go on.
    func drain(timeout: UInt64) {
        for (queue, lock, timeline) in drainTargets {
            let value: UInt64? = lock.locked {
                let next = timeline.submitted + 1
                guard (try? VK.submit([VK.Submission(signals: [(timeline.semaphore, next)])], to: queue)) != nil else {
                    return nil
                }
                timeline.submitted = next
                return next
            }
            if let value { _ = try? timeline.semaphore.wait(for: value, timeout: timeout) }
        }
    }

    /// Whether taking a session's memory back must `drain` the queues, beyond the session's own waits for its
    /// timeline values: lavapipe's queue thread touches a submission after signalling (see `drain`). On other drivers
    /// a signalled value means its batch has completed (a semaphore signal operation follows every command of its
    /// batch), and draining would make a prefetch wait for all the work another session has in flight.
    var drainsBeforeReuse: Bool { info.type == .cpu }

    private var drainTargets: [(VkQueue, ConditionLock, DrainTimeline)] {
        transferQueue == computeQueue ? [(computeQueue, computeQueueLock, computeDrain)]
            : [(computeQueue, computeQueueLock, computeDrain), (transferQueue, transferQueueLock, transferDrain)]
    }
}

/// A queue's drain timeline (`Device.drain`): its semaphore and the last value submitted (under the queue's lock).
final class DrainTimeline {
    let semaphore: VK.TimelineSemaphore
    var submitted: UInt64 = 0

    init(device: VK.Device) throws {
        semaphore = try VK.TimelineSemaphore(device: device)
    }
}

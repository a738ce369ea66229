import CVulkan

extension Device {
    /// vkQueueSubmit on `queue` (the compute or the transfer queue) while holding that queue's lock, so
    /// sessions may submit from several threads. Never wait for the GPU inside: waits are on semaphores.
    func submit(_ submissions: [VK.Submission], to queue: VkQueue) throws {
        let lock = queue == computeQueue ? computeQueueLock : transferQueueLock
        try lock.locked { try VK.submit(submissions, to: queue) }
    }
}

import CVulkan

extension VK {
    /// One VkSubmitInfo: command buffers plus timeline-semaphore waits and signals.
    struct Submission {
        var commandBuffers: [VkCommandBuffer] = []
        var waits: [(semaphore: TimelineSemaphore, value: UInt64, stages: VkPipelineStageFlags)] = []
        var signals: [(semaphore: TimelineSemaphore, value: UInt64)] = []
    }

    /// vkQueueSubmit of several batches at once (one call, fewer driver round trips). The C arrays the
    /// VkSubmitInfos point to are allocated here and freed after the call, which is all Vulkan requires.
    static func submit(_ submissions: [Submission], to queue: VkQueue, fence: VkFence? = nil) throws {
        guard !submissions.isEmpty else { return }
        var semaphores: [[VkSemaphore?]] = []
        var values: [[UInt64]] = []
        var stages: [[VkPipelineStageFlags]] = []
        var buffers: [[VkCommandBuffer?]] = []
        var signalSemaphores: [[VkSemaphore?]] = []
        var signalValues: [[UInt64]] = []
        for s in submissions {
            semaphores.append(s.waits.map { $0.semaphore.handle })
            values.append(s.waits.map(\.value))
            stages.append(s.waits.map(\.stages))
            buffers.append(s.commandBuffers)
            signalSemaphores.append(s.signals.map { $0.semaphore.handle })
            signalValues.append(s.signals.map(\.value))
        }
        // Flat, stable storage for everything the infos point to.
        let count = submissions.count
        let timeline = UnsafeMutableBufferPointer<VkTimelineSemaphoreSubmitInfo>.allocate(capacity: count)
        let infos = UnsafeMutableBufferPointer<VkSubmitInfo>.allocate(capacity: count)
        var owned: [UnsafeMutableRawPointer] = []
        defer {
            timeline.deallocate()
            infos.deallocate()
            owned.forEach { $0.deallocate() }
        }
        func copy<T>(_ array: [T]) -> UnsafePointer<T>? {
            guard !array.isEmpty else { return nil }
            let pointer = UnsafeMutablePointer<T>.allocate(capacity: array.count)
            pointer.initialize(from: array, count: array.count)
            owned.append(UnsafeMutableRawPointer(pointer))
            return UnsafePointer(pointer)
        }
        for i in 0..<count {
            var t = VkTimelineSemaphoreSubmitInfo()
            t.sType = VK_STRUCTURE_TYPE_TIMELINE_SEMAPHORE_SUBMIT_INFO
            t.waitSemaphoreValueCount = UInt32(values[i].count)
            t.pWaitSemaphoreValues = copy(values[i])
            t.signalSemaphoreValueCount = UInt32(signalValues[i].count)
            t.pSignalSemaphoreValues = copy(signalValues[i])
            timeline[i] = t
            var info = VkSubmitInfo()
            info.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO
            info.pNext = UnsafeRawPointer(timeline.baseAddress! + i)
            info.waitSemaphoreCount = UInt32(semaphores[i].count)
            info.pWaitSemaphores = copy(semaphores[i])
            info.pWaitDstStageMask = copy(stages[i])
            info.commandBufferCount = UInt32(buffers[i].count)
            info.pCommandBuffers = copy(buffers[i])
            info.signalSemaphoreCount = UInt32(signalSemaphores[i].count)
            info.pSignalSemaphores = copy(signalSemaphores[i])
            infos[i] = info
        }
        try check(vkQueueSubmit(queue, UInt32(count), infos.baseAddress, fence), "vkQueueSubmit")
        withExtendedLifetime(submissions) {}
    }
}

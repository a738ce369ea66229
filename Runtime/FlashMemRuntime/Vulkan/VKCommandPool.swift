import CVulkan

extension VK {
    /// A `VkCommandPool` (vkCreateCommandPool / vkDestroyCommandPool) for one queue family. Command
    /// buffers allocated from it are plain handles freed with the pool. Not thread-safe (Vulkan's rule).
    final class CommandPool {
        let handle: VkCommandPool
        let device: Device
        let family: UInt32

        init(device: Device, family: UInt32) throws {
            self.device = device
            self.family = family
            var info = VkCommandPoolCreateInfo()
            info.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO
            info.queueFamilyIndex = family
            var raw: VkCommandPool?
            try check(vkCreateCommandPool(device.handle, &info, nil, &raw), "vkCreateCommandPool")
            handle = raw!
        }

        deinit { vkDestroyCommandPool(device.handle, handle, nil) }

        /// vkAllocateCommandBuffers: `count` primary command buffers.
        func allocate(_ count: Int) throws -> [VkCommandBuffer] {
            guard count > 0 else { return [] }
            var info = VkCommandBufferAllocateInfo()
            info.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO
            info.commandPool = handle
            info.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY
            info.commandBufferCount = UInt32(count)
            var buffers = [VkCommandBuffer?](repeating: nil, count: count)
            try check(vkAllocateCommandBuffers(device.handle, &info, &buffers), "vkAllocateCommandBuffers")
            return buffers.map { $0! }
        }

        /// vkResetCommandPool: every buffer of the pool back to the initial state, ready to be recorded again.
        /// None of them may be pending on a queue.
        func reset() throws {
            try check(vkResetCommandPool(device.handle, handle, 0), "vkResetCommandPool")
        }

        /// Records `body` into `buffer` (vkBeginCommandBuffer … vkEndCommandBuffer). Buffers are recorded
        /// once and submitted many times, so no ONE_TIME_SUBMIT flag.
        func record(_ buffer: VkCommandBuffer, _ body: (VkCommandBuffer) throws -> Void) throws {
            var begin = VkCommandBufferBeginInfo()
            begin.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO
            try check(vkBeginCommandBuffer(buffer, &begin), "vkBeginCommandBuffer")
            try body(buffer)
            try check(vkEndCommandBuffer(buffer), "vkEndCommandBuffer")
        }
    }
}

import CVulkan

extension VK {
    /// A `VkBuffer` (vkCreateBuffer / vkDestroyBuffer), exclusive to one queue family unless
    /// `families` names several. Binding memory is the owner's job; the buffer keeps the bound
    /// `DeviceMemory` alive once `bind` is called.
    final class Buffer {
        let handle: VkBuffer
        let device: Device
        let size: UInt64
        private(set) var memory: DeviceMemory?

        init(device: Device, size: UInt64, usage: VkBufferUsageFlags, families: [UInt32] = [],
             label: String) throws {
            self.device = device
            self.size = size
            var raw: VkBuffer?
            let result = withSharing(families) { mode, familyCount, familyList -> VkResult in
                var info = VkBufferCreateInfo()
                info.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO
                info.size = size
                info.usage = usage
                info.sharingMode = mode
                info.queueFamilyIndexCount = familyCount
                info.pQueueFamilyIndices = familyList
                return vkCreateBuffer(device.handle, &info, nil, &raw)
            }
            try check(result, "vkCreateBuffer", "\(label), \(size) bytes")
            handle = raw!
        }

        deinit { vkDestroyBuffer(device.handle, handle, nil) }

        /// vkGetBufferMemoryRequirements.
        var requirements: VkMemoryRequirements {
            var requirements = VkMemoryRequirements()
            vkGetBufferMemoryRequirements(device.handle, handle, &requirements)
            return requirements
        }

        /// vkBindBufferMemory.
        func bind(_ memory: DeviceMemory, offset: UInt64 = 0) throws {
            try check(vkBindBufferMemory(device.handle, handle, memory.handle, offset), "vkBindBufferMemory")
            self.memory = memory
        }
    }
}

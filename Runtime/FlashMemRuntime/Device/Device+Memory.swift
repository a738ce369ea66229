import CVulkan

extension Device {
    /// The first memory type allowed by `typeBits` having all of `required` and, where one exists, all of
    /// `preferred` too. Nil when none has `required`.
    func memoryType(typeBits: UInt32, required: VkMemoryPropertyFlags, preferred: VkMemoryPropertyFlags = 0) -> UInt32? {
        let memory = physical.memory
        let types = array(fromCTuple: memory.memoryTypes, of: VkMemoryType.self, count: Int(memory.memoryTypeCount))
        func find(_ flags: VkMemoryPropertyFlags) -> UInt32? {
            types.indices.first { typeBits & (1 << UInt32($0)) != 0 && types[$0].propertyFlags & flags == flags }
                .map(UInt32.init)
        }
        return find(required | preferred) ?? find(required)
    }

    /// Allocates `size` bytes of a type in `typeBits` with `required` properties, or says clearly why not.
    func allocate(size: UInt64, typeBits: UInt32, required: VkMemoryPropertyFlags,
                  preferred: VkMemoryPropertyFlags = 0, label: String) throws -> VK.DeviceMemory {
        guard size <= physical.maxMemoryAllocationSize else {
            throw RuntimeError.memory(what: label, reason: "\(size) bytes exceed maxMemoryAllocationSize "
                                      + "\(physical.maxMemoryAllocationSize) of \(info.name)")
        }
        guard let type = memoryType(typeBits: typeBits, required: required, preferred: preferred) else {
            throw RuntimeError.memory(what: label, reason: "no memory type with properties 0x\(String(required, radix: 16)) "
                                      + "in type bits 0x\(String(typeBits, radix: 16)) on \(info.name)")
        }
        let heap = heapSize(ofType: type)
        guard size <= heap else {
            throw RuntimeError.memory(what: label, reason: "\(size) bytes exceed the \(heap)-byte memory heap of "
                                      + "\(info.name) they would come from")
        }
        return try VK.DeviceMemory(device: vk, size: max(size, 1), typeIndex: type, label: label)
    }

    /// The size of the heap memory type `type` allocates from.
    func heapSize(ofType type: UInt32) -> UInt64 {
        let memory = physical.memory
        let types = array(fromCTuple: memory.memoryTypes, of: VkMemoryType.self, count: Int(memory.memoryTypeCount))
        let heaps = array(fromCTuple: memory.memoryHeaps, of: VkMemoryHeap.self, count: Int(memory.memoryHeapCount))
        return heaps[Int(types[Int(type)].heapIndex)].size
    }

    /// Whether `format` with optimal tiling supports storage-image use and transfer destination.
    func supportsWeightFormat(_ format: VkFormat) -> Bool {
        var properties = VkFormatProperties()
        vkGetPhysicalDeviceFormatProperties(physical.handle, format, &properties)
        let needed = VK_FORMAT_FEATURE_STORAGE_IMAGE_BIT.rawValue | VK_FORMAT_FEATURE_TRANSFER_DST_BIT.rawValue
        return properties.optimalTilingFeatures & needed == needed
    }
}

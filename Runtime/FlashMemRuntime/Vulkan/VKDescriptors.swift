import CVulkan

extension VK {
    /// A `VkDescriptorSetLayout` (vkCreateDescriptorSetLayout / vkDestroyDescriptorSetLayout) whose
    /// binding i has `types[i]`, one descriptor each, visible to the compute stage.
    final class DescriptorSetLayout {
        let handle: VkDescriptorSetLayout
        let device: Device

        init(device: Device, types: [VkDescriptorType]) throws {
            self.device = device
            let bindings = types.enumerated().map { index, type in
                VkDescriptorSetLayoutBinding(binding: UInt32(index), descriptorType: type, descriptorCount: 1,
                                             stageFlags: VK_SHADER_STAGE_COMPUTE_BIT.rawValue,
                                             pImmutableSamplers: nil)
            }
            var raw: VkDescriptorSetLayout?
            let result = bindings.withUnsafeBufferPointer { pointer -> VkResult in
                var info = VkDescriptorSetLayoutCreateInfo()
                info.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO
                info.bindingCount = UInt32(pointer.count)
                info.pBindings = pointer.baseAddress
                return vkCreateDescriptorSetLayout(device.handle, &info, nil, &raw)
            }
            try check(result, "vkCreateDescriptorSetLayout")
            handle = raw!
        }

        deinit { vkDestroyDescriptorSetLayout(device.handle, handle, nil) }
    }

    /// A `VkDescriptorPool` (vkCreateDescriptorPool / vkDestroyDescriptorPool). Sets allocated from it
    /// are freed with it; they stay valid while the pool lives.
    final class DescriptorPool {
        let handle: VkDescriptorPool
        let device: Device

        /// - sizes: descriptors of each type over all sets; maxSets: the number of sets.
        init(device: Device, maxSets: UInt32, sizes: [VkDescriptorType: UInt32]) throws {
            self.device = device
            let poolSizes = sizes.filter { $0.value > 0 }
                .sorted { $0.key.rawValue < $1.key.rawValue }
                .map { VkDescriptorPoolSize(type: $0.key, descriptorCount: $0.value) }
            var raw: VkDescriptorPool?
            let result = poolSizes.withUnsafeBufferPointer { pointer -> VkResult in
                var info = VkDescriptorPoolCreateInfo()
                info.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO
                info.maxSets = max(maxSets, 1)
                info.poolSizeCount = UInt32(pointer.count)
                info.pPoolSizes = pointer.baseAddress
                return vkCreateDescriptorPool(device.handle, &info, nil, &raw)
            }
            try check(result, "vkCreateDescriptorPool")
            handle = raw!
        }

        deinit { vkDestroyDescriptorPool(device.handle, handle, nil) }

        /// vkAllocateDescriptorSets: one set of `layout`.
        func allocate(_ layout: DescriptorSetLayout) throws -> VkDescriptorSet {
            var layoutHandle: VkDescriptorSetLayout? = layout.handle
            var set: VkDescriptorSet?
            let result = withUnsafePointer(to: &layoutHandle) { layoutPointer -> VkResult in
                var info = VkDescriptorSetAllocateInfo()
                info.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO
                info.descriptorPool = handle
                info.descriptorSetCount = 1
                info.pSetLayouts = layoutPointer
                return vkAllocateDescriptorSets(device.handle, &info, &set)
            }
            try check(result, "vkAllocateDescriptorSets")
            return set!
        }
    }
}

extension VkDescriptorType: @retroactive Hashable {}

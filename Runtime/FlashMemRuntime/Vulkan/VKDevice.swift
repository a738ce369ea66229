import CVulkan

extension VK {
    /// The features enabled on a logical device: core, Vulkan 1.1 and Vulkan 1.2 blocks
    /// (chained as VkPhysicalDeviceFeatures2 → Vulkan11Features → Vulkan12Features).
    struct FeatureSet {
        var core = VkPhysicalDeviceFeatures()
        var v11 = VkPhysicalDeviceVulkan11Features()
        var v12 = VkPhysicalDeviceVulkan12Features()
        /// VK_EXT_conditional_rendering's features, chained after the 1.2 block when set (only on a device
        /// created with that extension).
        var conditionalRendering: VkPhysicalDeviceConditionalRenderingFeaturesEXT?
        /// VK_NV_cooperative_matrix's features, chained after those when set (only on a device created with that
        /// extension).
        var cooperativeMatrix: VkPhysicalDeviceCooperativeMatrixFeaturesNV?

        /// What `physical` supports (vkGetPhysicalDeviceFeatures2).
        static func supported(by physical: VkPhysicalDevice) -> FeatureSet {
            var set = FeatureSet()
            set.v11.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES
            set.v12.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES
            var features2 = VkPhysicalDeviceFeatures2()
            features2.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2
            withUnsafeMutablePointer(to: &set.v12) { v12 in
                set.v11.pNext = UnsafeMutableRawPointer(v12)
                withUnsafeMutablePointer(to: &set.v11) { v11 in
                    features2.pNext = UnsafeMutableRawPointer(v11)
                    vkGetPhysicalDeviceFeatures2(physical, &features2)
                }
            }
            set.v11.pNext = nil
            set.core = features2.features
            return set
        }
    }

    /// A logical `VkDevice` (vkCreateDevice / vkDestroyDevice). Keeps its instance alive.
    /// Queues retrieved from it are plain handles; submitting to one queue from several threads needs
    /// external synchronization (the runtime submits from one thread).
    final class Device {
        let handle: VkDevice
        let physical: VkPhysicalDevice
        let instance: Instance

        /// - queues: (family index, number of queues) for every family used.
        init(instance: Instance, physical: VkPhysicalDevice, queues: [(family: UInt32, count: UInt32)],
             extensions: [String], features: FeatureSet) throws {
            self.instance = instance
            self.physical = physical
            let priorities = [Float](repeating: 1, count: Int(queues.map(\.count).max() ?? 1))
            let extensionNames = CStringArray(extensions)
            var features = features
            var raw: VkDevice?
            let result = priorities.withUnsafeBufferPointer { priorityPointer -> VkResult in
                let queueInfos = queues.map { queue -> VkDeviceQueueCreateInfo in
                    var info = VkDeviceQueueCreateInfo()
                    info.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO
                    info.queueFamilyIndex = queue.family
                    info.queueCount = queue.count
                    info.pQueuePriorities = priorityPointer.baseAddress
                    return info
                }
                features.v11.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES
                features.v12.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES
                var features2 = VkPhysicalDeviceFeatures2()
                features2.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2
                features2.features = features.core
                // Optional extension features: v12 → conditional rendering → cooperative matrix, each only when set.
                var conditional = features.conditionalRendering ?? VkPhysicalDeviceConditionalRenderingFeaturesEXT()
                conditional.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_CONDITIONAL_RENDERING_FEATURES_EXT
                conditional.pNext = nil
                var cooperative = features.cooperativeMatrix ?? VkPhysicalDeviceCooperativeMatrixFeaturesNV()
                cooperative.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV
                cooperative.pNext = nil
                return withUnsafeMutablePointer(to: &cooperative) { cooperativePointer in
                withUnsafeMutablePointer(to: &conditional) { conditionalPointer in
                    var tail: UnsafeMutableRawPointer? = nil
                    if features.cooperativeMatrix != nil { tail = UnsafeMutableRawPointer(cooperativePointer) }
                    if features.conditionalRendering != nil {
                        conditionalPointer.pointee.pNext = tail
                        tail = UnsafeMutableRawPointer(conditionalPointer)
                    }
                    features.v12.pNext = tail
                    return withUnsafeMutablePointer(to: &features.v12) { v12 in
                        features.v11.pNext = UnsafeMutableRawPointer(v12)
                        return withUnsafeMutablePointer(to: &features.v11) { v11 in
                            features2.pNext = UnsafeMutableRawPointer(v11)
                            return withUnsafeMutablePointer(to: &features2) { f2 in
                                queueInfos.withUnsafeBufferPointer { queuePointer in
                                    extensionNames.pointers.withUnsafeBufferPointer { extPointer in
                                        var info = VkDeviceCreateInfo()
                                        info.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO
                                        info.pNext = UnsafeRawPointer(f2)
                                        info.queueCreateInfoCount = UInt32(queuePointer.count)
                                        info.pQueueCreateInfos = queuePointer.baseAddress
                                        info.enabledExtensionCount = UInt32(extPointer.count)
                                        info.ppEnabledExtensionNames = extPointer.baseAddress
                                        return vkCreateDevice(physical, &info, nil, &raw)
                                    }
                                }
                            }
                        }
                    }
                }
                }
            }
            try check(result, "vkCreateDevice")
            guard let raw else { throw VulkanError(call: "vkCreateDevice", result: VK_ERROR_UNKNOWN.rawValue) }
            handle = raw
            withExtendedLifetime(extensionNames) {}
        }

        deinit {
            vkDeviceWaitIdle(handle)
            vkDestroyDevice(handle, nil)
        }

        /// vkGetDeviceQueue.
        func queue(family: UInt32, index: UInt32) -> VkQueue? {
            var queue: VkQueue?
            vkGetDeviceQueue(handle, family, index, &queue)
            return queue
        }

        /// vkDeviceWaitIdle; used before tearing a session down.
        func waitIdle() throws { try check(vkDeviceWaitIdle(handle), "vkDeviceWaitIdle") }
    }
}

import CVulkan

extension VK {
    /// VK_NV_cooperative_matrix, what bundles with `DeviceFeatures.cooperativeMatrixNV` (tensor-core kernels,
    /// gemm_cm.comp) need: the extension, its `cooperativeMatrix` feature, an fp16 × fp16 → fp32 16 × 16 × 16
    /// configuration at subgroup scope, subgroups of 32, and `vulkanMemoryModel` + `shaderFloat16` (the SPIR-V
    /// glslang emits for GL_NV_cooperative_matrix declares the Vulkan memory model and Float16). Owns nothing.
    enum CooperativeMatrix {
        static let extensionName = "VK_NV_cooperative_matrix"
        /// The fragment shape gemm_cm.comp multiplies (M × N × K).
        static let shape: (m: UInt32, n: UInt32, k: UInt32) = (16, 16, 16)
        static let subgroupSize: UInt32 = 32

        /// Why the tensor-core kernels cannot run on `physical` (nil when they can), naming the first missing
        /// piece, e.g. "the device does not offer VK_NV_cooperative_matrix".
        static func unavailableReason(instance: VkInstance, physical: VkPhysicalDevice, extensions: Set<String>,
                                      features: FeatureSet) -> String? {
            guard extensions.contains(extensionName) else {
                return "the device does not offer \(extensionName)"
            }
            guard feature(physical) else {
                return "\(extensionName) is offered without its cooperativeMatrix feature"
            }
            if features.v12.vulkanMemoryModel == 0 { return "the device has no vulkanMemoryModel (Vulkan 1.2)" }
            if features.v12.shaderFloat16 == 0 { return "the device has no shaderFloat16 (Vulkan 1.2)" }
            let size = subgroupSize(physical)
            guard size == subgroupSize else {
                return "the device's subgroups have \(size) invocations, the tensor-core kernels need \(subgroupSize)"
            }
            guard let configurations = properties(instance: instance, physical: physical) else {
                return "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV is not available"
            }
            let found = configurations.contains {
                $0.MSize == shape.m && $0.NSize == shape.n && $0.KSize == shape.k
                    && $0.AType == VK_COMPONENT_TYPE_FLOAT16_NV && $0.BType == VK_COMPONENT_TYPE_FLOAT16_NV
                    && $0.CType == VK_COMPONENT_TYPE_FLOAT32_NV && $0.DType == VK_COMPONENT_TYPE_FLOAT32_NV
                    && $0.scope == VK_SCOPE_SUBGROUP_NV
            }
            return found ? nil : "\(extensionName) lists no fp16 × fp16 → fp32 16 × 16 × 16 subgroup configuration "
                + "(\(configurations.count) others)"
        }

        /// The `cooperativeMatrix` feature (vkGetPhysicalDeviceFeatures2).
        private static func feature(_ physical: VkPhysicalDevice) -> Bool {
            var cooperative = VkPhysicalDeviceCooperativeMatrixFeaturesNV()
            cooperative.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV
            var features2 = VkPhysicalDeviceFeatures2()
            features2.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2
            withUnsafeMutablePointer(to: &cooperative) { pointer in
                features2.pNext = UnsafeMutableRawPointer(pointer)
                vkGetPhysicalDeviceFeatures2(physical, &features2)
            }
            return cooperative.cooperativeMatrix != 0
        }

        /// VkPhysicalDeviceSubgroupProperties.subgroupSize (Vulkan 1.1).
        private static func subgroupSize(_ physical: VkPhysicalDevice) -> UInt32 {
            var subgroup = VkPhysicalDeviceSubgroupProperties()
            subgroup.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES
            var properties2 = VkPhysicalDeviceProperties2()
            properties2.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2
            withUnsafeMutablePointer(to: &subgroup) { pointer in
                properties2.pNext = UnsafeMutableRawPointer(pointer)
                vkGetPhysicalDeviceProperties2(physical, &properties2)
            }
            return subgroup.subgroupSize
        }

        /// vkGetPhysicalDeviceCooperativeMatrixPropertiesNV (an instance-level extension command, loaded with
        /// vkGetInstanceProcAddr); nil when the loader has no pointer for it.
        private static func properties(instance: VkInstance, physical: VkPhysicalDevice)
            -> [VkCooperativeMatrixPropertiesNV]? {
            guard let pointer = vkGetInstanceProcAddr(instance, "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV")
            else { return nil }
            let query = unsafeBitCast(pointer, to: PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV.self)
            var count: UInt32 = 0
            guard query(physical, &count, nil) == VK_SUCCESS else { return nil }
            var list = [VkCooperativeMatrixPropertiesNV](repeating: VkCooperativeMatrixPropertiesNV(), count: Int(count))
            for i in list.indices {
                list[i].sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV
            }
            guard query(physical, &count, &list) == VK_SUCCESS else { return nil }
            return Array(list.prefix(Int(count)))
        }
    }
}

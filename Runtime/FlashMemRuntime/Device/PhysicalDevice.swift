import CVulkan

/// What the runtime needs to know about a `VkPhysicalDevice` before creating anything on it:
/// properties, limits, features, queue families and extensions. Plain values; no ownership.
struct PhysicalDevice {
    let handle: VkPhysicalDevice
    let index: Int
    let properties: VkPhysicalDeviceProperties
    /// From VkPhysicalDeviceMaintenance3Properties (core 1.1).
    let maxMemoryAllocationSize: UInt64
    let features: VK.FeatureSet
    let memory: VkPhysicalDeviceMemoryProperties
    let queueFamilies: [VkQueueFamilyProperties]
    let extensions: Set<String>
    /// VK_EXT_conditional_rendering is offered with its `conditionalRendering` feature (predicated steps).
    let supportsConditionalRendering: Bool
    /// Why the tensor-core kernels (VK_NV_cooperative_matrix) cannot run here; nil when they can.
    let cooperativeMatrixUnavailableReason: String?
    var supportsCooperativeMatrix: Bool { cooperativeMatrixUnavailableReason == nil }

    init(instance: VkInstance, handle: VkPhysicalDevice, index: Int) {
        self.handle = handle
        self.index = index
        var maintenance3 = VkPhysicalDeviceMaintenance3Properties()
        maintenance3.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES
        var properties2 = VkPhysicalDeviceProperties2()
        properties2.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2
        withUnsafeMutablePointer(to: &maintenance3) { pointer in
            properties2.pNext = UnsafeMutableRawPointer(pointer)
            vkGetPhysicalDeviceProperties2(handle, &properties2)
        }
        properties = properties2.properties
        maxMemoryAllocationSize = maintenance3.maxMemoryAllocationSize
        features = properties.apiVersion >= fm_vk_make_api_version(0, 1, 2, 0)
            ? VK.FeatureSet.supported(by: handle) : VK.FeatureSet()
        var memory = VkPhysicalDeviceMemoryProperties()
        vkGetPhysicalDeviceMemoryProperties(handle, &memory)
        self.memory = memory

        var familyCount: UInt32 = 0
        vkGetPhysicalDeviceQueueFamilyProperties(handle, &familyCount, nil)
        var families = [VkQueueFamilyProperties](repeating: VkQueueFamilyProperties(), count: Int(familyCount))
        vkGetPhysicalDeviceQueueFamilyProperties(handle, &familyCount, &families)
        queueFamilies = Array(families.prefix(Int(familyCount)))

        var extensionCount: UInt32 = 0
        vkEnumerateDeviceExtensionProperties(handle, nil, &extensionCount, nil)
        var extensionList = [VkExtensionProperties](repeating: VkExtensionProperties(), count: Int(extensionCount))
        vkEnumerateDeviceExtensionProperties(handle, nil, &extensionCount, &extensionList)
        extensions = Set(extensionList.prefix(Int(extensionCount)).map { string(fromCTuple: $0.extensionName) })
        supportsConditionalRendering = extensions.contains(VK.ConditionalRendering.extensionName)
            && PhysicalDevice.conditionalRenderingFeature(handle)
        cooperativeMatrixUnavailableReason = VK.CooperativeMatrix.unavailableReason(
            instance: instance, physical: handle, extensions: extensions, features: features)
    }

    /// The `conditionalRendering` feature (vkGetPhysicalDeviceFeatures2); only asked of a device that offers
    /// the extension.
    private static func conditionalRenderingFeature(_ handle: VkPhysicalDevice) -> Bool {
        var conditional = VkPhysicalDeviceConditionalRenderingFeaturesEXT()
        conditional.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_CONDITIONAL_RENDERING_FEATURES_EXT
        var features2 = VkPhysicalDeviceFeatures2()
        features2.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2
        withUnsafeMutablePointer(to: &conditional) { pointer in
            features2.pNext = UnsafeMutableRawPointer(pointer)
            vkGetPhysicalDeviceFeatures2(handle, &features2)
        }
        return conditional.conditionalRendering != 0
    }

    var name: String { string(fromCTuple: properties.deviceName) }
    var type: DeviceType { DeviceType(properties.deviceType) }
    var limits: VkPhysicalDeviceLimits { properties.limits }

    private func flags(_ family: Int) -> UInt32 { queueFamilies[family].queueFlags }

    /// The first family with COMPUTE.
    var computeFamily: UInt32? {
        queueFamilies.indices.first { flags($0) & VK_QUEUE_COMPUTE_BIT.rawValue != 0 && queueFamilies[$0].queueCount > 0 }
            .map(UInt32.init)
    }

    /// A family with TRANSFER but neither GRAPHICS nor COMPUTE: a copy engine that runs beside compute.
    /// Only one that can copy single texel rows (minImageTransferGranularity 1×1×1; chunks are row bands).
    var dedicatedTransferFamily: UInt32? {
        queueFamilies.indices.first {
            let f = flags($0)
            let g = queueFamilies[$0].minImageTransferGranularity
            return f & VK_QUEUE_TRANSFER_BIT.rawValue != 0 && f & VK_QUEUE_GRAPHICS_BIT.rawValue == 0
                && f & VK_QUEUE_COMPUTE_BIT.rawValue == 0 && queueFamilies[$0].queueCount > 0
                && g.width == 1 && g.height == 1 && g.depth == 1
        }.map(UInt32.init)
    }

    /// Nil when the runtime can use the device, else why not.
    var unusableReason: String? {
        if properties.apiVersion < fm_vk_make_api_version(0, 1, 2, 0) {
            return "Vulkan \(formatVulkanVersion(properties.apiVersion)) < 1.2"
        }
        if computeFamily == nil { return "no compute queue" }
        if features.v12.timelineSemaphore == 0 { return "no timeline semaphores" }
        return nil
    }

    var info: DeviceInfo {
        var heaps: [UInt64] = []
        for heap in array(fromCTuple: memory.memoryHeaps, of: VkMemoryHeap.self, count: Int(memory.memoryHeapCount))
        where heap.flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT.rawValue != 0 {
            heaps.append(heap.size)
        }
        return DeviceInfo(index: index, name: name, type: type, apiVersion: formatVulkanVersion(properties.apiVersion),
                          vendorID: properties.vendorID, deviceID: properties.deviceID,
                          usable: unusableReason == nil, unusableReason: unusableReason,
                          hasDedicatedTransferQueue: dedicatedTransferFamily != nil, deviceLocalHeapBytes: heaps)
    }

    /// Automatic choice: usable devices only, discrete first, then integrated, virtual, CPU; ties by index.
    static func preferred(_ devices: [PhysicalDevice]) -> PhysicalDevice? {
        devices.filter { $0.unusableReason == nil }
            .min { ($0.type.preference, $0.index) < ($1.type.preference, $1.index) }
    }
}

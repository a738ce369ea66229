import CVulkan

/// How the transfer queue relates to the compute queue on the chosen device.
public enum TransferQueueKind: String, Sendable {
    /// A family with TRANSFER but neither GRAPHICS nor COMPUTE: copies overlap compute.
    case dedicatedFamily = "dedicated transfer family"
    /// A second queue of the compute family.
    case secondComputeQueue = "second queue of the compute family"
    /// The compute queue itself (e.g. lavapipe): copies and kernels run in submission order.
    case sharedWithCompute = "shared with compute"
}

/// One memory heap as VK_EXT_memory_budget reports it.
public struct HeapBudget: Sendable, Equatable {
    public var heap: Int
    public var size: UInt64
    public var deviceLocal: Bool
    /// What this process may use without trouble, per the driver.
    public var budget: UInt64
    /// What this process uses now.
    public var usage: UInt64
}

/// How to make a `Device`: which physical device, and which optional features to enable.
public struct DeviceOptions: Sendable {
    /// Index in `Device.list()` order; nil picks discrete, then integrated, virtual, CPU.
    public var deviceIndex: Int?
    /// The application name the Vulkan instance reports to drivers.
    public var applicationName: String
    /// Enable VK_EXT_conditional_rendering where the device offers it, for bundles with predicated steps (If
    /// decided at run time). A device is made before any bundle is known, so it is enabled up front; sessions
    /// of such bundles fail on a device without it. False only to test that path.
    public var conditionalRendering: Bool
    /// Enable VK_NV_cooperative_matrix (with vulkanMemoryModel) where the device can run the tensor-core kernels,
    /// for bundles that need `DeviceFeatures.cooperativeMatrixNV`; enabled up front for the same reason. False
    /// only to test that path.
    public var cooperativeMatrix: Bool

    public init(deviceIndex: Int? = nil, applicationName: String = "FlashMem", conditionalRendering: Bool = true,
                cooperativeMatrix: Bool = true) {
        self.deviceIndex = deviceIndex
        self.applicationName = applicationName
        self.conditionalRendering = conditionalRendering
        self.cooperativeMatrix = cooperativeMatrix
    }
}

/// The Vulkan context sessions run on: instance, the chosen physical device, a logical device with a
/// compute queue and a transfer queue. Several sessions may share one `Device`, from several threads: every
/// vkQueueSubmit goes through `submit(_:to:)`, which holds the lock of that queue (one lock when the transfer
/// queue is the compute queue); host waits are on each session's own timeline semaphores and need no lock.
/// Sessions keep their device alive; `DeviceContext` adds one memory budget for several sessions.
public final class Device: @unchecked Sendable {
    /// The chosen physical device: name, type, Vulkan version, limits.
    public let info: DeviceInfo
    /// Whether weight copies have a queue of their own (and so overlap the kernels).
    public let transferQueueKind: TransferQueueKind
    /// VK_EXT_memory_budget was found and enabled.
    public let hasMemoryBudget: Bool
    /// VK_EXT_conditional_rendering's commands, when it was found and enabled: bundles with predicated steps
    /// need it.
    let conditionalRendering: VK.ConditionalRendering?
    public var hasConditionalRendering: Bool { conditionalRendering != nil }
    /// VK_NV_cooperative_matrix was found usable and enabled: bundles with tensor-core kernels need it.
    public let hasCooperativeMatrix: Bool
    /// VK_KHR/EXT_calibrated_timestamps, when found and enabled: traces put GPU timestamps on the host clock.
    let calibratedTimestamps: VK.CalibratedTimestamps?
    public var hasCalibratedTimestamps: Bool { calibratedTimestamps != nil }
    /// hostQueryReset (Vulkan 1.2) is enabled: query pools can be reset from the host (transfer queues cannot
    /// record vkCmdResetQueryPool).
    var hasHostQueryReset: Bool { physical.features.v12.hostQueryReset != 0 }
    /// How long making this device took, by phase: the Vulkan instance (loader and drivers), choosing the
    /// physical device, and the logical device with its queues; in seconds.
    public let creationPhases: [(phase: String, seconds: Double)]

    let instance: VK.Instance
    let vk: VK.Device
    let physical: PhysicalDevice
    let computeFamily: UInt32
    let transferFamily: UInt32
    let computeQueue: VkQueue
    let transferQueue: VkQueue
    /// Vulkan requires external synchronization of a queue (vkQueueSubmit): one lock per queue, the same
    /// object for both when the transfer queue is the compute queue.
    let computeQueueLock: ConditionLock
    let transferQueueLock: ConditionLock
    /// Per queue, the timeline `drain` signals.
    let computeDrain: DrainTimeline
    let transferDrain: DrainTimeline

    var limits: VkPhysicalDeviceLimits { physical.limits }
    /// Queue families that touch shared resources (one or two distinct values).
    var families: [UInt32] { computeFamily == transferFamily ? [computeFamily] : [computeFamily, transferFamily] }

    /// Every Vulkan device, in vkEnumeratePhysicalDevices order (the order `--device N` indexes).
    public static func list() throws -> [DeviceInfo] {
        let instance = try VK.Instance(applicationName: "FlashMem")
        return try instance.physicalDevices().enumerated().map { PhysicalDevice(instance: instance.handle, handle: $1, index: $0).info }
    }

    /// Makes the Vulkan instance, chooses a physical device (`options.deviceIndex`, else discrete, then integrated,
    /// virtual, CPU) and makes a logical device with its queues. Throws `RuntimeError.noSuitableDevice` (with each
    /// device's reason) when no device has Vulkan 1.2, a compute queue and timeline semaphores.
    public init(options: DeviceOptions = DeviceOptions()) throws {
        var phaseStart = monotonicSeconds()
        var phases: [(phase: String, seconds: Double)] = []
        func endPhase(_ name: String) {
            let now = monotonicSeconds()
            phases.append((name, now - phaseStart))
            phaseStart = now
        }
        let vkInstance = try VK.Instance(applicationName: options.applicationName)
        instance = vkInstance
        endPhase("instance")
        let all = try vkInstance.physicalDevices().enumerated().map {
            PhysicalDevice(instance: vkInstance.handle, handle: $1, index: $0)
        }
        let chosen: PhysicalDevice
        if let index = options.deviceIndex {
            guard all.indices.contains(index) else {
                throw RuntimeError.deviceIndexOutOfRange(index: index, available: all.map(\.info.description))
            }
            chosen = all[index]
            if let reason = chosen.unusableReason {
                throw RuntimeError.noSuitableDevice(reasons: ["[\(index)] \(chosen.name): \(reason)"])
            }
        } else {
            guard let preferred = PhysicalDevice.preferred(all) else {
                throw RuntimeError.noSuitableDevice(reasons: all.map { "[\($0.index)] \($0.name): \($0.unusableReason ?? "")" })
            }
            chosen = preferred
        }
        physical = chosen
        info = chosen.info
        endPhase("physical device")

        let compute = chosen.computeFamily!
        let transfer: (family: UInt32, index: UInt32, kind: TransferQueueKind)
        if let dedicated = chosen.dedicatedTransferFamily {
            transfer = (dedicated, 0, .dedicatedFamily)
        } else if chosen.queueFamilies[Int(compute)].queueCount > 1 {
            transfer = (compute, 1, .secondComputeQueue)
        } else {
            transfer = (compute, 0, .sharedWithCompute)
        }
        computeFamily = compute
        transferFamily = transfer.family
        transferQueueKind = transfer.kind
        let queues: [(family: UInt32, count: UInt32)] = transfer.family == compute
            ? [(compute, transfer.index + 1)] : [(compute, UInt32(1)), (transfer.family, UInt32(1))]

        hasMemoryBudget = chosen.extensions.contains("VK_EXT_memory_budget")
        let conditional = options.conditionalRendering && chosen.supportsConditionalRendering
        var extensions = hasMemoryBudget ? ["VK_EXT_memory_budget"] : []
        var features = Device.enabledFeatures(supported: chosen.features)
        if conditional {
            extensions.append(VK.ConditionalRendering.extensionName)
            var feature = VkPhysicalDeviceConditionalRenderingFeaturesEXT()
            feature.conditionalRendering = 1
            features.conditionalRendering = feature
        }
        hasCooperativeMatrix = options.cooperativeMatrix && chosen.supportsCooperativeMatrix
        if hasCooperativeMatrix {
            extensions.append(VK.CooperativeMatrix.extensionName)
            var feature = VkPhysicalDeviceCooperativeMatrixFeaturesNV()
            feature.cooperativeMatrix = 1
            features.cooperativeMatrix = feature
            features.v12.vulkanMemoryModel = 1
        }
        // Calibration costs nothing until a trace asks for it.
        let calibration = VK.CalibratedTimestamps.extensions.first { chosen.extensions.contains($0.0) }
        if let calibration { extensions.append(calibration.0) }
        vk = try VK.Device(instance: instance, physical: chosen.handle, queues: queues, extensions: extensions,
                           features: features)
        conditionalRendering = conditional ? try VK.ConditionalRendering(device: vk) : nil
        let logical = vk
        calibratedTimestamps = calibration.flatMap { VK.CalibratedTimestamps(device: logical, suffix: $0.1) }
        computeQueue = vk.queue(family: compute, index: 0)!
        transferQueue = vk.queue(family: transfer.family, index: transfer.index)!
        computeQueueLock = ConditionLock()
        transferQueueLock = transferQueue == computeQueue ? computeQueueLock : ConditionLock()
        computeDrain = try DrainTimeline(device: vk)
        transferDrain = transferQueue == computeQueue ? computeDrain : try DrainTimeline(device: vk)
        endPhase("logical device")
        creationPhases = phases
    }

    /// Timeline semaphores (required) plus the optional features kernels may use, where supported:
    /// enabling a supported feature costs nothing, and a kernel using 16-bit or 8-bit storage needs it.
    private static func enabledFeatures(supported: VK.FeatureSet) -> VK.FeatureSet {
        var enabled = VK.FeatureSet()
        enabled.v12.timelineSemaphore = 1
        enabled.v12.shaderFloat16 = supported.v12.shaderFloat16
        enabled.v12.shaderInt8 = supported.v12.shaderInt8
        enabled.v12.storageBuffer8BitAccess = supported.v12.storageBuffer8BitAccess
        enabled.v12.hostQueryReset = supported.v12.hostQueryReset
        enabled.v11.storageBuffer16BitAccess = supported.v11.storageBuffer16BitAccess
        enabled.core.shaderInt16 = supported.core.shaderInt16
        enabled.core.shaderInt64 = supported.core.shaderInt64
        enabled.core.shaderStorageImageReadWithoutFormat = supported.core.shaderStorageImageReadWithoutFormat
        enabled.core.shaderStorageImageWriteWithoutFormat = supported.core.shaderStorageImageWriteWithoutFormat
        return enabled
    }

    /// Heap budgets and usage from VK_EXT_memory_budget; empty when the extension is absent.
    public func memoryBudget() -> [HeapBudget] {
        guard hasMemoryBudget else { return [] }
        var budget = VkPhysicalDeviceMemoryBudgetPropertiesEXT()
        budget.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT
        var properties = VkPhysicalDeviceMemoryProperties2()
        properties.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2
        withUnsafeMutablePointer(to: &budget) { pointer in
            properties.pNext = UnsafeMutableRawPointer(pointer)
            vkGetPhysicalDeviceMemoryProperties2(physical.handle, &properties)
        }
        let count = Int(properties.memoryProperties.memoryHeapCount)
        let heaps = array(fromCTuple: properties.memoryProperties.memoryHeaps, of: VkMemoryHeap.self, count: count)
        let budgets = array(fromCTuple: budget.heapBudget, of: UInt64.self, count: count)
        let usages = array(fromCTuple: budget.heapUsage, of: UInt64.self, count: count)
        return (0..<count).map {
            HeapBudget(heap: $0, size: heaps[$0].size,
                       deviceLocal: heaps[$0].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT.rawValue != 0,
                       budget: budgets[$0], usage: usages[$0])
        }
    }
}

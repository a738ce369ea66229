// Whether a device can run a bundle, decided before any Vulkan object is made. FMBFormat has no Vulkan: the
// runtime fills `DeviceLimits` from VkPhysicalDeviceLimits and calls `unmet(by:)`.

/// The device limits a bundle's requirements are compared with (names follow `DeviceRequirements`).
public struct DeviceLimits: Equatable, Sendable {
    /// VkPhysicalDeviceLimits.maxPushConstantsSize.
    public var pushConstantBytes: UInt32
    /// maxStorageBufferRange.
    public var storageBufferRange: UInt64
    /// maxImageDimension2D.
    public var imageDimension2D: UInt32
    /// maxImageArrayLayers.
    public var imageArrayLayers: UInt32
    /// maxComputeWorkGroupInvocations.
    public var workgroupInvocations: UInt32
    /// maxComputeSharedMemorySize.
    public var sharedMemoryBytes: UInt32
    /// The optional features the device was created with (`DeviceFeatures`).
    public var features: DeviceFeatures

    public init(pushConstantBytes: UInt32, storageBufferRange: UInt64, imageDimension2D: UInt32,
                imageArrayLayers: UInt32, workgroupInvocations: UInt32, sharedMemoryBytes: UInt32,
                features: DeviceFeatures = []) {
        self.pushConstantBytes = pushConstantBytes
        self.storageBufferRange = storageBufferRange
        self.imageDimension2D = imageDimension2D
        self.imageArrayLayers = imageArrayLayers
        self.workgroupInvocations = workgroupInvocations
        self.sharedMemoryBytes = sharedMemoryBytes
        self.features = features
    }
}

extension DeviceRequirements {
    /// Every requirement the device does not meet, one readable line each (empty: it can run the bundle),
    /// e.g. "push constants: the bundle needs 160 bytes, the device allows 128".
    public func unmet(by limits: DeviceLimits) -> [String] {
        var problems: [String] = []
        func check(_ what: String, _ needed: UInt64, _ offered: UInt64, _ unit: String) {
            if needed > offered {
                problems.append("\(what): the bundle needs \(needed)\(unit), the device allows \(offered)\(unit)")
            }
        }
        check("push constants", UInt64(pushConstantBytes), UInt64(limits.pushConstantBytes), " bytes")
        check("storage buffer range", storageBufferRange, limits.storageBufferRange, " bytes")
        check("2D image dimension", UInt64(imageDimension2D), UInt64(limits.imageDimension2D), " texels")
        check("image array layers", UInt64(imageArrayLayers), UInt64(limits.imageArrayLayers), "")
        check("workgroup invocations", UInt64(workgroupInvocations), UInt64(limits.workgroupInvocations), "")
        check("compute shared memory", UInt64(sharedMemoryBytes), UInt64(limits.sharedMemoryBytes), " bytes")
        let missing = features.subtracting(limits.features)
        if !missing.isEmpty {
            problems.append("device features: the bundle needs \(missing), which the device does not offer")
        }
        return problems
    }
}

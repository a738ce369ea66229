import CVulkan

/// The kind of a Vulkan physical device, in the order automatic selection prefers them.
public enum DeviceType: String, Sendable, CaseIterable {
    case discrete = "discrete GPU"
    case integrated = "integrated GPU"
    case virtual = "virtual GPU"
    case cpu = "CPU"
    case other = "other"

    init(_ type: VkPhysicalDeviceType) {
        switch type {
        case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: self = .discrete
        case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: self = .integrated
        case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: self = .virtual
        case VK_PHYSICAL_DEVICE_TYPE_CPU: self = .cpu
        default: self = .other
        }
    }

    /// Lower is preferred by automatic selection.
    var preference: Int { DeviceType.allCases.firstIndex(of: self)! }
}

/// A Vulkan physical device as `fmrun --list-devices` prints it.
public struct DeviceInfo: Sendable, Equatable, CustomStringConvertible {
    /// Position in vkEnumeratePhysicalDevices order: what `--device N` selects.
    public var index: Int
    public var name: String
    public var type: DeviceType
    /// "1.3.230".
    public var apiVersion: String
    public var vendorID: UInt32
    public var deviceID: UInt32
    /// Usable by FlashMem: Vulkan ≥ 1.2, a compute queue, timeline semaphores.
    public var usable: Bool
    /// Why not, when `usable` is false.
    public var unusableReason: String?
    /// A queue family with TRANSFER but neither GRAPHICS nor COMPUTE exists.
    public var hasDedicatedTransferQueue: Bool
    /// Sizes of the DEVICE_LOCAL memory heaps, in bytes.
    public var deviceLocalHeapBytes: [UInt64]

    public var description: String {
        var text = "[\(index)] \(name) (\(type.rawValue), Vulkan \(apiVersion))"
        if hasDedicatedTransferQueue { text += ", dedicated transfer queue" }
        if let unusableReason { text += " — unusable: \(unusableReason)" }
        return text
    }
}

import CVulkan

/// A failed Vulkan call: which entry point and the `VkResult` it returned.
public struct VulkanError: Error, CustomStringConvertible, Sendable {
    /// The Vulkan entry point, e.g. "vkCreateBuffer".
    public var call: String
    /// The raw `VkResult` value.
    public var result: Int32
    /// What was being done, e.g. "arena buffer (12 MiB)"; empty when the call says enough.
    public var context: String

    public init(call: String, result: Int32, context: String = "") {
        self.call = call
        self.result = result
        self.context = context
    }

    /// The `VkResult` name, e.g. "VK_ERROR_OUT_OF_DEVICE_MEMORY".
    public var resultName: String { vkResultName(result) }

    /// The device is gone (a GPU fault, hang, reset or removal): nothing made on it can be used again.
    public var isDeviceLost: Bool { result == VK_ERROR_DEVICE_LOST.rawValue }

    /// A wait for the GPU ran out of time (`SessionOptions.waitTimeoutSeconds`).
    public var isTimeout: Bool { result == VK_TIMEOUT.rawValue }

    public var description: String {
        let failed = context.isEmpty ? "\(call) failed: \(resultName)" : "\(call) failed (\(context)): \(resultName)"
        if isTimeout {
            return failed + " — the GPU did not get there within the wait timeout; a slow device (a CPU Vulkan such as "
                + "lavapipe) running a large model can take longer: raise SessionOptions.waitTimeoutSeconds "
                + "(fmrun --wait-timeout SECONDS)"
        }
        guard isDeviceLost else { return failed }
        return failed + " — the GPU was lost (a fault, hang or reset); this Device and every session on it can no "
            + "longer run: open a new Device and sessions (the bundles stay valid)"
    }
}

/// The single path from a `VkResult` to a typed error; every Vulkan call that returns one goes through here.
@inline(__always)
func check(_ result: VkResult, _ call: String, _ context: @autoclosure () -> String = "") throws {
    if result != VK_SUCCESS {
        throw VulkanError(call: call, result: result.rawValue, context: context())
    }
}

func vkResultName(_ value: Int32) -> String {
    switch value {
    case VK_SUCCESS.rawValue: "VK_SUCCESS"
    case VK_NOT_READY.rawValue: "VK_NOT_READY"
    case VK_TIMEOUT.rawValue: "VK_TIMEOUT"
    case VK_EVENT_SET.rawValue: "VK_EVENT_SET"
    case VK_EVENT_RESET.rawValue: "VK_EVENT_RESET"
    case VK_INCOMPLETE.rawValue: "VK_INCOMPLETE"
    case VK_ERROR_OUT_OF_HOST_MEMORY.rawValue: "VK_ERROR_OUT_OF_HOST_MEMORY"
    case VK_ERROR_OUT_OF_DEVICE_MEMORY.rawValue: "VK_ERROR_OUT_OF_DEVICE_MEMORY"
    case VK_ERROR_INITIALIZATION_FAILED.rawValue: "VK_ERROR_INITIALIZATION_FAILED"
    case VK_ERROR_DEVICE_LOST.rawValue: "VK_ERROR_DEVICE_LOST"
    case VK_ERROR_MEMORY_MAP_FAILED.rawValue: "VK_ERROR_MEMORY_MAP_FAILED"
    case VK_ERROR_LAYER_NOT_PRESENT.rawValue: "VK_ERROR_LAYER_NOT_PRESENT"
    case VK_ERROR_EXTENSION_NOT_PRESENT.rawValue: "VK_ERROR_EXTENSION_NOT_PRESENT"
    case VK_ERROR_FEATURE_NOT_PRESENT.rawValue: "VK_ERROR_FEATURE_NOT_PRESENT"
    case VK_ERROR_INCOMPATIBLE_DRIVER.rawValue: "VK_ERROR_INCOMPATIBLE_DRIVER"
    case VK_ERROR_TOO_MANY_OBJECTS.rawValue: "VK_ERROR_TOO_MANY_OBJECTS"
    case VK_ERROR_FORMAT_NOT_SUPPORTED.rawValue: "VK_ERROR_FORMAT_NOT_SUPPORTED"
    case VK_ERROR_FRAGMENTED_POOL.rawValue: "VK_ERROR_FRAGMENTED_POOL"
    case VK_ERROR_UNKNOWN.rawValue: "VK_ERROR_UNKNOWN"
    case VK_ERROR_OUT_OF_POOL_MEMORY.rawValue: "VK_ERROR_OUT_OF_POOL_MEMORY"
    case VK_ERROR_INVALID_EXTERNAL_HANDLE.rawValue: "VK_ERROR_INVALID_EXTERNAL_HANDLE"
    case VK_ERROR_FRAGMENTATION.rawValue: "VK_ERROR_FRAGMENTATION"
    case VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS.rawValue: "VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS"
    case VK_PIPELINE_COMPILE_REQUIRED.rawValue: "VK_PIPELINE_COMPILE_REQUIRED"
    default: "VkResult(\(value))"
    }
}

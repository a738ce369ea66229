import CVulkan
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The Khronos validation layer as an opt-in of the runtime: with `FLASHMEM_VALIDATION=1` in the environment every
/// Vulkan instance the runtime makes enables `VK_LAYER_KHRONOS_validation` with synchronization validation, and a
/// VK_EXT_debug_utils messenger writes each message to stderr (`vulkan validation error: …`) and counts the errors,
/// so tests and `fmrun` can fail on them. Off by default: the layer costs a lot of host time. Debian ships it as
/// `vulkan-validationlayers`; asking for validation without it is an error, not a silent pass.
///
/// Thread-safe: drivers and the layer call the messenger from any thread.
public enum VulkanValidation {
    static let layerName = "VK_LAYER_KHRONOS_validation"
    static let extensionName = "VK_EXT_debug_utils"
    /// Error messages kept for `errors()` (the count goes on past it).
    private static let keptMessages = 64

    /// Whether `FLASHMEM_VALIDATION` asks for the layer (any value but empty or `0`).
    public static var isRequested: Bool {
        guard let value = getenv("FLASHMEM_VALIDATION").map({ String(cString: $0) }) else { return false }
        return !value.isEmpty && value != "0"
    }

    private static let counter = Atomic<Int>(0)
    private static let kept = Mutex<[String]>([])

    /// Validation errors reported in this process so far (all instances).
    public static var errorCount: Int { counter.load(ordering: .relaxed) }

    /// The first error messages reported in this process (at most 64).
    public static func errors() -> [String] { kept.withLock { $0 } }

    /// Records one message of the messenger: errors are counted and kept, everything goes to stderr.
    static func report(severity: VkDebugUtilsMessageSeverityFlagBitsEXT, message: String) {
        let isError = severity.rawValue & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT.rawValue != 0
        if isError {
            counter.add(1, ordering: .relaxed)
            kept.withLock { if $0.count < keptMessages { $0.append(message) } }
        }
        let line = "vulkan validation \(isError ? "error" : "warning"): \(message)\n"
        fputs(line, stderr)
    }

    /// Whether the validation layer is installed (vkEnumerateInstanceLayerProperties).
    static func layerInstalled() -> Bool {
        var count: UInt32 = 0
        guard vkEnumerateInstanceLayerProperties(&count, nil) == VK_SUCCESS, count > 0 else { return false }
        var layers = [VkLayerProperties](repeating: VkLayerProperties(), count: Int(count))
        guard vkEnumerateInstanceLayerProperties(&count, &layers) == VK_SUCCESS else { return false }
        return layers.prefix(Int(count)).contains { string(fromCTuple: $0.layerName) == layerName }
    }
}

/// The messenger's callback: a C function pointer, so it captures nothing and reports through `VulkanValidation`.
private let validationCallback: PFN_vkDebugUtilsMessengerCallbackEXT = { severity, _, data, _ in
    guard let data = data?.pointee else { return VkBool32(VK_FALSE) }
    let id = data.pMessageIdName.map { String(cString: $0) } ?? "\(data.messageIdNumber)"
    let text = data.pMessage.map { String(cString: $0) } ?? ""
    VulkanValidation.report(severity: severity, message: "[\(id)] \(text)")
    return VkBool32(VK_FALSE)  // never abort the call: the application sees what it would without the layer
}

extension VK {
    /// What an instance with validation enables and chains into VkInstanceCreateInfo: the layer, VK_EXT_debug_utils and
    /// synchronization validation (VkValidationFeaturesEXT). Not the messenger's create info: layer 1.3.239 keeps such
    /// a messenger for the instance's whole life, so every message would come twice. Keeps the structures alive while
    /// `withChain` runs.
    struct ValidationRequest {
        let layers = CStringArray([VulkanValidation.layerName])
        let extensions = CStringArray([VulkanValidation.extensionName])

        static func messengerInfo() -> VkDebugUtilsMessengerCreateInfoEXT {
            var info = VkDebugUtilsMessengerCreateInfoEXT()
            info.sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT
            info.messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT.rawValue
                | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT.rawValue
            info.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT.rawValue
                | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT.rawValue
                | VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT.rawValue
            info.pfnUserCallback = validationCallback
            return info
        }

        /// Calls `body` with the head of the pNext chain for VkInstanceCreateInfo.
        func withChain<R>(_ body: (UnsafeRawPointer) -> R) -> R {
            var enables = [VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT]
            return enables.withUnsafeMutableBufferPointer { enabled in
                var features = VkValidationFeaturesEXT()
                features.sType = VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT
                features.enabledValidationFeatureCount = UInt32(enabled.count)
                features.pEnabledValidationFeatures = UnsafePointer(enabled.baseAddress)
                return withUnsafePointer(to: &features) { body(UnsafeRawPointer($0)) }
            }
        }
    }

    /// A `VkDebugUtilsMessengerEXT` (vkCreateDebugUtilsMessengerEXT / vkDestroyDebugUtilsMessengerEXT, loaded with
    /// vkGetInstanceProcAddr). Does not keep its instance alive: the instance owns it and destroys it first.
    final class DebugMessenger {
        let handle: VkDebugUtilsMessengerEXT
        private let instance: VkInstance
        private let destroy: PFN_vkDestroyDebugUtilsMessengerEXT

        init(instance: VkInstance) throws {
            self.instance = instance
            guard let create = vkGetInstanceProcAddr(instance, "vkCreateDebugUtilsMessengerEXT"),
                  let destroy = vkGetInstanceProcAddr(instance, "vkDestroyDebugUtilsMessengerEXT") else {
                throw VulkanError(call: "vkGetInstanceProcAddr(vkCreateDebugUtilsMessengerEXT)",
                                  result: VK_ERROR_EXTENSION_NOT_PRESENT.rawValue)
            }
            self.destroy = unsafeBitCast(destroy, to: PFN_vkDestroyDebugUtilsMessengerEXT.self)
            let createMessenger = unsafeBitCast(create, to: PFN_vkCreateDebugUtilsMessengerEXT.self)
            var info = ValidationRequest.messengerInfo()
            var raw: VkDebugUtilsMessengerEXT?
            try check(createMessenger(instance, &info, nil, &raw), "vkCreateDebugUtilsMessengerEXT")
            handle = raw!
        }

        deinit { destroy(instance, handle, nil) }
    }
}

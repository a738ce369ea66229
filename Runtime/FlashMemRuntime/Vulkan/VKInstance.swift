import CVulkan

extension VK {
    /// A `VkInstance` (vkCreateInstance / vkDestroyInstance). Owns nothing else but, with validation
    /// (`VulkanValidation.isRequested`), its debug messenger; physical devices enumerated from it are plain handles
    /// valid while it lives.
    final class Instance {
        let handle: VkInstance
        /// The API version requested at creation (at least 1.2: timeline semaphores are core there).
        let apiVersion: UInt32
        /// With validation: the messenger reporting the layer's messages (destroyed before the instance).
        private var messenger: DebugMessenger?

        /// The loader's instance version (vkEnumerateInstanceVersion).
        static func loaderVersion() -> UInt32 {
            var version: UInt32 = 0
            if vkEnumerateInstanceVersion(&version) != VK_SUCCESS { return fm_vk_make_api_version(0, 1, 0, 0) }
            return version
        }

        init(applicationName: String) throws {
            let loader = Instance.loaderVersion()
            let minimum = fm_vk_make_api_version(0, 1, 2, 0)
            guard loader >= minimum else {
                throw RuntimeError.vulkanTooOld(what: "Vulkan loader", version: formatVulkanVersion(loader))
            }
            // Ask for 1.3 where the loader has it; devices report their own version, checked in `Device`.
            let requested = min(loader, fm_vk_make_api_version(0, 1, 3, 0))
            let name = CStringArray([applicationName, "FlashMem"])
            var app = VkApplicationInfo()
            app.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO
            app.pApplicationName = name.pointers[0]
            app.applicationVersion = 1
            app.pEngineName = name.pointers[1]
            app.engineVersion = 1
            app.apiVersion = requested
            let validation = VulkanValidation.isRequested ? ValidationRequest() : nil
            if validation != nil && !VulkanValidation.layerInstalled() {
                throw RuntimeError.validationUnavailable(
                    reason: "FLASHMEM_VALIDATION is set but the Vulkan loader finds no \(VulkanValidation.layerName) "
                        + "(install vulkan-validationlayers, or unset FLASHMEM_VALIDATION)")
            }
            var raw: VkInstance?
            let result = withUnsafePointer(to: &app) { appPointer -> VkResult in
                var info = VkInstanceCreateInfo()
                info.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO
                info.pApplicationInfo = appPointer
                guard let validation else { return vkCreateInstance(&info, nil, &raw) }
                return validation.layers.pointers.withUnsafeBufferPointer { layers in
                    validation.extensions.pointers.withUnsafeBufferPointer { extensions in
                        info.enabledLayerCount = UInt32(layers.count)
                        info.ppEnabledLayerNames = layers.baseAddress
                        info.enabledExtensionCount = UInt32(extensions.count)
                        info.ppEnabledExtensionNames = extensions.baseAddress
                        return validation.withChain { chain in
                            info.pNext = chain
                            return vkCreateInstance(&info, nil, &raw)
                        }
                    }
                }
            }
            try check(result, "vkCreateInstance", validation == nil ? "" : "with \(VulkanValidation.layerName)")
            guard let raw else { throw VulkanError(call: "vkCreateInstance", result: VK_ERROR_UNKNOWN.rawValue) }
            handle = raw
            apiVersion = requested
            withExtendedLifetime(name) {}
            withExtendedLifetime(validation) {}
            if validation != nil {
                do {
                    messenger = try DebugMessenger(instance: raw)
                } catch {
                    vkDestroyInstance(raw, nil)
                    throw error
                }
            }
        }

        deinit {
            messenger = nil
            vkDestroyInstance(handle, nil)
        }

        /// vkEnumeratePhysicalDevices, in the driver's order (the order `--device N` indexes).
        func physicalDevices() throws -> [VkPhysicalDevice] {
            var count: UInt32 = 0
            try check(vkEnumeratePhysicalDevices(handle, &count, nil), "vkEnumeratePhysicalDevices")
            var devices = [VkPhysicalDevice?](repeating: nil, count: Int(count))
            try check(vkEnumeratePhysicalDevices(handle, &count, &devices), "vkEnumeratePhysicalDevices")
            return devices.prefix(Int(count)).compactMap { $0 }
        }
    }
}

/// "1.3.230" from a packed Vulkan version.
func formatVulkanVersion(_ version: UInt32) -> String {
    "\(fm_vk_api_version_major(version)).\(fm_vk_api_version_minor(version)).\(version & 0xFFF)"
}

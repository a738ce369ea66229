import CVulkan

extension VK {
    /// The two commands of VK_EXT_conditional_rendering, loaded with vkGetDeviceProcAddr (the loader exports
    /// only core commands). Valid while `device` lives, which it keeps alive. Owns no Vulkan object.
    final class ConditionalRendering {
        static let extensionName = "VK_EXT_conditional_rendering"

        let device: Device
        private let beginCommand: PFN_vkCmdBeginConditionalRenderingEXT
        private let endCommand: PFN_vkCmdEndConditionalRenderingEXT

        /// Loads the commands from a device created with the extension and its `conditionalRendering` feature.
        /// Throws `VulkanError` when the driver returns no pointer for either.
        init(device: Device) throws {
            self.device = device
            func load<T>(_ name: String, as: T.Type) throws -> T {
                guard let pointer = vkGetDeviceProcAddr(device.handle, name) else {
                    throw VulkanError(call: "vkGetDeviceProcAddr(\(name))", result: VK_ERROR_EXTENSION_NOT_PRESENT.rawValue)
                }
                return unsafeBitCast(pointer, to: T.self)
            }
            beginCommand = try load("vkCmdBeginConditionalRenderingEXT", as: PFN_vkCmdBeginConditionalRenderingEXT.self)
            endCommand = try load("vkCmdEndConditionalRenderingEXT", as: PFN_vkCmdEndConditionalRenderingEXT.self)
        }

        /// vkCmdBeginConditionalRenderingEXT: the dispatches recorded until `end` run only when the 32-bit value
        /// at `offset` of `buffer` is non-zero (`inverted`: zero) when the device reaches them. The buffer needs
        /// VK_BUFFER_USAGE_CONDITIONAL_RENDERING_BIT_EXT; `offset` a multiple of 4.
        func begin(_ cb: VkCommandBuffer, buffer: Buffer, offset: UInt64, inverted: Bool) {
            var info = VkConditionalRenderingBeginInfoEXT()
            info.sType = VK_STRUCTURE_TYPE_CONDITIONAL_RENDERING_BEGIN_INFO_EXT
            info.buffer = buffer.handle
            info.offset = offset
            info.flags = inverted ? VK_CONDITIONAL_RENDERING_INVERTED_BIT_EXT.rawValue : 0
            beginCommand(cb, &info)
        }

        /// vkCmdEndConditionalRenderingEXT.
        func end(_ cb: VkCommandBuffer) {
            endCommand(cb)
        }
    }
}

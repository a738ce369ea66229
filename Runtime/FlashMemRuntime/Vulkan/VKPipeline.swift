import CVulkan

extension VK {
    /// A `VkShaderModule` (vkCreateShaderModule / vkDestroyShaderModule).
    final class ShaderModule {
        let handle: VkShaderModule
        let device: Device

        init(device: Device, code: [UInt32], label: String) throws {
            self.device = device
            var raw: VkShaderModule?
            let result = code.withUnsafeBufferPointer { words -> VkResult in
                var info = VkShaderModuleCreateInfo()
                info.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO
                info.codeSize = words.count * 4
                info.pCode = words.baseAddress
                return vkCreateShaderModule(device.handle, &info, nil, &raw)
            }
            try check(result, "vkCreateShaderModule", label)
            handle = raw!
        }

        deinit { vkDestroyShaderModule(device.handle, handle, nil) }
    }

    /// A `VkPipelineLayout` (vkCreatePipelineLayout / vkDestroyPipelineLayout): one set layout
    /// (set 0) and an optional compute push-constant range starting at 0. Keeps its set layout alive.
    final class PipelineLayout {
        let handle: VkPipelineLayout
        let setLayout: DescriptorSetLayout

        init(setLayout: DescriptorSetLayout, pushConstantSize: UInt32) throws {
            self.setLayout = setLayout
            var range = VkPushConstantRange(stageFlags: VK_SHADER_STAGE_COMPUTE_BIT.rawValue, offset: 0,
                                            size: pushConstantSize)
            var setHandle: VkDescriptorSetLayout? = setLayout.handle
            var raw: VkPipelineLayout?
            var info = VkPipelineLayoutCreateInfo()
            info.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO
            let result = withUnsafePointer(to: &setHandle) { setPointer in
                withUnsafePointer(to: &range) { rangePointer in
                    info.setLayoutCount = 1
                    info.pSetLayouts = setPointer
                    info.pushConstantRangeCount = pushConstantSize > 0 ? 1 : 0
                    info.pPushConstantRanges = pushConstantSize > 0 ? rangePointer : nil
                    return vkCreatePipelineLayout(setLayout.device.handle, &info, nil, &raw)
                }
            }
            try check(result, "vkCreatePipelineLayout")
            handle = raw!
        }

        deinit { vkDestroyPipelineLayout(setLayout.device.handle, handle, nil) }
    }

    /// A compute `VkPipeline` (vkCreateComputePipelines / vkDestroyPipeline), entry point "main",
    /// specialization constant i (constant_id i) = `specConstants[i]` as 32 bits.
    final class Pipeline {
        let handle: VkPipeline
        let layout: PipelineLayout
        let module: ShaderModule

        init(module: ShaderModule, layout: PipelineLayout, specConstants: [UInt32], cache: PipelineCache? = nil,
             label: String) throws {
            self.module = module
            self.layout = layout
            let entries = specConstants.indices.map {
                VkSpecializationMapEntry(constantID: UInt32($0), offset: UInt32($0 * 4), size: 4)
            }
            let entryName = CStringArray(["main"])
            var raw: VkPipeline?
            let result = entries.withUnsafeBufferPointer { entryPointer in
                specConstants.withUnsafeBytes { data -> VkResult in
                    var specialization = VkSpecializationInfo(
                        mapEntryCount: UInt32(entryPointer.count), pMapEntries: entryPointer.baseAddress,
                        dataSize: data.count, pData: data.baseAddress)
                    return withUnsafePointer(to: &specialization) { specPointer in
                        var stage = VkPipelineShaderStageCreateInfo()
                        stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO
                        stage.stage = VK_SHADER_STAGE_COMPUTE_BIT
                        stage.module = module.handle
                        stage.pName = entryName.pointers[0]
                        stage.pSpecializationInfo = specConstants.isEmpty ? nil : specPointer
                        var info = VkComputePipelineCreateInfo()
                        info.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO
                        info.stage = stage
                        info.layout = layout.handle
                        info.basePipelineIndex = -1
                        return vkCreateComputePipelines(module.device.handle, cache?.handle, 1, &info, nil, &raw)
                    }
                }
            }
            try check(result, "vkCreateComputePipelines", label)
            handle = raw!
            withExtendedLifetime(entryName) {}
        }

        deinit { vkDestroyPipeline(module.device.handle, handle, nil) }
    }
}

import CVulkan

extension VK {
    /// A `VkPipelineCache` (vkCreatePipelineCache / vkDestroyPipelineCache), seeded with data a previous process
    /// saved. Drivers check the data's header (vendor, device, pipelineCacheUUID) and ignore data that is not
    /// theirs. Internally synchronized: pipelines may be created with it from several threads.
    final class PipelineCache {
        let handle: VkPipelineCache
        let device: Device

        init(device: Device, initialData: [UInt8]?) throws {
            self.device = device
            var info = VkPipelineCacheCreateInfo()
            info.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO
            var raw: VkPipelineCache?
            let result = (initialData ?? []).withUnsafeBytes { data -> VkResult in
                info.initialDataSize = data.count
                info.pInitialData = data.baseAddress
                return vkCreatePipelineCache(device.handle, &info, nil, &raw)
            }
            try check(result, "vkCreatePipelineCache", "pipeline cache")
            handle = raw!
        }

        /// vkGetPipelineCacheData: what to save for the next process.
        func data() throws -> [UInt8] {
            var size = 0
            try check(vkGetPipelineCacheData(device.handle, handle, &size, nil), "vkGetPipelineCacheData", "pipeline cache")
            var bytes = [UInt8](repeating: 0, count: size)
            try check(vkGetPipelineCacheData(device.handle, handle, &size, &bytes), "vkGetPipelineCacheData", "pipeline cache")
            return Array(bytes.prefix(size))
        }

        deinit { vkDestroyPipelineCache(device.handle, handle, nil) }
    }
}

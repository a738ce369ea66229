import CVulkan

extension VK {
    /// A timestamp `VkQueryPool` (vkCreateQueryPool / vkDestroyQueryPool), for per-step profiles.
    final class QueryPool {
        let handle: VkQueryPool
        let device: Device
        let count: UInt32

        init(device: Device, timestamps count: UInt32) throws {
            self.device = device
            self.count = count
            var info = VkQueryPoolCreateInfo()
            info.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO
            info.queryType = VK_QUERY_TYPE_TIMESTAMP
            info.queryCount = count
            var raw: VkQueryPool?
            try check(vkCreateQueryPool(device.handle, &info, nil, &raw), "vkCreateQueryPool")
            handle = raw!
        }

        deinit { vkDestroyQueryPool(device.handle, handle, nil) }

        /// vkResetQueryPool (host reset; needs the hostQueryReset feature).
        func resetFromHost() {
            vkResetQueryPool(device.handle, handle, 0, count)
        }

        /// vkGetQueryPoolResults for all queries as 64-bit values, waiting for them.
        func results() throws -> [UInt64] {
            var values = [UInt64](repeating: 0, count: Int(count))
            let flags = VK_QUERY_RESULT_64_BIT.rawValue | VK_QUERY_RESULT_WAIT_BIT.rawValue
            let result = values.withUnsafeMutableBytes { raw in
                vkGetQueryPoolResults(device.handle, handle, 0, count, raw.count, raw.baseAddress, 8, flags)
            }
            try check(result, "vkGetQueryPoolResults")
            return values
        }
    }
}

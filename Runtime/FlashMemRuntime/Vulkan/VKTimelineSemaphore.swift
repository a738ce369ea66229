import CVulkan

extension VK {
    /// A timeline `VkSemaphore` (vkCreateSemaphore with VkSemaphoreTypeCreateInfo / vkDestroySemaphore).
    /// Its value only grows; the runtime's submissions always wait for values signalled by earlier
    /// submissions, which keeps a single queue (lavapipe) free of wait-before-signal deadlocks.
    final class TimelineSemaphore {
        let handle: VkSemaphore
        let device: Device

        init(device: Device, initialValue: UInt64 = 0) throws {
            self.device = device
            var type = VkSemaphoreTypeCreateInfo()
            type.sType = VK_STRUCTURE_TYPE_SEMAPHORE_TYPE_CREATE_INFO
            type.semaphoreType = VK_SEMAPHORE_TYPE_TIMELINE
            type.initialValue = initialValue
            var raw: VkSemaphore?
            let result = withUnsafePointer(to: &type) { typePointer -> VkResult in
                var info = VkSemaphoreCreateInfo()
                info.sType = VK_STRUCTURE_TYPE_SEMAPHORE_CREATE_INFO
                info.pNext = UnsafeRawPointer(typePointer)
                return vkCreateSemaphore(device.handle, &info, nil, &raw)
            }
            try check(result, "vkCreateSemaphore")
            handle = raw!
        }

        deinit { vkDestroySemaphore(device.handle, handle, nil) }

        /// vkGetSemaphoreCounterValue.
        func value() throws -> UInt64 {
            var value: UInt64 = 0
            try check(vkGetSemaphoreCounterValue(device.handle, handle, &value), "vkGetSemaphoreCounterValue")
            return value
        }

        /// vkSignalSemaphore: sets the value from the host. `value` must exceed the current value and every
        /// pending signal's value.
        func signal(_ value: UInt64) throws {
            var info = VkSemaphoreSignalInfo()
            info.sType = VK_STRUCTURE_TYPE_SEMAPHORE_SIGNAL_INFO
            info.semaphore = handle
            info.value = value
            try check(vkSignalSemaphore(device.handle, &info), "vkSignalSemaphore", "timeline value \(value)")
        }

        /// vkWaitSemaphores until the value reaches `value`; `timeout` in nanoseconds.
        /// Throws `VulkanError` with VK_TIMEOUT when the time runs out.
        func wait(for value: UInt64, timeout: UInt64 = UInt64.max) throws {
            var semaphore: VkSemaphore? = handle
            var target = value
            let result = withUnsafePointer(to: &semaphore) { semaphorePointer in
                withUnsafePointer(to: &target) { valuePointer -> VkResult in
                    var info = VkSemaphoreWaitInfo()
                    info.sType = VK_STRUCTURE_TYPE_SEMAPHORE_WAIT_INFO
                    info.semaphoreCount = 1
                    info.pSemaphores = semaphorePointer
                    info.pValues = valuePointer
                    return vkWaitSemaphores(device.handle, &info, timeout)
                }
            }
            let waited = timeout == UInt64.max ? ""
                : timeout >= 1_000_000_000 ? ", after waiting \(timeout / 1_000_000_000) s"
                : ", after waiting \(timeout / 1_000_000) ms"
            try check(result, "vkWaitSemaphores", "timeline value \(value)\(waited)")
        }
    }
}

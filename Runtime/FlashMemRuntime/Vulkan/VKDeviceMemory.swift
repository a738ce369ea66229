import CVulkan
import Synchronization

extension VK {
    /// A `VkDeviceMemory` allocation (vkAllocateMemory / vkFreeMemory). Host-visible allocations may
    /// be mapped once for their whole life (`mapped`); unmapping happens implicitly on free.
    final class DeviceMemory {
        let handle: VkDeviceMemory
        let device: Device
        let size: UInt64
        let typeIndex: UInt32
        /// The persistent mapping of the whole allocation, when `map()` was called.
        private(set) var mapped: UnsafeMutableRawPointer?
        /// Allocations alive in this process, for leak tests (sessions created and destroyed many times).
        static let live = Atomic<Int>(0)
        /// Allocations ever made in this process (tests: a warm pass of a pooled context allocates nothing).
        static let made = Atomic<Int>(0)

        init(device: Device, size: UInt64, typeIndex: UInt32, label: String) throws {
            self.device = device
            self.size = size
            self.typeIndex = typeIndex
            var info = VkMemoryAllocateInfo()
            info.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO
            info.allocationSize = size
            info.memoryTypeIndex = typeIndex
            var raw: VkDeviceMemory?
            try check(vkAllocateMemory(device.handle, &info, nil, &raw), "vkAllocateMemory", "\(label), \(size) bytes")
            handle = raw!
            DeviceMemory.live.add(1, ordering: .relaxed)
            DeviceMemory.made.add(1, ordering: .relaxed)
        }

        deinit {
            vkFreeMemory(device.handle, handle, nil)
            DeviceMemory.live.subtract(1, ordering: .relaxed)
        }

        /// vkMapMemory of the whole allocation; idempotent.
        @discardableResult
        func map() throws -> UnsafeMutableRawPointer {
            if let mapped { return mapped }
            var pointer: UnsafeMutableRawPointer?
            try check(vkMapMemory(device.handle, handle, 0, UInt64(VK_WHOLE_SIZE), 0, &pointer), "vkMapMemory")
            mapped = pointer
            return pointer!
        }
    }
}

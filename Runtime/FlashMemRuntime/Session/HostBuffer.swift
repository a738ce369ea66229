import CVulkan

/// A buffer in host-visible, host-coherent memory, mapped for its whole life: the staging ring that
/// chunk payloads are decoded into, and the I/O staging area for inputs and outputs. Coherent memory
/// needs no flushes; writes made before vkQueueSubmit are visible to the submitted commands.
final class HostBuffer {
    let buffer: VK.Buffer
    let memory: VK.DeviceMemory
    let mapped: UnsafeMutableRawPointer
    let size: UInt64
    /// The streamer that last wrote chunks into this buffer (two streamers of a session share one ring): a streamer
    /// whose ring holds every chunk it copies keeps them decoded between runs only while no other wrote here.
    var writer: ObjectIdentifier? = nil

    /// - cached: prefer HOST_CACHED memory. Reading back from uncached (write-combined) memory runs at a
    ///   fraction of memory bandwidth, so buffers the host reads want it; buffers the host only writes do not.
    init(device: Device, size: UInt64, usage: VkBufferUsageFlags, cached: Bool = false, label: String) throws {
        let size = max(size, 256)
        buffer = try VK.Buffer(device: device.vk, size: size, usage: usage, families: device.families, label: label)
        let requirements = buffer.requirements
        memory = try device.allocate(
            size: requirements.size, typeBits: requirements.memoryTypeBits,
            required: VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT.rawValue | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT.rawValue,
            preferred: cached ? VK_MEMORY_PROPERTY_HOST_CACHED_BIT.rawValue : 0, label: label)
        try buffer.bind(memory)
        mapped = try memory.map()
        self.size = size
    }

    /// The bytes at `offset..<offset+count`.
    func bytes(at offset: UInt64, count: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: mapped + Int(offset), count: count)
    }
}

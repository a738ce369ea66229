import CVulkan

/// The device memory of a `DeviceContext` with a budget: ONE allocation of the budget's size, made when a session
/// first needs memory, in which every session it can serve has a fixed range (`PoolPlacement`) for its whole life.
/// Owned by the context; the arena buffers and weight images bound into it keep its `VK.DeviceMemory` alive too, so
/// it is freed after the last of them (and sessions keep their context alive).
final class DevicePool {
    let memory: VK.DeviceMemory
    var bytes: UInt64 { memory.size }

    /// Allocates `bytes` of the memory type `makeFirst` needs (device-local where it can be), or nil where one
    /// allocation cannot be the whole budget on this device: past maxMemoryAllocationSize or the type's heap, no
    /// type for the session's resources, or the allocation itself refused. The context then gives every session
    /// allocations of its own (as a context without a pool does).
    init?(device: Device, bytes: UInt64, for piece: MemoryPiece) {
        guard bytes > 0, bytes <= device.physical.maxMemoryAllocationSize,
              let type = device.memoryType(typeBits: piece.typeBits, required: 0,
                                           preferred: VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT.rawValue),
              bytes <= device.heapSize(ofType: type),
              let memory = try? VK.DeviceMemory(device: device.vk, size: bytes, typeIndex: type,
                                               label: "context pool (\(bytes) bytes)")
        else { return nil }
        self.memory = memory
    }

    /// Whether `piece` can be bound in this pool: its memory types include the pool's, and it fits.
    func serves(_ piece: MemoryPiece) -> Bool {
        piece.bytes <= bytes && piece.typeBits & (1 << memory.typeIndex) != 0
    }
}

/// How a session's arena and weight space sit in one piece of memory (its range of a `DevicePool`): the arena at
/// 0, the weight space at `weightOffset`, aligned for every weight image and bufferImageGranularity (a buffer and
/// optimal-tiling images side by side). From the driver's requirements of the session's unbound arena and images.
struct MemoryPiece: Equatable {
    /// Where the weight space starts (the bundle's weight-space offsets are relative to it).
    var weightOffset: UInt64
    /// The piece's length: arena, padding, weight space.
    var bytes: UInt64
    /// What the piece's start must be a multiple of: the arena's alignment, the images', bufferImageGranularity
    /// (so the ranges of two sessions never share a granularity page without overlapping).
    var alignment: UInt64
    /// Memory types every resource of the piece accepts.
    var typeBits: UInt32

    init(arena: VkMemoryRequirements, weightBytes: UInt64, weightAlignment: UInt64, weightTypeBits: UInt32,
         granularity: UInt64) {
        let imageAlignment = max(weightAlignment, granularity, 1)
        weightOffset = weightBytes == 0 ? arena.size : alignUp(arena.size, imageAlignment)
        bytes = weightOffset + weightBytes
        alignment = max(arena.alignment, imageAlignment)
        typeBits = arena.memoryTypeBits & (weightBytes == 0 ? UInt32.max : weightTypeBits)
    }
}

import CVulkan

/// The device memory of a `DeviceContext` with a budget: ONE allocation, as large as the context's sessions need side
/// by side and at most the budget, made when a session first needs memory, in which every session it can serve has
/// a fixed range (`PoolPlacement`) for its whole life.
/// Owned by the context; the arena buffers and weight images bound into it keep its `VK.DeviceMemory` alive too, so
/// it is freed after the last of them (and sessions keep their context alive).
final class DevicePool {
    let memory: VK.DeviceMemory
    var bytes: UInt64 { memory.size }

    /// Allocates `bytes` of the memory type `makeFirst` needs (device-local where it can be), or nil where one
    /// allocation cannot be that large on this device: past maxMemoryAllocationSize or the type's heap, no
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

    /// Bytes that hold `pieces` side by side in any order: each rounded up to the largest alignment among them.
    static func sideBySide<S: Sequence>(_ pieces: S) -> UInt64 where S.Element == MemoryPiece {
        let alignment = pieces.map(\.alignment).max() ?? 1
        return pieces.reduce(UInt64(0)) { $0 + alignUp($1.bytes, alignment) }
    }

    /// Whether `piece` can be bound in this pool: its memory types include the pool's, and it fits.
    func serves(_ piece: MemoryPiece) -> Bool {
        piece.bytes <= bytes && piece.typeBits & (1 << memory.typeIndex) != 0
    }
}

/// How a session's arena and weight space sit in one piece of memory (its range of a `DevicePool`): the weight space
/// at 0 (the bundle's weight-space offsets are relative to it, each a multiple of its image's alignment), the arena
/// after it at `arenaOffset`, aligned for the arena and bufferImageGranularity (a buffer after optimal-tiling
/// images). Weight spaces are mostly multiples of those alignments already, so the piece is mostly exactly the
/// footprint (arena + weight space): two neighbours whose footprints fit the budget side by side fit the pool
/// side by side. From the driver's requirements of the session's unbound arena and images.
struct MemoryPiece: Equatable {
    /// Where the arena starts.
    var arenaOffset: UInt64
    /// The piece's length: weight space, padding, arena.
    var bytes: UInt64
    /// What the piece's start must be a multiple of: every image's alignment, the arena's, bufferImageGranularity
    /// (so the ranges of two sessions never share a granularity page without overlapping).
    var alignment: UInt64
    /// Memory types every resource of the piece accepts.
    var typeBits: UInt32
}

extension MemoryPiece {
    init(arena: VkMemoryRequirements, weightBytes: UInt64, weightAlignment: UInt64, weightTypeBits: UInt32,
         granularity: UInt64) {
        let arenaAlignment = max(arena.alignment, granularity, 1)
        arenaOffset = weightBytes == 0 ? 0 : alignUp(weightBytes, arenaAlignment)
        bytes = arenaOffset + arena.size
        alignment = max(arenaAlignment, weightBytes == 0 ? 1 : weightAlignment)
        typeBits = arena.memoryTypeBits & (weightBytes == 0 ? UInt32.max : weightTypeBits)
    }
}

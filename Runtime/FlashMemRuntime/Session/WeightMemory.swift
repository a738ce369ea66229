import CVulkan

/// The weight images of a session and the device memory behind them: the bundle's weight space (FORMAT.md,
/// `placement`) backed by one allocation per segment, so a plan larger than maxMemoryAllocationSize still runs.
/// Outlives runs: resident images are loaded once (by the first run, or `Session.loadWeights`) and stay, until the
/// session gives its device memory back to its `DeviceContext` (then new images are made and loaded again).
/// `init` makes the images and places them without allocating (so a session knows its footprint before it takes
/// any memory); `bind(device:)` allocates, `bind(_:at:)` binds into a range of a context's pool instead.
///
/// Streaming mode binds every image at its planned slot when the device's real image sizes fit the slots, and
/// otherwise re-places the slots with the device's sizes by the same rules (`SlotPlacement`, same residency and
/// windows); either way arena + weight space must stay within the plan's budget. Preload mode gives every image
/// its own bytes, all resident. Images are shared CONCURRENT between the compute and transfer families when
/// those differ, so no queue-ownership transfers are needed.
final class WeightMemory {
    let images: [VK.Image]
    /// Made by `bind`.
    private(set) var views: [VK.ImageView] = []
    /// One per segment of the weight space (none when the bundle has no images); made by `bind`.
    private(set) var allocations: [VK.DeviceMemory] = []
    private let segmentSize: UInt64
    /// Memory types every image accepts.
    let typeBits: UInt32
    /// What the weight space's start must be a multiple of: every image's alignment (its offsets are relative to it).
    let alignment: UInt64
    private let mode: LoadMode
    /// Offsets in the weight space, per image.
    let offsets: [UInt64]
    /// Whether each image is loaded once and kept.
    let resident: [Bool]
    /// Whether the slots are the plan's own (false: re-placed for this device's image sizes).
    let asPlanned: Bool
    /// Bytes the weight space spans on this device.
    let spaceBytes: UInt64
    /// What every image would need with bytes of its own (the preload layout), for comparison.
    let unaliasedBytes: UInt64
    /// Whether the resident images hold their weights (set once a run loaded them).
    var residentLoaded = false

    init(device: Device, loaded: LoadedBundle, mode: LoadMode) throws {
        let bundle = loaded.bundle
        guard let placement = bundle.placement else {
            throw RuntimeError.invalidBundle(
                path: loaded.path, field: "placement",
                reason: "this bundle has no load plan placement (format 1.\(bundle.hasPredicatedSteps ? 1 : 0), written by "
                    + "'\(bundle.meta.producer)'); compile the model again with this version of fmc")
        }
        let usage = VK_IMAGE_USAGE_STORAGE_BIT.rawValue | VK_IMAGE_USAGE_TRANSFER_DST_BIT.rawValue
        images = try bundle.images.enumerated().map { i, image in
            try VK.Image(device: device.vk, format: image.format.vkFormat, width: image.width, height: image.height,
                         layers: image.layers, usage: usage, families: device.families,
                         label: "images[\(i)] \(image.name)")
        }
        let requirements = images.map(\.requirements)
        let sizes = requirements.map(\.size)
        let alignments = requirements.map(\.alignment)
        let windows = bundle.imageWindows()
        let segment = min(placement.segmentBytes, device.physical.maxMemoryAllocationSize)
        let everything = [Bool](repeating: true, count: images.count)
        func place(resident: [Bool]) throws -> SlotPlacement.Result {
            do {
                return try SlotPlacement.place(sizes: sizes, alignments: alignments, resident: resident, windows: windows,
                                               segmentBytes: segment)
            } catch let e as SlotPlacement.TooLarge {
                throw RuntimeError.memory(what: "images[\(e.index)] \(bundle.images[e.index].name)",
                                          reason: "\(e.size) bytes on \(device.info.name) exceed one allocation "
                                              + "(\(e.segmentBytes) bytes); compile with a smaller image limit")
            }
        }
        let separate = try place(resident: everything)
        unaliasedBytes = separate.end

        switch mode {
        case .preload:
            resident = everything
            (offsets, spaceBytes, asPlanned) = (separate.offsets, separate.end, false)
        case .streaming:
            resident = placement.slots.map(\.resident)
            let fits = placement.slots.indices.allSatisfy { i in
                sizes[i] <= placement.slots[i].size && placement.slots[i].offset % max(alignments[i], 1) == 0
            } && placement.segmentBytes <= device.physical.maxMemoryAllocationSize
            if fits {
                (offsets, spaceBytes, asPlanned) = (placement.slots.map(\.offset), placement.weightSpaceBytes, true)
            } else {
                let placed = try place(resident: resident)
                (offsets, spaceBytes, asPlanned) = (placed.offsets, placed.end, false)
            }
            let budget = bundle.schedule.budgetBytes
            if budget > 0, bundle.meta.arenaSize + spaceBytes > budget {
                throw RuntimeError.memory(
                    what: "weights", reason: "the plan's budget is \(budget) bytes, but arena \(bundle.meta.arenaSize) + "
                        + "weights \(spaceBytes) bytes on \(device.info.name) (images padded past their planned slots) "
                        + "exceed it by \(bundle.meta.arenaSize + spaceBytes - budget) bytes; compile with a budget that "
                        + "leaves room, or for this device")
            }
        }

        let typeBits = requirements.reduce(UInt32.max) { $0 & $1.memoryTypeBits }
        guard images.isEmpty || typeBits != 0 else {
            throw RuntimeError.memory(what: "weights", reason: "no memory type suits every weight image on "
                                      + "\(device.info.name), so they cannot share allocations")
        }
        // Each allocation fits its heap (`Device.allocate`), but many segments need not: a plan larger than the
        // device is refused here, before any of it is allocated (drivers that overcommit would not refuse it).
        if !images.isEmpty,
           let type = device.memoryType(typeBits: typeBits, required: 0,
                                        preferred: VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT.rawValue) {
            let heap = device.heapSize(ofType: type), needed = bundle.meta.arenaSize + spaceBytes
            if needed > heap {
                throw RuntimeError.memory(
                    what: "weights", reason: "arena \(bundle.meta.arenaSize) + weights \(spaceBytes) bytes "
                        + "(\(mode.rawValue)) exceed the \(heap)-byte memory heap of \(device.info.name); compile "
                        + "with a memory budget for this device")
            }
        }
        self.typeBits = typeBits
        alignment = alignments.max() ?? 1
        segmentSize = mode == .streaming && asPlanned ? placement.segmentBytes : segment
        self.mode = mode
    }

    /// Allocates the weight space (one allocation per segment), binds every image at its offset and makes the
    /// views. Once: Vulkan binds an image's memory for its whole life, so a session that gave its memory back
    /// makes new images (`Session.buildResidency`).
    func bind(device: Device) throws {
        var blocks: [VK.DeviceMemory] = []
        var start: UInt64 = 0
        while start < deviceBytes {
            let size = min(segmentSize, deviceBytes - start)
            blocks.append(try device.allocate(size: size, typeBits: typeBits, required: 0,
                                              preferred: VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT.rawValue,
                                              label: "weights segment \(blocks.count) (\(size) bytes, \(mode.rawValue))"))
            start += size
        }
        try bindImages { [segmentSize] offset in (blocks[Int(offset / segmentSize)], offset % segmentSize) }
        allocations = blocks
    }

    /// Binds every image at its offset from `base` in `memory` (one piece: a session's range of its context's
    /// pool, `MemoryPiece`; `base` a multiple of `alignment`) and makes the views. Allocates nothing.
    func bind(_ memory: VK.DeviceMemory, at base: UInt64) throws {
        precondition(base % max(alignment, 1) == 0 && base + deviceBytes <= memory.size, "weight space outside its piece")
        try bindImages { (memory, base + $0) }
    }

    /// Binds each image where `location` puts its weight-space offset, then makes the views. Once per image's life.
    private func bindImages(_ location: (UInt64) -> (VK.DeviceMemory, UInt64)) throws {
        precondition(allocations.isEmpty && views.isEmpty, "weight images are bound once")
        for (image, offset) in zip(images, offsets) {
            let (memory, at) = location(offset)
            try image.bind(memory, offset: at)
        }
        views = try images.map { try VK.ImageView(image: $0) }
    }

    /// Device bytes `bind` allocates: the weight space, none without images.
    var deviceBytes: UInt64 { images.isEmpty ? 0 : spaceBytes }
    /// Allocations `bind` makes.
    var segmentCount: Int { Int((deviceBytes + segmentSize - 1) / max(segmentSize, 1)) }

    /// Device bytes of all weight allocations.
    var allocatedBytes: UInt64 { allocations.reduce(0) { $0 + $1.size } }
}

import CVulkan

/// The weight images of a session and the one weight-pool allocation they live in.
/// Streaming mode places images with disjoint lifetimes over the same bytes (`WeightPlacement.aliased`);
/// preload mode gives each its own. Images are shared CONCURRENT between the compute and transfer
/// families when those differ, so no queue-ownership transfers are needed.
final class WeightImages {
    let images: [VK.Image]
    let views: [VK.ImageView]
    /// Nil when the bundle has no images.
    let pool: VK.DeviceMemory?
    let placement: WeightPlacement
    /// Pool size had every image its own bytes.
    let unaliasedBytes: UInt64

    init(device: Device, bundle: FMBundle, plan: ExecutionPlan, mode: LoadMode) throws {
        let usage = VK_IMAGE_USAGE_STORAGE_BIT.rawValue | VK_IMAGE_USAGE_TRANSFER_DST_BIT.rawValue
        images = try bundle.images.enumerated().map { i, image in
            try VK.Image(device: device.vk, format: image.format.vkFormat, width: image.width, height: image.height,
                         layers: image.layers, usage: usage, families: device.families,
                         label: "images[\(i)] \(image.name)")
        }
        let requirements = images.map(\.requirements)
        let sizes = requirements.map(\.size)
        let alignments = requirements.map(\.alignment)
        unaliasedBytes = WeightPlacement.separate(sizes: sizes, alignments: alignments).poolSize
        placement = mode == .streaming
            ? WeightPlacement.aliased(sizes: sizes, alignments: alignments, windows: plan.windows)
            : WeightPlacement.separate(sizes: sizes, alignments: alignments)
        if images.isEmpty {
            pool = nil
        } else {
            let typeBits = requirements.reduce(UInt32.max) { $0 & $1.memoryTypeBits }
            guard typeBits != 0 else {
                throw RuntimeError.memory(what: "weight pool", reason: "no memory type suits every weight image "
                                          + "on \(device.info.name), so they cannot share one allocation")
            }
            let pool = try device.allocate(size: placement.poolSize, typeBits: typeBits, required: 0,
                                           preferred: VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT.rawValue,
                                           label: "weight pool (\(images.count) images, \(mode.rawValue))")
            for (image, offset) in zip(images, placement.offsets) { try image.bind(pool, offset: offset) }
            self.pool = pool
        }
        views = try images.map { try VK.ImageView(image: $0) }
    }

    var poolBytes: UInt64 { pool?.size ?? 0 }
}

import CVulkan
import Dispatch

/// Copies weight chunks from the bundle's data section into weight images: decode (memcpy or zstd) into
/// a pinned host-visible staging ring, then a pre-recorded transfer command buffer per chunk copies the
/// slot into its image rows. Every copy signals `loaded = base + ordinal + 1`; a copy whose image may
/// alias an earlier one waits for `computed >= base + issueStep` first.
///
/// Layouts: the first chunk of an image (in issue order) moves the whole image UNDEFINED →
/// TRANSFER_DST_OPTIMAL (its old contents are dead), the last one moves it to GENERAL, where kernels
/// read it. Transitioning per chunk from UNDEFINED would discard rows landed by earlier chunks.
///
/// Used from one thread (the session's host loop); not thread-safe.
final class ChunkStreamer {
    let staging: HostBuffer
    let ring: StagingRing
    private let commandPool: VK.CommandPool
    private let commands: [VkCommandBuffer]
    private let loaded: LoadedBundle
    private let plan: ExecutionPlan
    private let queue: VkQueue
    private let loadedSemaphore: VK.TimelineSemaphore
    private let computedSemaphore: VK.TimelineSemaphore
    private let timeoutNanoseconds: UInt64
    private let zstd = ZstdDecompressor()

    /// Counters of the current run.
    struct Counters {
        var decodeSeconds = 0.0
        var transferWaitSeconds = 0.0
        var bytesStreamed: UInt64 = 0
        var bytesRead: UInt64 = 0
        var chunks = 0
        var submissions = 0
    }

    private var pending: [VK.Submission] = []
    private var pendingOrdinals: Range<Int> = 0..<0
    private(set) var counters = Counters()
    private var loadedBase: UInt64 = 0
    private var computedBase: UInt64 = 0
    private var waitForCompute = true
    /// The highest `loaded` value any submitted copy signals (what to wait for when draining after an error).
    private(set) var submittedLoaded: UInt64 = 0

    init(device: Device, loaded: LoadedBundle, plan: ExecutionPlan, weights: WeightImages, requestedStaging: UInt64,
         loadedSemaphore: VK.TimelineSemaphore, computedSemaphore: VK.TimelineSemaphore,
         timeoutNanoseconds: UInt64) throws {
        self.loaded = loaded
        self.plan = plan
        self.queue = device.transferQueue
        self.loadedSemaphore = loadedSemaphore
        self.computedSemaphore = computedSemaphore
        self.timeoutNanoseconds = timeoutNanoseconds
        let bundle = loaded.bundle
        let sizes = plan.order.map { bundle.chunks[$0].rawSize }
        // Copy source offsets must be multiples of the texel size and of optimalBufferCopyOffsetAlignment.
        let alignment = max(UInt64(device.limits.optimalBufferCopyOffsetAlignment), 256)
        let capacity = StagingRing.capacity(sizes: sizes, alignment: alignment, requested: requestedStaging)
        ring = StagingRing(sizes: sizes, alignment: alignment, capacity: capacity)
        staging = try HostBuffer(device: device, size: capacity, usage: VK_BUFFER_USAGE_TRANSFER_SRC_BIT.rawValue,
                                 label: "staging ring")
        commandPool = try VK.CommandPool(device: device.vk, family: device.transferFamily)
        commands = try commandPool.allocate(plan.order.count)
        for (ordinal, chunkIndex) in plan.order.enumerated() {
            let chunk = bundle.chunks[chunkIndex]
            let image = weights.images[Int(chunk.image)]
            let first = plan.imageFirstOrdinal[Int(chunk.image)] == ordinal
            let last = plan.imageLastOrdinal[Int(chunk.image)] == ordinal
            try commandPool.record(commands[ordinal]) { cb in
                if first {
                    imageBarrier(cb, image, from: VK_IMAGE_LAYOUT_UNDEFINED, to: VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL,
                                 srcAccess: 0, dstAccess: VK_ACCESS_TRANSFER_WRITE_BIT.rawValue,
                                 srcStage: VK_PIPELINE_STAGE_TRANSFER_BIT.rawValue,
                                 dstStage: VK_PIPELINE_STAGE_TRANSFER_BIT.rawValue)
                }
                var region = VkBufferImageCopy()
                region.bufferOffset = ring.offsets[ordinal]
                region.imageSubresource = VkImageSubresourceLayers(
                    aspectMask: VK_IMAGE_ASPECT_COLOR_BIT.rawValue, mipLevel: 0, baseArrayLayer: chunk.layer, layerCount: 1)
                region.imageOffset = VkOffset3D(x: 0, y: Int32(chunk.y), z: 0)
                region.imageExtent = VkExtent3D(width: bundle.images[Int(chunk.image)].width, height: chunk.rows, depth: 1)
                vkCmdCopyBufferToImage(cb, staging.buffer.handle, image.handle, VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL,
                                       1, &region)
                if last {
                    // The semaphore signal after this barrier makes the writes available to the compute queue.
                    imageBarrier(cb, image, from: VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL, to: VK_IMAGE_LAYOUT_GENERAL,
                                 srcAccess: VK_ACCESS_TRANSFER_WRITE_BIT.rawValue, dstAccess: 0,
                                 srcStage: VK_PIPELINE_STAGE_TRANSFER_BIT.rawValue,
                                 dstStage: VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT.rawValue)
                }
            }
        }
    }

    /// Starts a run whose timeline values are offset by the given bases. `waitForCompute` false (preload)
    /// drops the `computed` waits: nothing reads the images while they load.
    func begin(loadedBase: UInt64, computedBase: UInt64, waitForCompute: Bool) {
        self.loadedBase = loadedBase
        self.computedBase = computedBase
        self.waitForCompute = waitForCompute
        submittedLoaded = loadedBase
        counters = Counters()
        pending = []
        pendingOrdinals = 0..<0
    }

    /// Decodes chunk `ordinal` into its staging slot and queues its copy (submitted by `flush`).
    /// When the slot still holds bytes an earlier copy reads, submits what is queued and waits for that copy.
    func stage(_ ordinal: Int) throws {
        if let reuse = ring.reuseWait[ordinal] {
            if pendingOrdinals.contains(reuse) { try flush() }
            let start = monotonicSeconds()
            try loadedSemaphore.wait(for: loadedBase + UInt64(reuse) + 1, timeout: timeoutNanoseconds)
            counters.transferWaitSeconds += monotonicSeconds() - start
        }
        let chunkIndex = plan.order[ordinal]
        let chunk = loaded.bundle.chunks[chunkIndex]
        let payload = loaded.bytes(chunk.payload)
        let destination = staging.bytes(at: ring.offsets[ordinal], count: Int(chunk.rawSize))
        let start = monotonicSeconds()
        do {
            try decode(payload, codec: chunk.codec, into: destination)
        } catch {
            throw RuntimeError.chunkDecode(path: loaded.path, chunk: chunkIndex, reason: "\(error)")
        }
        counters.decodeSeconds += monotonicSeconds() - start
        counters.bytesStreamed += chunk.rawSize
        counters.bytesRead += chunk.payload.size
        counters.chunks += 1

        var submission = VK.Submission(commandBuffers: [commands[ordinal]])
        let issue = UInt64(plan.issueStep[ordinal])
        if waitForCompute && issue > 0 {
            // The copy and the first chunk's layout transition (both TRANSFER stage) wait for the readers.
            submission.waits.append((computedSemaphore, computedBase + issue, VK_PIPELINE_STAGE_TRANSFER_BIT.rawValue))
        }
        submission.signals.append((loadedSemaphore, loadedBase + UInt64(ordinal) + 1))
        if pending.isEmpty { pendingOrdinals = ordinal..<ordinal }
        pending.append(submission)
        pendingOrdinals = pendingOrdinals.lowerBound..<(ordinal + 1)
    }

    /// Submits every queued copy in one vkQueueSubmit.
    func flush() throws {
        guard !pending.isEmpty else { return }
        let batch = pending
        pending = []
        pendingOrdinals = 0..<0
        try VK.submit(batch, to: queue)
        submittedLoaded = batch.last!.signals[0].value
        counters.submissions += batch.count
    }

    /// Big uncompressed chunks are copied by several threads: one thread fills host-visible memory at
    /// ~10 GB/s, eight at ~35 GB/s (measured on the H100 machine, DESIGN.md).
    private func decode(_ payload: UnsafeRawBufferPointer, codec: Codec, into destination: UnsafeMutableRawBufferPointer) throws {
        let parallelThreshold = 8 << 20
        if codec == .none, payload.count == destination.count, payload.count >= parallelThreshold {
            let parts = 8
            let step = (payload.count + parts - 1) / parts
            DispatchQueue.concurrentPerform(iterations: parts) { part in
                let start = part * step
                let count = min(step, payload.count - start)
                if count > 0 {
                    (destination.baseAddress! + start).copyMemory(from: payload.baseAddress! + start, byteCount: count)
                }
            }
        } else {
            try zstd.decode(chunk: payload, codec: codec, rawSize: destination.count, into: destination)
        }
    }
}

/// Records one image memory barrier over every layer of `image`.
func imageBarrier(_ cb: VkCommandBuffer, _ image: VK.Image, from: VkImageLayout, to: VkImageLayout,
                  srcAccess: VkAccessFlags, dstAccess: VkAccessFlags,
                  srcStage: VkPipelineStageFlags, dstStage: VkPipelineStageFlags) {
    var barrier = VkImageMemoryBarrier()
    barrier.sType = VK_STRUCTURE_TYPE_IMAGE_MEMORY_BARRIER
    barrier.srcAccessMask = srcAccess
    barrier.dstAccessMask = dstAccess
    barrier.oldLayout = from
    barrier.newLayout = to
    barrier.srcQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED
    barrier.dstQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED
    barrier.image = image.handle
    barrier.subresourceRange = VkImageSubresourceRange(aspectMask: VK_IMAGE_ASPECT_COLOR_BIT.rawValue, baseMipLevel: 0,
                                                       levelCount: 1, baseArrayLayer: 0, layerCount: image.layers)
    vkCmdPipelineBarrier(cb, srcStage, dstStage, 0, 0, nil, 0, nil, 1, &barrier)
}

/// A global memory barrier (execution + memory dependency over all resources).
func memoryBarrier(_ cb: VkCommandBuffer, srcAccess: VkAccessFlags, dstAccess: VkAccessFlags,
                   srcStage: VkPipelineStageFlags, dstStage: VkPipelineStageFlags) {
    var barrier = VkMemoryBarrier()
    barrier.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER
    barrier.srcAccessMask = srcAccess
    barrier.dstAccessMask = dstAccess
    vkCmdPipelineBarrier(cb, srcStage, dstStage, 0, 1, &barrier, 0, nil, 0, nil)
}

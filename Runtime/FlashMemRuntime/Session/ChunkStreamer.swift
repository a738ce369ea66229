import CVulkan
import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Copies weight chunks from the bundle's data section into weight images: decode (memcpy or zstd) into
/// a pinned host-visible staging ring, then the copies of a wave are recorded (one command buffer per run of
/// chunks of one image, recorded at run time: a few µs, instead of thousands of buffers recorded at session
/// creation) and submitted. A submission signals `loaded = base + o + 1` for its last ordinal o; a copy with
/// issue step s > 0 first waits for `computed >= base + s`: steps before s are done, so no kernel still reads
/// an image whose pool bytes this one may share.
///
/// Layouts: the first chunk of an image (in issue order) moves the whole image UNDEFINED →
/// TRANSFER_DST_OPTIMAL (its old contents are dead), the last one moves it to GENERAL, where kernels
/// read it. Transitioning per chunk from UNDEFINED would discard rows landed by earlier chunks.
///
/// Used from one thread at a time (the session's host loop, or its streamer task); not thread-safe.
final class ChunkStreamer {
    /// The pinned ring chunks are decoded into, and where each chunk goes in it. Both are replaced once by a ring
    /// that holds every chunk when `begin` is asked to hold the streamed set (`holdCapacity`).
    private(set) var staging: HostBuffer
    private(set) var ring: StagingRing
    /// Ring bytes that hold every chunk this streamer copies, where the ring made at `init` does not and they are
    /// at most `SessionOptions.holdStreamedSetBytes`; nil otherwise or once the ring holds them.
    private var holdCapacity: UInt64?
    /// Raw size of each chunk in copy order, and the alignment of their ring slots.
    private let sizes: [UInt64]
    private let alignment: UInt64
    /// Time `init` took to allocate and map its ring (0 when it shares another's): pinning host memory.
    let stagingSeconds: Double
    private let commandPool: VK.CommandPool
    private let loaded: LoadedBundle
    private let plan: ExecutionPlan
    private let device: Device
    private let queue: VkQueue
    private let loadedSemaphore: VK.TimelineSemaphore
    private let computedSemaphore: VK.TimelineSemaphore
    private let timeoutNanoseconds: UInt64
    private let zstd = ZstdDecompressor()
    private let hostRead: HostRead
    /// `SessionOptions.decodeThreads` (0: every core).
    private let decodeThreads: Int
    /// Checks each chunk's checksum the first time it is decoded (nil: a trusted bundle).
    private let verifier: ChunkVerifier?
    /// Most bytes decoded before submitting (see `stage`).
    private let waveBytes: UInt64
    /// With profiling or tracing, where the transfer queue has timestamps and the host can reset queries: a
    /// timestamp before and after every chunk's copy (queries 2·ordinal and 2·ordinal + 1).
    let timestamps: VK.QueryPool?
    /// Record host events (`events`) for a trace.
    private let tracing: Bool
    /// One copy command per chunk instead of one per run of chunks that form one region (`SessionOptions.copyPerChunk`).
    private let copyPerChunk: Bool
    /// Every chunk has a slot of its own in the ring (it holds them all: `StagingRing.holdsAll`), so a chunk decoded
    /// in an earlier run is still there and later runs only copy it, while no other streamer wrote the ring.
    private var decoded: [Bool]

    /// Counters of the current run.
    struct Counters {
        /// When the first copy of the run was submitted (host clock).
        var firstSubmit: Double?
        var decodeSeconds = 0.0
        var transferWaitSeconds = 0.0
        var bytesStreamed: UInt64 = 0
        var bytesRead: UInt64 = 0
        var chunks = 0
        /// vkCmdCopyBufferToImage commands recorded for those chunks.
        var copyCommands = 0
        var submissions = 0
    }

    private var pending: [VK.Submission] = []
    private var pendingOrdinals: Range<Int> = 0..<0
    /// The image and `computed` wait of the last pending submission (chunks of that image may join it).
    private var pendingImage: Int? = nil
    /// The chunk ordinals of each pending submission, recorded into one command buffer by `flush`.
    private var pendingGroups: [[Int]] = []
    /// Command buffers of `commandPool`, recorded per submission group at run time (the pool is reset per run),
    /// and how many this run used.
    private var buffers: [VkCommandBuffer] = []
    private var usedBuffers = 0
    private let images: [VK.Image]
    private var pendingWait: UInt64 = 0
    private(set) var counters = Counters()
    private var loadedBase: UInt64 = 0
    private var computedBase: UInt64 = 0
    private var waitForCompute = true
    /// With `SessionOptions.signalsBeforeWaits`: the run's record of submitted values (a copy waiting for compute is
    /// submitted only once the batch that signals it is).
    private var order: SubmissionOrder? = nil
    /// The highest `loaded` value any submitted copy signals (what to wait for when draining after an error).
    private(set) var submittedLoaded: UInt64 = 0
    /// Per copy ordinal of this run, once submitted: the `loaded` value its submission signals (that of the group's
    /// last chunk). Host waits for a slot use exactly this value rather than `base + ordinal + 1`: waiting for a
    /// value no submission signals is valid Vulkan, but the validation layer Debian ships (1.3.239) only resolves
    /// host waits for values that are signalled exactly (fixed upstream in VVL PR #8519) and otherwise reports
    /// UNASSIGNED-VkSemaphore-state-timeout after stalling 10 s. The group lands at once, so nothing waits longer.
    private var landsWith: [UInt64]
    /// With tracing: this run's decode waves, slot waits and submissions (track `hostStreamer`).
    private(set) var events: [RunTrace.Event] = []

    /// Uses `options.stagingBytes` (ring size), `hostRead`, `timestamps` (time every copy on the transfer queue
    /// where it can), `trace` (record host events) and the wait timeout.
    init(device: Device, loaded: LoadedBundle, plan: ExecutionPlan, weights: WeightMemory, options: SessionOptions,
         loadedSemaphore: VK.TimelineSemaphore, computedSemaphore: VK.TimelineSemaphore,
         sharedStaging: HostBuffer? = nil, verifier: ChunkVerifier? = nil) throws {
        self.loaded = loaded
        self.verifier = verifier
        self.hostRead = options.hostRead
        self.decodeThreads = options.decodeThreads
        self.tracing = options.trace
        self.copyPerChunk = options.copyPerChunk
        self.plan = plan
        self.device = device
        self.queue = device.transferQueue
        self.loadedSemaphore = loadedSemaphore
        self.computedSemaphore = computedSemaphore
        self.timeoutNanoseconds = options.waitTimeoutNanoseconds
        landsWith = [UInt64](repeating: 0, count: plan.order.count)
        decoded = [Bool](repeating: false, count: plan.order.count)
        let bundle = loaded.bundle
        sizes = plan.order.map { bundle.chunks[$0].rawSize }
        alignment = ChunkStreamer.slotAlignment(device)
        var capacity = StagingRing.capacity(sizes: sizes, alignment: alignment, requested: options.stagingBytes)
        let whole = StagingRing.capacity(sizes: sizes, alignment: alignment, requested: .max)
        let mayHold = whole <= options.holdStreamedSetBytes
        // A shared ring grown earlier (a previous residency's warm program) may hold every chunk already.
        if mayHold, let shared = sharedStaging, shared.size >= whole { capacity = whole }
        ring = StagingRing(sizes: sizes, alignment: alignment, capacity: capacity)
        holdCapacity = !ring.holdsAll && mayHold ? whole : nil
        waveBytes = max(capacity / 4, 1)
        // A session's two streamers never run at once: the later one uses the first one's ring when it is big enough.
        let allocationStart = monotonicSeconds()
        staging = try sharedStaging.flatMap { $0.size >= capacity ? $0 : nil }
            ?? ChunkStreamer.makeRing(device: device, bytes: capacity)
        stagingSeconds = monotonicSeconds() - allocationStart
        commandPool = try VK.CommandPool(device: device.vk, family: device.transferFamily)
        images = weights.images
        // Transfer-only queues cannot record vkCmdResetQueryPool: the pool is reset from the host per run.
        let timestampBits = device.physical.queueFamilies[Int(device.transferFamily)].timestampValidBits
        self.timestamps = options.timestamps && timestampBits > 0 && device.hasHostQueryReset && !plan.order.isEmpty
            ? try VK.QueryPool(device: device.vk, timestamps: UInt32(2 * plan.order.count)) : nil
    }

    /// A pinned, mapped buffer of `bytes` that chunks are decoded into and copied from.
    static func makeRing(device: Device, bytes: UInt64, label: String = "staging ring") throws -> HostBuffer {
        try HostBuffer(device: device, size: bytes, usage: VK_BUFFER_USAGE_TRANSFER_SRC_BIT.rawValue, label: label)
    }

    /// Where ring slots start: copy source offsets must be multiples of the texel size and of
    /// optimalBufferCopyOffsetAlignment.
    static func slotAlignment(_ device: Device) -> UInt64 {
        max(UInt64(device.limits.optimalBufferCopyOffsetAlignment), 256)
    }

    /// Records the copies of `group` (ordinals of one image, in order): each run of chunks that `region` can take as
    /// one is one vkCmdCopyBufferToImage, unless `SessionOptions.copyPerChunk`. Fewer commands to record; on an H100
    /// the copy rate was the same either way (ViT-B/16 at 25%: 496 commands → 48, 28.0 → 27.4 GB/s; Benchmarks/README.md).
    private func recordCopies(_ cb: VkCommandBuffer, _ group: [Int]) {
        guard !group.isEmpty else { return }
        var start = 0
        var current = region(group[0...0])!  // one chunk is always one region
        for index in group.indices.dropFirst() {
            if !copyPerChunk, let longer = region(group[start...index]) {
                current = longer
                continue
            }
            recordCopy(cb, group[start..<index], region: current)
            start = index
            current = region(group[index...index])!
        }
        recordCopy(cb, group[start...], region: current)
    }

    /// The one copy region of chunks `run` (consecutive ordinals of one image), or nil (`copyRegion`).
    private func region(_ run: ArraySlice<Int>) -> VkBufferImageCopy? {
        let chunks = run.map { loaded.bundle.chunks[plan.order[$0]] }
        let image = loaded.bundle.images[Int(chunks[0].image)]
        return ChunkStreamer.copyRegion(chunks, offsets: run.map { ring.offsets[$0] }, width: image.width,
                                        layerHeight: image.height)
    }

    /// One vkCmdCopyBufferToImage region that copies `chunks` (of one image, in copy order) from their staging
    /// `offsets`, or nil when they are not one: each chunk's bytes must follow the previous chunk's, and the chunks
    /// be the next rows of one layer, or whole consecutive layers of `layerHeight` rows. A chunk's bytes are its rows
    /// of `width` texels, tightly packed (the validator checks rawSize), as the region reads them.
    static func copyRegion(_ chunks: [Chunk], offsets: [UInt64], width: UInt32, layerHeight: UInt32) -> VkBufferImageCopy? {
        guard let first = chunks.first, offsets.count == chunks.count else { return nil }
        for i in chunks.indices.dropFirst() where offsets[i] != offsets[i - 1] + chunks[i - 1].rawSize {
            return nil
        }
        var layers: UInt32 = 1, y = first.y, height: UInt32 = 0
        if chunks.allSatisfy({ $0.layer == first.layer }) {
            for chunk in chunks {
                guard chunk.y == y + height else { return nil }
                height += chunk.rows
            }
        } else {
            for (i, chunk) in chunks.enumerated() {
                guard chunk.y == 0, chunk.rows == layerHeight, chunk.layer == first.layer + UInt32(i) else { return nil }
            }
            (layers, y, height) = (UInt32(chunks.count), 0, layerHeight)
        }
        var region = VkBufferImageCopy()
        region.bufferOffset = offsets[0]
        region.imageSubresource = VkImageSubresourceLayers(
            aspectMask: VK_IMAGE_ASPECT_COLOR_BIT.rawValue, mipLevel: 0, baseArrayLayer: first.layer, layerCount: layers)
        region.imageOffset = VkOffset3D(x: 0, y: Int32(y), z: 0)
        region.imageExtent = VkExtent3D(width: width, height: height, depth: 1)
        return region
    }

    /// Records the copy of chunks `run` (`region`, from `copyRegion`) from their staging slots into their image: the first chunk of
    /// an image (in copy order) moves the whole image to TRANSFER_DST_OPTIMAL (its old contents are dead), the last
    /// one to GENERAL, where kernels read it. With timestamps, the run's first chunk is timed around the copy and the
    /// others after it (their durations 0, so per-chunk durations still add up to the queue's copy time).
    private func recordCopy(_ cb: VkCommandBuffer, _ run: ArraySlice<Int>, region: VkBufferImageCopy) {
        let first = run.first!, last = run.last!
        let imageIndex = Int(loaded.bundle.chunks[plan.order[first]].image)
        let image = images[imageIndex]
        if let timestamps {
            vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, timestamps.handle, UInt32(2 * first))
        }
        if plan.imageFirstOrdinal[imageIndex] == first {
            imageBarrier(cb, image, from: VK_IMAGE_LAYOUT_UNDEFINED, to: VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL,
                         srcAccess: 0, dstAccess: VK_ACCESS_TRANSFER_WRITE_BIT.rawValue,
                         srcStage: VK_PIPELINE_STAGE_TRANSFER_BIT.rawValue,
                         dstStage: VK_PIPELINE_STAGE_TRANSFER_BIT.rawValue)
        }
        var region = region
        vkCmdCopyBufferToImage(cb, staging.buffer.handle, image.handle, VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL, 1, &region)
        counters.copyCommands += 1
        if plan.imageLastOrdinal[imageIndex] == last {
            // The semaphore signal after this barrier makes the writes available to the compute queue.
            imageBarrier(cb, image, from: VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL, to: VK_IMAGE_LAYOUT_GENERAL,
                         srcAccess: VK_ACCESS_TRANSFER_WRITE_BIT.rawValue, dstAccess: 0,
                         srcStage: VK_PIPELINE_STAGE_TRANSFER_BIT.rawValue,
                         dstStage: VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT.rawValue)
        }
        if let timestamps {
            vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, timestamps.handle, UInt32(2 * first + 1))
            for ordinal in run.dropFirst() {
                vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, timestamps.handle, UInt32(2 * ordinal))
                vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, timestamps.handle, UInt32(2 * ordinal + 1))
            }
        }
    }

    /// A command buffer of the pool not yet recorded in this run (more are allocated as needed).
    private func nextCommandBuffer() throws -> VkCommandBuffer {
        if usedBuffers == buffers.count { buffers += try commandPool.allocate(max(buffers.count, 16)) }
        usedBuffers += 1
        return buffers[usedBuffers - 1]
    }

    /// Starts a run whose timeline values are offset by the given bases. `waitForCompute` false (preload)
    /// drops the `computed` waits: nothing reads the images while they load. `hold`: a warm run, which may replace
    /// the ring by one that holds every chunk (`holdCapacity`; the first run never does, so a session's start-up
    /// and first output do not wait for pinning more host memory). Returns whether it did.
    @discardableResult
    func begin(loadedBase: UInt64, computedBase: UInt64, waitForCompute: Bool, order: SubmissionOrder? = nil,
               hold: Bool = false) throws -> Bool {
        var grew = false
        if hold, let capacity = holdCapacity {
            staging = try ChunkStreamer.makeRing(device: device, bytes: capacity,
                                                 label: "staging ring (holds the streamed set)")
            ring = StagingRing(sizes: sizes, alignment: alignment, capacity: capacity)
            holdCapacity = nil
            grew = true
        }
        self.order = order
        self.loadedBase = loadedBase
        self.computedBase = computedBase
        self.waitForCompute = waitForCompute
        submittedLoaded = loadedBase
        counters = Counters()
        events = []
        timestamps?.resetFromHost()  // the previous run's copies have all completed
        pending = []
        pendingGroups = []
        pendingOrdinals = 0..<0
        pendingImage = nil
        // The previous run's copies have all completed: their command buffers can be recorded again.
        try? commandPool.reset()
        usedBuffers = 0
        if staging.writer != ObjectIdentifier(self) { decoded = decoded.map { _ in false } }
        return grew
    }

    /// Decodes chunks `ordinals` into their staging slots and queues their copies (submitted by `flush`).
    ///
    /// Chunks go in waves decoded in parallel (one host thread fills host-visible memory at ~10 GB/s, eight
    /// at ~35 GB/s on the H100 machine, DESIGN.md) and submitted as soon as decoded. A wave holds at most a
    /// quarter of the ring, so the copies of earlier waves run while it is decoded, and it ends before the
    /// first chunk whose slot still holds bytes a copy of the same wave reads. Before a wave, the host waits on
    /// `loaded` for the newest earlier copy whose slot the wave overwrites.
    func stage(_ ordinals: Range<Int>) throws {
        var start = ordinals.lowerBound
        while start < ordinals.upperBound {
            var end = start
            var reuse: Int? = nil
            var bytes: UInt64 = 0
            while end < ordinals.upperBound {
                if let r = ring.reuseWait[end] {
                    if r >= start { break }
                    reuse = max(reuse ?? r, r)
                }
                let size = loaded.bundle.chunks[plan.order[end]].rawSize
                if end > start && bytes + size > waveBytes { break }
                bytes += size
                end += 1
            }
            if let reuse {
                if pendingOrdinals.contains(reuse) { try flush() }
                let waitStart = monotonicSeconds()
                try loadedSemaphore.wait(for: landsWith[reuse], timeout: timeoutNanoseconds)
                let waitEnd = monotonicSeconds()
                counters.transferWaitSeconds += waitEnd - waitStart
                if tracing {
                    events.append(RunTrace.Event(track: .hostStreamer, name: "wait for staging slot", start: waitStart,
                                                 duration: waitEnd - waitStart, args: ["copy": "\(reuse)"]))
                }
            }
            try decode(start..<end)
            for ordinal in start..<end { enqueue(ordinal) }
            // Submit at once: the copies of this wave run while the host decodes the next.
            try flush()
            start = end
        }
    }

    private func enqueue(_ ordinal: Int) {
        let chunk = loaded.bundle.chunks[plan.order[ordinal]]
        counters.bytesStreamed += chunk.rawSize
        counters.chunks += 1
        let issue = UInt64(plan.issueStep[ordinal])
        let wait = waitForCompute && issue > 0 ? computedBase + issue : 0
        let signal = loadedBase + UInt64(ordinal) + 1
        if pending.isEmpty { pendingOrdinals = ordinal..<ordinal }
        pendingOrdinals = pendingOrdinals.lowerBound..<(ordinal + 1)
        // Consecutive chunks of one image with the same wait go in one VkSubmitInfo that signals once, for its
        // last chunk: thousands of one-chunk submissions cost the transfer queue more than the copies of small
        // chunks. Waiters see no difference: steps wait for an image's last chunk, ring slots for a chunk of
        // a flushed wave, and every flushed group signals its last ordinal (timeline values only grow).
        if let last = pending.indices.last, pendingImage == Int(chunk.image), pendingWait == wait {
            pendingGroups[last].append(ordinal)
            pending[last].signals[0].value = signal
            return
        }
        var submission = VK.Submission()  // its command buffer is recorded by `flush`
        if wait > 0 {
            // The copy and the first chunk's layout transition (both TRANSFER stage) wait for the readers.
            submission.waits.append((computedSemaphore, wait, VK_PIPELINE_STAGE_TRANSFER_BIT.rawValue))
        }
        submission.signals.append((loadedSemaphore, signal))
        pending.append(submission)
        pendingGroups.append([ordinal])
        pendingImage = Int(chunk.image)
        pendingWait = wait
    }

    /// Decodes the chunks of a wave that are not in their slots already (`decoded`). Work is cut into pieces
    /// (uncompressed chunks split, zstd frames whole) small enough that a wave keeps every core busy, but not under
    /// 256 KiB; one piece is done inline.
    private func decode(_ wave: Range<Int>) throws {
        let ordinals = wave.filter { !decoded[$0] }
        guard !ordinals.isEmpty else { return }
        staging.writer = ObjectIdentifier(self)
        for ordinal in ordinals { counters.bytesRead += loaded.bundle.chunks[plan.order[ordinal]].payload.size }
        let pieceBytes = Int(min(max(waveBytes / UInt64(2 * activeProcessors), 256 << 10), 4 << 20))
        var pieces: [(ordinal: Int, offset: Int, count: Int)] = []
        for ordinal in ordinals {
            let chunk = loaded.bundle.chunks[plan.order[ordinal]]
            let raw = Int(chunk.rawSize)
            if chunk.codec == .none && chunk.payload.size == chunk.rawSize && raw > pieceBytes {
                for offset in stride(from: 0, to: raw, by: pieceBytes) {
                    pieces.append((ordinal, offset, min(pieceBytes, raw - offset)))
                }
            } else {
                pieces.append((ordinal, 0, raw))
            }
        }
        // Chunks not yet verified: hashed in the mapping alongside the copies, or in their slots once decoded.
        var hashMapping: [Int] = [], hashSlot: [Int] = []
        if let verifier {
            for ordinal in ordinals where verifier.needsCheck(plan.order[ordinal]) {
                if verifier.hashesMapping(plan.order[ordinal], hostRead: hostRead) {
                    hashMapping.append(ordinal)
                } else {
                    hashSlot.append(ordinal)
                }
            }
        }
        let start = monotonicSeconds()
        try perform(pieces.count + hashMapping.count) { index, zstd in
            if index < pieces.count {
                try decodePiece(pieces[index], zstd: zstd)
            } else {
                try verify(hashMapping[index - pieces.count])
            }
        }
        if !hashSlot.isEmpty { try perform(hashSlot.count) { index, _ in try verify(hashSlot[index]) } }
        if ring.holdsAll { for ordinal in ordinals { decoded[ordinal] = true } }
        let end = monotonicSeconds()
        counters.decodeSeconds += end - start
        if tracing {
            let bytes = ordinals.reduce(UInt64(0)) { $0 + loaded.bundle.chunks[plan.order[$1]].rawSize }
            events.append(RunTrace.Event(track: .hostStreamer, name: "decode", start: start, duration: end - start,
                                         args: ["copies": "\(wave.lowerBound)..<\(wave.upperBound)",
                                                "bytes": "\(bytes)", "pieces": "\(pieces.count)"]))
        }
    }

    /// Runs `body(0..<count)` on the host's cores, at most `decodeThreads` at once where that is set (inline, with
    /// the streamer's own zstd context, when count is 1; else with nil: each call makes its own) and throws the
    /// first failure.
    private func perform(_ count: Int, _ body: (Int, ZstdDecompressor?) throws -> Void) throws {
        if count == 1 { return try body(0, zstd) }
        if decodeThreads > 0 && decodeThreads < count {
            // `decodeThreads` workers, worker w taking indices w, w + workers, …
            let workers = decodeThreads
            return try perform(workers) { worker, _ in
                for index in stride(from: worker, to: count, by: workers) { try body(index, nil) }
            }
        }
        // Each iteration writes only its own slot of `failures`, so no lock is needed.
        let failures = UnsafeMutableBufferPointer<Error?>.allocate(capacity: count)
        failures.initialize(repeating: nil)
        defer {
            _ = failures.deinitialize()  // releases the errors (a bare deallocate leaked them: LeakSanitizer)
            failures.deallocate()
        }
        DispatchQueue.concurrentPerform(iterations: count) { index in
            do { try body(index, nil) } catch { failures[index] = error }
        }
        if let error = failures.lazy.compactMap({ $0 }).first { throw error }
    }

    /// Checks the checksum of copy `ordinal`'s chunk (`verifier` must be set): in the mapping or its staging slot.
    private func verify(_ ordinal: Int) throws {
        let index = plan.order[ordinal]
        let chunk = loaded.bundle.chunks[index]
        let bytes = verifier!.hashesMapping(index, hostRead: hostRead) ? loaded.bytes(chunk.payload)
            : UnsafeRawBufferPointer(staging.bytes(at: ring.offsets[ordinal], count: Int(chunk.rawSize)))
        try verifier!.check(index, decoded: bytes)
    }

    /// One piece: a byte range of an uncompressed chunk, or a whole chunk of any codec. Thread-safe when
    /// `zstd` is nil (a context per call).
    private func decodePiece(_ piece: (ordinal: Int, offset: Int, count: Int), zstd: ZstdDecompressor?) throws {
        let chunk = loaded.bundle.chunks[plan.order[piece.ordinal]]
        let payload = loaded.bytes(chunk.payload)
        let slot = staging.bytes(at: ring.offsets[piece.ordinal], count: Int(chunk.rawSize))
        do {
            if chunk.codec == .none, hostRead == .pread, let file = loaded.file {
                try file.read(UnsafeRawBufferPointer(rebasing: payload[piece.offset..<(piece.offset + piece.count)]),
                              into: slot.baseAddress! + piece.offset)
            } else if piece.count < Int(chunk.rawSize) {
                (slot.baseAddress! + piece.offset).copyMemory(from: payload.baseAddress! + piece.offset, byteCount: piece.count)
            } else if let zstd {
                try zstd.decode(chunk: payload, codec: chunk.codec, rawSize: slot.count, into: slot)
            } else {
                try Codec.decode(chunk: payload, codec: chunk.codec, rawSize: slot.count, into: slot)
            }
        } catch {
            throw decodeError(piece.ordinal, error)
        }
    }

    private func decodeError(_ ordinal: Int, _ error: Error) -> Error {
        if error is RuntimeError { return error }
        return RuntimeError.chunkDecode(path: loaded.path, chunk: plan.order[ordinal], reason: "\(error)")
    }

    /// Submits every queued copy in one vkQueueSubmit.
    func flush() throws {
        guard !pending.isEmpty else { return }
        var batch = pending
        for (index, group) in pendingGroups.enumerated() {
            let cb = try nextCommandBuffer()
            try commandPool.record(cb) { cb in recordCopies(cb, group) }
            batch[index].commandBuffers = [cb]
            for ordinal in group { landsWith[ordinal] = batch[index].signals[0].value }
        }
        pending = []
        pendingGroups = []
        pendingImage = nil
        let submitted = pendingOrdinals
        pendingOrdinals = 0..<0
        let start = monotonicSeconds()
        if counters.firstSubmit == nil { counters.firstSubmit = start }
        if let order {
            // Each submission that waits for compute goes once the batch signalling its value is submitted.
            var from = 0
            for (index, submission) in batch.enumerated() {
                guard let wait = submission.waits.first?.value else { continue }
                if from < index {
                    try device.submit(Array(batch[from..<index]), to: queue)
                    order.copiesSubmitted(through: batch[index - 1].signals[0].value)
                    from = index
                }
                guard order.awaitCompute(wait) else { throw SubmissionOrder.Abandoned() }
            }
            try device.submit(Array(batch[from...]), to: queue)
            order.copiesSubmitted(through: batch.last!.signals[0].value)
        } else {
            try device.submit(batch, to: queue)
        }
        if tracing {
            events.append(RunTrace.Event(track: .hostStreamer, name: "submit copies", start: start,
                                         duration: monotonicSeconds() - start,
                                         args: ["copies": "\(submitted.lowerBound)..<\(submitted.upperBound)"]))
        }
        submittedLoaded = batch.last!.signals[0].value
        counters.submissions += batch.count
    }
}

extension ChunkStreamer {
    /// Per copy ordinal, its start and end on the transfer queue in device ticks (masked to the valid bits),
    /// from the latest run; nil without timestamps.
    func copyTicks() throws -> [(start: UInt64, end: UInt64)]? {
        guard let timestamps else { return nil }
        let values = try timestamps.results()
        return plan.order.indices.map { (values[2 * $0], values[2 * $0 + 1]) }
    }

    /// The label of copy `ordinal` in traces: its chunk, image and bytes.
    func copyLabel(_ ordinal: Int) -> (name: String, args: [String: String]) {
        let index = plan.order[ordinal]
        let chunk = loaded.bundle.chunks[index]
        return ("copy \(loaded.bundle.images[Int(chunk.image)].name)",
                ["chunk": "\(index)", "ordinal": "\(ordinal)", "bytes": "\(chunk.rawSize)", "layer": "\(chunk.layer)",
                 "rows": "\(chunk.y)..<\(chunk.y + chunk.rows)"])
    }
}

/// Cores the host may use for decoding (sysconf(_SC_NPROCESSORS_ONLN)).
private let activeProcessors: Int = max(Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))), 1)

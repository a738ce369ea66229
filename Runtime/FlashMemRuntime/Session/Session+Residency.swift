import CVulkan

/// What a session holds in device memory while its `DeviceContext` lets it: the arena, the weight images and their
/// weight space, the descriptor sets that point into them, the command buffers recorded against them, and the run
/// programs (their streamers copy into these images). Made by `Session.buildResidency`.
///
/// In a context's pool the arena and weight space are the session's fixed range of it, and the residency lasts as
/// long as the session: when the context gives the range to another session, `clobber` marks its contents invalid
/// and the next run copies them again (`reload`). Outside a pool the arena is one allocation and the weight space
/// one per segment, and the residency is dropped as a whole when the context takes the memory back (Vulkan binds
/// memory to a buffer or image for its whole life, so the next acquisition makes new ones and records again).
final class SessionResidency {
    let arena: VK.Buffer
    let weights: WeightMemory
    let descriptorPool: VK.DescriptorPool
    /// Per step: its descriptor set (shared by steps with the same kernel and bindings).
    let stepSets: [VkDescriptorSet]
    let computePool: VK.CommandPool
    let uploadCommand: VkCommandBuffer
    let readbackCommand: VkCommandBuffer
    /// What the first run executes (every chunk), and what later runs do (streamed images' chunks only; the same
    /// object when nothing is resident). Preload: the first copies everything before any step, later runs nothing.
    /// `first` is nil once the resident images are loaded.
    var first: RunProgram?
    let warm: RunProgram
    /// In a pool: the first program, kept to be `first` again after a clobber (its compute command buffers stay
    /// recorded; its copies move every image from UNDEFINED, which is what memory another session wrote needs).
    let reload: RunProgram?
    /// In a pool: the program `Session.prefetch` loads the resident images with in streaming mode, once made.
    var prefetchLoad: RunProgram?
    /// Whether the resident constants are in the arena (`Session.ensureConstants`).
    var constantsUploaded = false
    /// The resident constants' staging and recorded copy, made by the first upload and submitted again after a
    /// clobber.
    var constants: ConstantUpload?
    /// Objects submissions used that must outlive them (constants staging, a prefetch's program): freed with the
    /// residency, after `Device.drain`.
    var keepAlive: [AnyObject] = []

    init(arena: VK.Buffer, weights: WeightMemory, descriptorPool: VK.DescriptorPool, stepSets: [VkDescriptorSet],
         computePool: VK.CommandPool, commands: [VkCommandBuffer], first: RunProgram?, warm: RunProgram, pooled: Bool) {
        self.arena = arena
        self.weights = weights
        self.descriptorPool = descriptorPool
        self.stepSets = stepSets
        self.computePool = computePool
        uploadCommand = commands[0]
        readbackCommand = commands[1]
        self.first = first
        self.warm = warm
        reload = pooled ? first : nil
    }

    /// Another session of the pool wrote over this one's range (the context's lock held; this session unpinned, so
    /// nothing of it is in flight): resident images and constants must be copied again by the next run or prefetch.
    func clobber() {
        precondition(reload != nil, "only a pool residency outlives its contents")
        first = reload
        weights.residentLoaded = false
        constantsUploaded = false
    }
}

/// What `Session.prefetch` did.
public struct PrefetchReport: Sendable {
    /// Whether the session holds its device memory now (false: the budget had no room without waiting).
    public var resident: Bool
    /// Whether this call acquired the memory (built the arena, weight space and command buffers, or took its range
    /// of the context's pool back).
    public var acquired: Bool
    /// Weight bytes copied to the device.
    public var bytesCopied: UInt64
    public var seconds: Double
}

extension Session {
    // MARK: Public

    /// Acquires the session's device memory now (waiting for room if sessions that are running hold it), so the
    /// first run does not pay for it. No copies.
    public func prepare() throws {
        try operationLock.locked {
            _ = try acquire(wait: true)
            defer { context.unpin(self) }
            try ensureConstants()
        }
    }

    /// Copies what the next run would copy first, ahead of it, when the context's budget has room now without
    /// waiting (it may take back memory of sessions not in use): the device memory is acquired and the resident
    /// images are loaded on the transfer queue (in preload mode, every image), so the next run copies only the
    /// streamed images' chunks. Does nothing when the resident images are already loaded or there is no room.
    /// Streamed images are not prefetched: their slots are shared with later images of the same run.
    /// `Pipeline` calls it for model i+1 once model i has issued its last copy.
    @discardableResult
    public func prefetch() throws -> PrefetchReport {
        try operationLock.locked {
            let start = monotonicSeconds()
            let outcome = try acquire(wait: false)
            guard outcome != .noRoom else {
                return PrefetchReport(resident: false, acquired: false, bytesCopied: 0, seconds: monotonicSeconds() - start)
            }
            defer { context.unpin(self) }
            var copied: UInt64 = 0
            if let residency, let first = residency.first {
                let load: RunProgram
                if options.loadMode == .preload {
                    load = first
                } else if let kept = residency.prefetchLoad {
                    load = kept
                } else {
                    load = try program(residency.weights, residency.computePool, copies: residency.weights.resident,
                                       streaming: false, sharing: first)
                    if residency.reload != nil { residency.prefetchLoad = load } else { residency.keepAlive.append(load) }
                }
                copied = try self.load(load).bytesStreamed
                residency.first = nil
                context.locked { residency.weights.residentLoaded = true }
            }
            // After the weights: the upload runs on the compute queue, behind the model running now.
            try ensureConstants()
            return PrefetchReport(resident: true, acquired: outcome == .acquired, bytesCopied: copied,
                                  seconds: monotonicSeconds() - start)
        }
    }

    /// Gives the session's device memory back to its context now (the next run acquires it again and copies every
    /// chunk again). An operation of this session in progress on another thread finishes first (they take turns).
    /// Returns whether the memory is given back: false only while the context has it pinned for an operation.
    @discardableResult
    public func releaseDeviceMemory() -> Bool {
        operationLock.locked { context.release(self) }
    }

    // MARK: Acquisition

    enum Acquisition: Equatable {
        /// The session already held its memory.
        case held
        /// This call built the residency.
        case acquired
        /// No room without waiting (`wait: false` only).
        case noRoom
    }

    /// Makes sure the session holds its device memory and pins it until `context.unpin(self)` (except `.noRoom`).
    /// Call with `operationLock` held.
    func acquire(wait: Bool) throws -> Acquisition {
        let pool = context.pool(for: self)
        switch context.reserve(self, wait: wait, pooled: pool != nil) {
        case .held: return .held
        case .reclaimed: return .acquired  // the residency, clobbered, copies its contents again
        case .noRoom: return .noRoom
        case let .reserved(offset):
            do {
                context.attach(self, try buildResidency(in: offset.flatMap { offset in pool.map { ($0, offset) } }))
                return .acquired
            } catch {
                context.cancel(self)
                throw error
            }
        }
    }

    /// Copies the resident constants into the arena once per residency, and again after a clobber (on the compute
    /// queue, so a prefetch does it after its weight copies, which go on the transfer queue while another model
    /// computes).
    func ensureConstants() throws {
        guard let residency, !residency.constantsUploaded else { return }
        let upload = try residency.constants ?? makeConstantUpload(arena: residency.arena)
        residency.constants = upload
        try submit(upload)
        residency.constantsUploaded = true
    }

    /// Binds the arena and the weight space (the unbound ones `init` made, else new ones) in `pool`'s memory at its
    /// offset (the session's range), or in allocations of their own when nil; writes the descriptor sets, makes the
    /// run programs and records the command buffers (`ensureConstants` fills the arena's constants).
    func buildResidency(in pool: (memory: VK.DeviceMemory, offset: UInt64)?) throws -> SessionResidency {
        var phaseStart = monotonicSeconds()
        let bundle = self.bundle.bundle
        let (arena, weights) = try unbound
            ?? (Session.makeArena(bundle: bundle, device: device),
                WeightMemory(device: device, loaded: self.bundle, mode: options.loadMode))
        unbound = nil
        let arenaRequirements = arena.requirements
        if let pool {
            try weights.bind(pool.memory, at: pool.offset)
            try arena.bind(pool.memory, offset: pool.offset + piece.arenaOffset)
        } else {
            try arena.bind(device.allocate(size: arenaRequirements.size, typeBits: arenaRequirements.memoryTypeBits,
                                           required: 0, preferred: VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT.rawValue,
                                           label: "arena (\(bundle.meta.arenaSize) bytes)"))
            try weights.bind(device: device)
        }
        startup.weightSeconds = monotonicSeconds() - phaseStart
        let (descriptorPool, stepSets) = try Session.writeDescriptorSets(bundle: bundle, device: device,
                                                                         pipelines: pipelines, arena: arena, weights: weights)
        let computePool = try VK.CommandPool(device: device.vk, family: device.computeFamily)
        let commands = try computePool.allocate(2)

        // The first run copies every chunk; later runs the streamed images' chunks (none in preload mode).
        phaseStart = monotonicSeconds()
        var earlySeconds = 0.0
        if let early = earlyRing?.take() {
            earlyRing = nil
            keptStaging = keptStaging ?? early.buffer
            earlySeconds = early.seconds
            startup.stagingWaitSeconds = early.waited
        }
        let streamed = weights.resident.map { !$0 }
        let first: RunProgram, warm: RunProgram
        switch options.loadMode {
        case .streaming:
            first = try program(weights, computePool, copies: nil, streaming: true)
            warm = streamed.contains(false)
                ? try program(weights, computePool, copies: streamed, streaming: streamed.contains(true), sharing: first)
                : first
        case .preload:
            first = try program(weights, computePool, copies: nil, streaming: false)
            warm = try program(weights, computePool, copies: streamed, streaming: false, sharing: first)
        }
        startup.programSeconds = monotonicSeconds() - phaseStart
        startup.stagingSeconds = earlySeconds + (first.streamer?.stagingSeconds ?? 0)
            + (warm === first ? 0 : warm.streamer?.stagingSeconds ?? 0)
        let residency = SessionResidency(arena: arena, weights: weights, descriptorPool: descriptorPool,
                                         stepSets: stepSets, computePool: computePool, commands: commands,
                                         first: first, warm: warm, pooled: pool != nil)
        keptStaging = first.streamer?.staging ?? warm.streamer?.staging ?? keptStaging
        memory.arenaBytes = arenaRequirements.size
        memory.weightBytes = weights.deviceBytes
        memory.weightAllocations = weights.allocations.count
        memory.stagingBytes = max(first.streamer?.staging.size ?? 0, warm.streamer?.staging.size ?? 0)

        phaseStart = monotonicSeconds()
        try recordCommands(residency)
        startup.recordSeconds = monotonicSeconds() - phaseStart
        startup.residencyBuilds += 1
        return residency
    }

    /// A run program over `weights` (`RunProgram`), its staging ring shared with `sharing`'s or the one the session
    /// kept from its previous residency.
    func program(_ weights: WeightMemory, _ pool: VK.CommandPool, copies: [Bool]?, streaming: Bool,
                 sharing: RunProgram? = nil) throws -> RunProgram {
        try RunProgram(loaded: bundle, device: device, copies: copies, streaming: streaming, weights: weights,
                       options: options, commandPool: pool, loadedSemaphore: loadedSemaphore,
                       computedSemaphore: computedSemaphore, sharedStaging: sharing?.streamer?.staging ?? keptStaging,
                       verifier: verifier)
    }
}

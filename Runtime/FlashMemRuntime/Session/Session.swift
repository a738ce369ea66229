import CVulkan
import Dispatch
import Synchronization

/// A compiled model ready to run on one device: the thing apps embed.
///
/// Creating a session validates the bundle (`LoadedBundle.validate()`) and checks it against the device, then
/// creates what lasts as long as the session: a pipeline per kernel (with its specialization constants), the I/O
/// staging and the timeline semaphores. What takes device memory (`SessionResidency`: ONE arena buffer with ONE
/// allocation, the weight images where the bundle's load plan places them, one allocation per segment, or both in
/// one range of the context's pool (`DevicePool`); a descriptor
/// set per distinct (kernel, bindings); the command buffers of the first and of later runs, recorded once and
/// replayed; resident constants copied into the arena) is acquired from the session's `DeviceContext` within its
/// budget: at once by `init(bundle:device:options:)` (a context of its own, no budget), and on the first run
/// (or `prepare()` / `prefetch()`) by `init(bundle:context:options:)`. The context may take it back between runs
/// when another session needs the room; the next run then acquires it again and copies every chunk again (in
/// the context's pool the objects and recordings stay: only the contents are copied again).
/// `run` then only converts inputs, decodes and copies weight chunks, submits and converts outputs.
///
/// Lifetimes: the first streamed run copies every chunk (resident images then stay loaded); later runs copy
/// only the chunks of streamed images, so with everything resident they copy nothing.
///
/// Thread safety: `run`, `prepare`, `prefetch`, `loadWeights` and `releaseDeviceMemory` of one session take turns
/// (a lock per session); sessions may run from several threads at once (queue submission is locked in `Device`,
/// the budget in `DeviceContext`). `lastStats`, `memory` and `startup` are behind a lock of their own and
/// `isResident` / `weightsResident` behind the context's, so any thread may read them at any time; `lastStats` is
/// then the latest finished run's, whichever thread ran it (a caller that needs its own run's figures runs
/// from one thread at a time). Hence `Sendable`. Keeps its `DeviceContext`, `Device` and `LoadedBundle` alive.
public final class Session: @unchecked Sendable {
    /// The bundle the session runs (its weight chunks are read from it on every run that copies them).
    public let bundle: LoadedBundle
    /// The device the session runs on: its context's.
    public let device: Device
    /// Where the session's device memory comes from (its own, unbounded one with `init(bundle:device:options:)`).
    public let context: DeviceContext
    /// How the session was made: load mode, staging, profiling.
    public let options: SessionOptions
    /// The session's own device allocations (what it holds while resident; see `isResident`).
    public internal(set) var memory: MemoryReport {
        get { reports.withLock { $0.memory } }
        set { reports.withLock { $0.memory = newValue } }
    }
    /// Device bytes the session needs to run: arena + weight space (`memory.deviceBytes`), charged against
    /// the context's budget while it holds them.
    public let footprintBytes: UInt64
    /// How the arena and weight space sit in one range of a context's pool (the same resources as `footprintBytes`,
    /// with alignment padding between them).
    let piece: MemoryPiece
    /// What creating the session cost, and whether its pipelines came from the cache. The weight, program and
    /// recording phases are those of the latest acquisition of device memory.
    public internal(set) var startup: StartupReport {
        get { reports.withLock { $0.startup } }
        set { reports.withLock { $0.startup = newValue } }
    }
    /// Statistics of the latest successful `run`.
    public internal(set) var lastStats: RunStats? {
        get { reports.withLock { $0.lastStats } }
        set { reports.withLock { $0.lastStats = newValue } }
    }
    /// Whether the resident weights are loaded (by the first run, `loadWeights()` in preload mode, or `prefetch()`);
    /// later runs then copy only the streamed images' chunks.
    public var weightsResident: Bool { context.locked { residency?.weights.residentLoaded ?? false } }
    /// Whether the session holds its device memory now (its arena and weight space) with valid contents (false
    /// after its context took it back: freed, or, in the context's pool, overwritten by another session).
    public var isResident: Bool { context.holds(self) }

    /// The model's inputs (name, element type, shape): what `run` needs, every one.
    public var inputs: [IOBinding] { bundle.bundle.meta.inputs }
    /// The model's outputs (name, element type, shape), in the order `run(inputs: [HostTensor])` returns them.
    public var outputs: [IOBinding] { bundle.bundle.meta.outputs }

    let pipelines: [VK.Pipeline]
    let io: IOStaging
    /// The device state, nil while the context holds none for this session. Set and cleared under the context's
    /// lock; read by this session's own operations while the context has it pinned.
    var residency: SessionResidency?
    /// `memory`, `startup` and `lastStats`: written by this session's operations (which take turns), read by anyone.
    private let reports: Mutex<Reports>
    struct Reports {
        var memory: MemoryReport
        var startup: StartupReport
        var lastStats: RunStats?
    }
    /// The unbound arena buffer and weight images `init` made to learn the footprint: the first acquisition
    /// binds them instead of making new ones.
    var unbound: (arena: VK.Buffer, weights: WeightMemory)?
    /// The staging ring of the latest residency, reused by the next one (host memory; not charged to the budget).
    var keptStaging: HostBuffer?
    /// The first run's staging ring, being allocated while `init` goes on; taken by the first residency.
    var earlyRing: EarlyRing?
    let loadedSemaphore: VK.TimelineSemaphore
    let computedSemaphore: VK.TimelineSemaphore
    /// The values every submitted signal has reached on the two timelines (the next run's bases).
    var loadedValue: UInt64 = 0
    var computedValue: UInt64 = 0
    let queryPool: VK.QueryPool?
    /// Checks chunk checksums as they first stream (nil with `options.verifyChunks` off).
    let verifier: ChunkVerifier?
    /// Serializes this session's run, prepare, prefetch and release.
    let operationLock = ConditionLock()
    /// Where the `async` variants block (Session+Async.swift): a serial queue, so they run one after another.
    let asyncQueue = DispatchQueue(label: "FlashMem.Session")
    /// With `options.trace`: the current run's host-thread events, the first compute submission and when the host
    /// saw the last copy land (host clock).
    var hostEvents: [RunTrace.Event] = []
    var firstComputeSubmit: Double?
    var copiesLanded: Double?
    /// The latest outputs' byte arrays, reused by the next run when the caller has let go of them.
    var outputStorage: [[UInt8]] = []

    var timeoutNanoseconds: UInt64 { options.waitTimeoutNanoseconds }

    // The residency's parts, for code that runs while the context has the session pinned.
    var arena: VK.Buffer { residency!.arena }
    var weights: WeightMemory { residency!.weights }
    var warm: RunProgram { residency!.warm }
    var first: RunProgram? {
        get { residency!.first }
        set { residency!.first = newValue }
    }

    /// A session with device memory of its own: a context with no budget but the plan's, acquired at once
    /// (errors about memory surface here).
    public convenience init(bundle loaded: LoadedBundle, device: Device, options: SessionOptions = SessionOptions()) throws {
        try self.init(bundle: loaded, context: DeviceContext(device: device, budgetBytes: nil), options: options)
        try prepare()
    }

    /// A session whose device memory comes from `context`, within its budget, acquired when it first runs (or on
    /// `prepare()` / `prefetch()`). Throws `RuntimeError.exceedsContextBudget` when its own plan (arena + weight
    /// space on this device) cannot fit in the context's budget even alone.
    public init(bundle loaded: LoadedBundle, context: DeviceContext, options: SessionOptions = SessionOptions()) throws {
        let device = context.device
        self.bundle = loaded
        self.device = device
        self.context = context
        self.options = options
        let bundle = loaded.bundle
        // The one validation (the reader's, free for files it read), then the device: nothing touches the GPU before.
        try loaded.validate()
        try device.checkRequirements(of: loaded)

        // The first run copies every chunk: its ring (as `ChunkStreamer` sizes it) is pinned meanwhile.
        let chunkSizes = bundle.chunks.map(\.rawSize)
        earlyRing = chunkSizes.isEmpty ? nil : EarlyRing(device: device, capacity: StagingRing.capacity(
            sizes: chunkSizes, alignment: ChunkStreamer.slotAlignment(device), requested: options.stagingBytes))

        let pipelineStart = monotonicSeconds()
        let modules = try bundle.spirv.enumerated().map {
            try VK.ShaderModule(device: device.vk, code: $1, label: "spirv[\($0)]")
        }
        let layouts = try bundle.kernels.map { kernel in
            let setLayout = try VK.DescriptorSetLayout(device: device.vk, types: kernel.bindings.map(\.vkDescriptorType))
            return try VK.PipelineLayout(setLayout: setLayout, pushConstantSize: kernel.pushConstantSize)
        }
        // Pipelines compile in parallel (drivers compile each on the calling thread), through a pipeline cache
        // saved in a user cache folder, so the next process finds them compiled.
        let cacheFile = options.pipelineCache ? PipelineCacheFile(bundle: bundle, device: device,
                                                                  directory: options.pipelineCacheDirectory) : nil
        let cached = cacheFile?.load()
        let cache = try VK.PipelineCache(device: device.vk, initialData: cached)
        var made = [Result<VK.Pipeline, Error>?](repeating: nil, count: bundle.kernels.count)
        made.withUnsafeMutableBufferPointer { made in
            DispatchQueue.concurrentPerform(iterations: bundle.kernels.count) { i in
                let kernel = bundle.kernels[i]
                made[i] = Result {
                    try VK.Pipeline(module: modules[Int(kernel.spirv)], layout: layouts[i],
                                    specConstants: kernel.specConstants, cache: cache,
                                    label: "kernels[\(i)] \(kernel.name)")
                }
            }
        }
        pipelines = try made.map { try $0!.get() }
        if let cacheFile, let data = try? cache.data(), data != cached { cacheFile.save(data) }
        let startup = StartupReport(pipelineSeconds: monotonicSeconds() - pipelineStart, pipelineCacheHit: cached != nil,
                                    pipelineCachePath: cacheFile?.path)

        // The footprint, from the driver's sizes, before any device memory is taken.
        let arena = try Session.makeArena(bundle: bundle, device: device)
        let weights = try WeightMemory(device: device, loaded: loaded, mode: options.loadMode)
        let arenaBytes = arena.requirements.size
        footprintBytes = arenaBytes + weights.deviceBytes
        piece = MemoryPiece(arena: arena.requirements, weightBytes: weights.deviceBytes, weightAlignment: weights.alignment,
                            weightTypeBits: weights.typeBits, granularity: device.limits.bufferImageGranularity)
        if let budget = context.budgetBytes, footprintBytes > budget {
            throw RuntimeError.exceedsContextBudget(path: loaded.path, neededBytes: footprintBytes, arenaBytes: arenaBytes,
                                                    weightBytes: weights.deviceBytes, budgetBytes: budget)
        }
        unbound = (arena, weights)
        var memory = MemoryReport(arenaBytes: arenaBytes, weightBytes: weights.deviceBytes,
                                  weightAllocations: weights.segmentCount, residentImages: weights.resident.filter { $0 }.count,
                                  unaliasedWeightBytes: weights.unaliasedBytes, stagingBytes: 0, ioStagingBytes: 0,
                                  budgetBytes: bundle.schedule.budgetBytes, weightsAsPlanned: weights.asPlanned)

        io = try IOStaging(device: device, bundle: bundle)
        memory.ioStagingBytes = io.host.size
        reports = Mutex(Reports(memory: memory, startup: startup, lastStats: nil))
        loadedSemaphore = try VK.TimelineSemaphore(device: device.vk)
        computedSemaphore = try VK.TimelineSemaphore(device: device.vk)
        if options.timestamps {
            guard device.physical.queueFamilies[Int(device.computeFamily)].timestampValidBits > 0 else {
                throw RuntimeError.requirementsUnmet(device: device.info.name, bundle: loaded.path,
                                                     unmet: ["profiling: the compute queue has no timestamps"])
            }
            queryPool = try VK.QueryPool(device: device.vk, timestamps: UInt32(max(bundle.program.count, 1) * 2))
        } else {
            queryPool = nil
        }
        verifier = options.verifyChunks ? ChunkVerifier(loaded: loaded) : nil
        context.register(self)
    }

    deinit {
        // Children (semaphores, pools, images) are destroyed after this: the queues must be done with this session's
        // submissions, including the driver's own processing of them (`Device.drain`; not vkDeviceWaitIdle, which
        // would need every queue's lock while waiting).
        _ = try? loadedSemaphore.wait(for: loadedValue, timeout: timeoutNanoseconds)
        _ = try? computedSemaphore.wait(for: computedValue, timeout: timeoutNanoseconds)
        device.drain(timeout: timeoutNanoseconds)
        context.forget(self)
    }

    /// The arena buffer, not yet bound. Predicated steps read their conditions from it (VK_EXT_conditional_rendering).
    static func makeArena(bundle: FMBundle, device: Device) throws -> VK.Buffer {
        let usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT.rawValue | VK_BUFFER_USAGE_TRANSFER_SRC_BIT.rawValue
            | VK_BUFFER_USAGE_TRANSFER_DST_BIT.rawValue
            | (bundle.hasPredicatedSteps ? VK_BUFFER_USAGE_CONDITIONAL_RENDERING_BIT_EXT.rawValue : 0)
        let arena = try VK.Buffer(device: device.vk, size: max(bundle.meta.arenaSize, 256), usage: usage, label: "arena")
        // Lavapipe (Mesa 22.3) keeps buffer sizes in 32 bits: past 4 GiB it asks for the size modulo 2^32, and the
        // arena would be backed by far less memory than kernels address.
        let requirements = arena.requirements
        guard requirements.size >= arena.size else {
            throw RuntimeError.memory(what: "arena (\(bundle.meta.arenaSize) bytes)",
                                      reason: "\(device.info.name) asks for only \(requirements.size) bytes of memory "
                                          + "for a buffer of \(arena.size) bytes; it cannot hold this arena")
        }
        if let type = device.memoryType(typeBits: requirements.memoryTypeBits, required: 0,
                                        preferred: VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT.rawValue),
           requirements.size > device.heapSize(ofType: type) {
            throw RuntimeError.memory(what: "arena (\(bundle.meta.arenaSize) bytes)",
                                      reason: "\(requirements.size) bytes exceed the \(device.heapSize(ofType: type))-byte "
                                          + "memory heap of \(device.info.name)")
        }
        return arena
    }

    /// One descriptor set per distinct (kernel, bindings): tensors as STORAGE_BUFFER ranges of the arena,
    /// images as STORAGE_IMAGE views in GENERAL layout. Written once; never updated.
    static func writeDescriptorSets(bundle: FMBundle, device: Device, pipelines: [VK.Pipeline],
                                            arena: VK.Buffer, weights: WeightMemory)
        throws -> (VK.DescriptorPool, [VkDescriptorSet]) {
        var keys: [[UInt32]: Int] = [:]
        var unique: [Int] = []  // first step of each distinct set
        let stepKeys = bundle.program.map { step -> [UInt32] in
            [step.kernel] + step.bindings.flatMap { binding -> [UInt32] in
                switch binding {
                case let .tensor(t): [0, t]
                case let .image(i): [1, i]
                }
            }
        }
        for (k, key) in stepKeys.enumerated() where keys[key] == nil {
            keys[key] = unique.count
            unique.append(k)
        }
        var counts: [VkDescriptorType: UInt32] = [:]
        for k in unique {
            for kind in bundle.kernels[Int(bundle.program[k].kernel)].bindings { counts[kind.vkDescriptorType, default: 0] += 1 }
        }
        let pool = try VK.DescriptorPool(device: device.vk, maxSets: UInt32(unique.count), sizes: counts)
        var sets: [VkDescriptorSet] = []
        for k in unique {
            let step = bundle.program[k]
            let set = try pool.allocate(pipelines[Int(step.kernel)].layout.setLayout)
            var bufferInfos: [VkDescriptorBufferInfo] = []
            var imageInfos: [VkDescriptorImageInfo] = []
            var slots: [(binding: Int, isImage: Bool, index: Int)] = []
            for (b, binding) in step.bindings.enumerated() {
                switch binding {
                case let .tensor(t):
                    let tensor = bundle.tensors[Int(t)]
                    slots.append((b, false, bufferInfos.count))
                    bufferInfos.append(VkDescriptorBufferInfo(buffer: arena.handle, offset: tensor.offset, range: tensor.size))
                case let .image(i):
                    slots.append((b, true, imageInfos.count))
                    imageInfos.append(VkDescriptorImageInfo(sampler: nil, imageView: weights.views[Int(i)].handle,
                                                            imageLayout: VK_IMAGE_LAYOUT_GENERAL))
                }
            }
            bufferInfos.withUnsafeBufferPointer { buffers in
                imageInfos.withUnsafeBufferPointer { images in
                    let writes = slots.map { slot -> VkWriteDescriptorSet in
                        var write = VkWriteDescriptorSet()
                        write.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET
                        write.dstSet = set
                        write.dstBinding = UInt32(slot.binding)
                        write.descriptorCount = 1
                        if slot.isImage {
                            write.descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_IMAGE
                            write.pImageInfo = images.baseAddress! + slot.index
                        } else {
                            write.descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER
                            write.pBufferInfo = buffers.baseAddress! + slot.index
                        }
                        return write
                    }
                    vkUpdateDescriptorSets(device.vk.handle, UInt32(writes.count), writes, 0, nil)
                }
            }
            sets.append(set)
        }
        return (pool, stepKeys.map { sets[keys[$0]!] })
    }
}

extension BindingKind {
    var vkDescriptorType: VkDescriptorType {
        switch self {
        case .storageBuffer: VK_DESCRIPTOR_TYPE_STORAGE_BUFFER
        case .storageImage: VK_DESCRIPTOR_TYPE_STORAGE_IMAGE
        }
    }
}

/// Start-up figures of a session.
public struct StartupReport: Sendable {
    /// Shader modules, layouts and pipelines.
    public var pipelineSeconds: Double
    /// Whether a saved pipeline cache was found (the driver may still reject foreign data).
    public var pipelineCacheHit: Bool
    public var pipelineCachePath: String?
    /// Arena and weight allocations, bound (in the latest acquisition of device memory).
    public var weightSeconds = 0.0
    /// Run plans, staging rings and the pre-recorded copy command buffers.
    public var programSeconds = 0.0
    /// Time spent allocating and mapping the pinned staging rings: the first run's on a thread of its own while the
    /// session was made (`stagingWaitSeconds` of it delayed the copy programs), any other within `programSeconds`.
    public var stagingSeconds = 0.0
    /// The part of `programSeconds` spent waiting for the first run's ring.
    public var stagingWaitSeconds = 0.0
    /// Compute command buffers.
    public var recordSeconds = 0.0
    /// How many times the session built its device state (arena and images bound, descriptor sets, run programs,
    /// recorded command buffers): once in its context's pool (a clobbered session only copies its weights and
    /// constants again), once per acquisition without a pool.
    public var residencyBuilds = 0
}

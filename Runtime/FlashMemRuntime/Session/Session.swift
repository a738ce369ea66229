import CVulkan
import Dispatch

/// A compiled model ready to run on one device: the thing apps embed.
///
/// Creating a session validates the bundle (`LoadedBundle.validate()`) and checks it against the device, then creates everything once: a pipeline
/// per kernel (with its specialization constants), ONE arena buffer with ONE allocation, the weight
/// images where the bundle's load plan places them (`WeightMemory`: one allocation per segment), a descriptor
/// set per distinct (kernel, bindings) written once, and the command buffers of the first and of later runs,
/// recorded once and replayed. Resident constants are copied into the arena here. `run` then only converts
/// inputs, decodes and copies weight chunks, submits and converts outputs.
///
/// Lifetimes: the first streamed run copies every chunk (resident images then stay loaded); later runs copy
/// only the chunks of streamed images, so with everything resident they copy nothing.
///
/// Not thread-safe: call `run` from one thread at a time. Keeps its `Device` and `LoadedBundle` alive.
public final class Session {
    public let bundle: LoadedBundle
    public let device: Device
    public let options: SessionOptions
    /// The session's own device allocations.
    public internal(set) var memory: MemoryReport
    /// What creating the session cost, and whether its pipelines came from the cache.
    public internal(set) var startup: StartupReport
    /// Statistics of the latest successful `run`.
    public internal(set) var lastStats: RunStats?
    /// Whether the resident weights are loaded (by the first run, or `loadWeights()` in preload mode); later
    /// runs then copy only the streamed images' chunks.
    public var weightsResident: Bool { weights.residentLoaded }

    public var inputs: [IOBinding] { bundle.bundle.meta.inputs }
    public var outputs: [IOBinding] { bundle.bundle.meta.outputs }

    let pipelines: [VK.Pipeline]
    let arena: VK.Buffer
    let weights: WeightMemory
    let descriptorPool: VK.DescriptorPool
    /// Per step: its descriptor set (shared by steps with the same kernel and bindings).
    let stepSets: [VkDescriptorSet]
    let io: IOStaging
    /// What the first run executes (every chunk), and what later runs do (streamed images' chunks only; the same
    /// object when nothing is resident). Preload: the first copies everything before any step, later runs nothing.
    var first: RunProgram?
    let warm: RunProgram
    let loadedSemaphore: VK.TimelineSemaphore
    let computedSemaphore: VK.TimelineSemaphore
    /// The values every submitted signal has reached on the two timelines (the next run's bases).
    var loadedValue: UInt64 = 0
    var computedValue: UInt64 = 0
    let computePool: VK.CommandPool
    let uploadCommand: VkCommandBuffer
    let readbackCommand: VkCommandBuffer
    let queryPool: VK.QueryPool?
    /// Checks chunk checksums as they first stream (nil with `options.verifyChunks` off).
    let verifier: ChunkVerifier?
    /// With `options.trace`: the current run's host-thread events, the first compute submission and when the host
    /// saw the last copy land (host clock).
    var hostEvents: [RunTrace.Event] = []
    var firstComputeSubmit: Double?
    var copiesLanded: Double?
    /// The latest outputs' byte arrays, reused by the next run when the caller has let go of them.
    var outputStorage: [[UInt8]] = []

    var timeoutNanoseconds: UInt64 { options.waitTimeoutNanoseconds }

    public init(bundle loaded: LoadedBundle, device: Device, options: SessionOptions = SessionOptions()) throws {
        self.bundle = loaded
        self.device = device
        self.options = options
        let bundle = loaded.bundle
        // The one validation (the reader's, free for files it read), then the device: nothing touches the GPU before.
        try loaded.validate()
        try device.checkRequirements(of: loaded)

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
        var startup = StartupReport(pipelineSeconds: monotonicSeconds() - pipelineStart, pipelineCacheHit: cached != nil,
                                    pipelineCachePath: cacheFile?.path)
        var phaseStart = monotonicSeconds()

        // Predicated steps read their conditions from the arena (VK_EXT_conditional_rendering).
        let arenaUsage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT.rawValue | VK_BUFFER_USAGE_TRANSFER_SRC_BIT.rawValue
            | VK_BUFFER_USAGE_TRANSFER_DST_BIT.rawValue
            | (bundle.hasPredicatedSteps ? VK_BUFFER_USAGE_CONDITIONAL_RENDERING_BIT_EXT.rawValue : 0)
        arena = try VK.Buffer(device: device.vk, size: max(bundle.meta.arenaSize, 256), usage: arenaUsage,
                              label: "arena")
        let arenaRequirements = arena.requirements
        // Lavapipe (Mesa 22.3) keeps buffer sizes in 32 bits: past 4 GiB it asks for the size modulo 2^32, and the
        // arena would be backed by far less memory than kernels address.
        guard arenaRequirements.size >= arena.size else {
            throw RuntimeError.memory(what: "arena (\(bundle.meta.arenaSize) bytes)",
                                      reason: "\(device.info.name) asks for only \(arenaRequirements.size) bytes of memory "
                                          + "for a buffer of \(arena.size) bytes; it cannot hold this arena")
        }
        try arena.bind(device.allocate(size: arenaRequirements.size, typeBits: arenaRequirements.memoryTypeBits,
                                       required: 0, preferred: VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT.rawValue,
                                       label: "arena (\(bundle.meta.arenaSize) bytes)"))
        weights = try WeightMemory(device: device, loaded: loaded, mode: options.loadMode)
        startup.weightSeconds = monotonicSeconds() - phaseStart
        (descriptorPool, stepSets) = try Session.writeDescriptorSets(bundle: bundle, device: device,
                                                                     pipelines: pipelines, arena: arena, weights: weights)
        io = try IOStaging(device: device, bundle: bundle)
        let loadedSemaphore = try VK.TimelineSemaphore(device: device.vk)
        let computedSemaphore = try VK.TimelineSemaphore(device: device.vk)
        let computePool = try VK.CommandPool(device: device.vk, family: device.computeFamily)
        let weights = self.weights
        (self.loadedSemaphore, self.computedSemaphore, self.computePool) = (loadedSemaphore, computedSemaphore, computePool)
        let commands = try computePool.allocate(2)
        uploadCommand = commands[0]
        readbackCommand = commands[1]
        if options.timestamps {
            guard device.physical.queueFamilies[Int(device.computeFamily)].timestampValidBits > 0 else {
                throw RuntimeError.requirementsUnmet(device: device.info.name, bundle: loaded.path,
                                                     unmet: ["profiling: the compute queue has no timestamps"])
            }
            queryPool = try VK.QueryPool(device: device.vk, timestamps: UInt32(max(bundle.program.count, 1) * 2))
        } else {
            queryPool = nil
        }

        // The first run copies every chunk; later runs the streamed images' chunks (none in preload mode).
        let streamed = weights.resident.map { !$0 }
        let verifier = options.verifyChunks ? ChunkVerifier(loaded: loaded) : nil
        self.verifier = verifier
        func program(copies: [Bool]?, streaming: Bool, sharing: RunProgram? = nil) throws -> RunProgram {
            try RunProgram(loaded: loaded, device: device, copies: copies, streaming: streaming, weights: weights,
                           options: options, commandPool: computePool, loadedSemaphore: loadedSemaphore,
                           computedSemaphore: computedSemaphore, sharedStaging: sharing?.streamer?.staging,
                           verifier: verifier)
        }
        phaseStart = monotonicSeconds()
        switch options.loadMode {
        case .streaming:
            let all = try program(copies: nil, streaming: true)
            warm = streamed.contains(false)
                ? try program(copies: streamed, streaming: streamed.contains(true), sharing: all) : all
            first = all
        case .preload:
            let all = try program(copies: nil, streaming: false)
            first = all
            warm = try program(copies: streamed, streaming: false, sharing: all)
        }
        startup.programSeconds = monotonicSeconds() - phaseStart
        memory = MemoryReport(arenaBytes: arena.memory?.size ?? 0, weightBytes: weights.allocatedBytes,
                              weightAllocations: weights.allocations.count, residentImages: weights.resident.filter { $0 }.count,
                              unaliasedWeightBytes: weights.unaliasedBytes,
                              stagingBytes: max(first?.streamer?.staging.size ?? 0, warm.streamer?.staging.size ?? 0),
                              ioStagingBytes: io.host.size, budgetBytes: bundle.schedule.budgetBytes,
                              weightsAsPlanned: weights.asPlanned)

        self.startup = startup
        phaseStart = monotonicSeconds()
        try recordCommands()
        try uploadResidentConstants()
        self.startup.recordSeconds = monotonicSeconds() - phaseStart
    }

    deinit {
        // Children are destroyed after this; make sure the GPU no longer uses them.
        _ = try? device.vk.waitIdle()
    }

    /// One descriptor set per distinct (kernel, bindings): tensors as STORAGE_BUFFER ranges of the arena,
    /// images as STORAGE_IMAGE views in GENERAL layout. Written once; never updated.
    private static func writeDescriptorSets(bundle: FMBundle, device: Device, pipelines: [VK.Pipeline],
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
    /// Weight images and their allocations.
    public var weightSeconds = 0.0
    /// Run plans, staging rings and the pre-recorded copy command buffers.
    public var programSeconds = 0.0
    /// Compute command buffers, and resident constants uploaded.
    public var recordSeconds = 0.0
}

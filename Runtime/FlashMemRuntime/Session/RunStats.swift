/// The device memory a session allocated itself (counted from its own allocations).
public struct MemoryReport: Sendable, Equatable {
    /// The one activation arena (meta.arenaSize, rounded by the driver).
    public var arenaBytes: UInt64
    /// The weight space: every weight allocation (one per segment; streamed images share bytes in it).
    public var weightBytes: UInt64
    /// Allocations of the weight space: one per segment, 0 once bound in its context's pool.
    public var weightAllocations: Int
    /// Images loaded once and kept across runs.
    public var residentImages: Int
    /// What the weights would need if no images shared memory (preload layout), for comparison.
    public var unaliasedWeightBytes: UInt64
    /// The pinned host staging ring chunks are decoded into (host memory, not device memory).
    public var stagingBytes: UInt64
    /// Host-visible staging for inputs and outputs (host memory).
    public var ioStagingBytes: UInt64
    /// The device budget the bundle's plan was made for (0: unbounded); `deviceBytes` never exceeds it in
    /// streaming mode (session creation fails instead).
    public var budgetBytes: UInt64
    /// Whether the images sit in the plan's own slots (false: re-placed for this device's image sizes).
    public var weightsAsPlanned: Bool

    /// Device memory the session holds for its whole life: the arena and the weights.
    public var deviceBytes: UInt64 { arenaBytes + weightBytes }
}

/// What one `Session.run` did and how long it took.
public struct RunStats: Sendable {
    public var loadMode: LoadMode
    /// From entering `run` to returning its outputs, in seconds.
    public var wallSeconds: Double
    /// Preload mode, first run: the time spent copying every weight (included in `wallSeconds`); nil otherwise.
    public var loadSeconds: Double?
    /// Host time blocked on the `loaded` timeline: waiting for earlier copies to free staging slots
    /// (and, in preload mode, for the load to finish).
    public var transferWaitSeconds: Double
    /// Host time spent decoding chunk payloads (memcpy or zstd) into staging.
    public var decodeSeconds: Double
    /// Host time waiting for the last step after all work was submitted.
    public var computeWaitSeconds: Double
    /// Host time checking inputs and converting them into staging.
    public var inputSeconds: Double
    /// Host time converting outputs out of staging.
    public var outputSeconds: Double
    /// Decoded bytes copied into weight images during this run.
    public var bytesStreamed: UInt64
    /// Stored (possibly compressed) payload bytes read from the bundle during this run.
    public var bytesRead: UInt64
    public var chunksStreamed: Int
    /// Copy commands those chunks took: one per run of chunks that continue each other (`ChunkStreamer.copyRegion`).
    public var copyCommands = 0
    /// vkQueueSubmit batches (VkSubmitInfos) this run submitted.
    public var submissions: Int
    /// The session's own allocations.
    public var memory: MemoryReport
    /// VK_EXT_memory_budget heaps sampled at the end of the run (empty without the extension).
    public var heaps: [HeapBudget]
    /// With `SessionOptions.profile` (or `trace`): GPU time of each step, in seconds.
    public var stepSeconds: [Double]?
    /// With `profile` (or `trace`): from the first step's start to the last step's end on the GPU, in seconds: the
    /// steps' time plus the gaps between them (barriers, dispatch), without the run's input and output copies.
    public var stepSpanSeconds: Double? = nil
    /// With `profile` or `trace`, when this run copied chunks: the time the transfer queue spent copying them,
    /// measured as `transferTiming` says (bytesStreamed / transferSeconds is the copy bandwidth).
    public var transferSeconds: Double? = nil
    public var transferTiming: CostProfile.TransferTiming = .none
    /// With `SessionOptions.trace`: the run's timeline.
    public var trace: RunTrace? = nil
    /// Time spent getting the session's device memory from its context (included in `wallSeconds`): waiting for
    /// room, allocating, recording and uploading constants when `acquiredMemory`; about 0 when it was held.
    public var acquireSeconds = 0.0
    /// Whether this run had to acquire the device memory (its first run, or the context had taken it back).
    public var acquiredMemory = false
}

import CVulkan

/// What one kind of run executes: which chunks it copies (`plan`), how its steps are cut into submissions
/// (`batches`), their command buffers (recorded once by the session) and the streamer that copies the chunks.
/// A session has one for its first run and one for later runs (`Session.first`, `Session.warm`).
final class RunProgram {
    let plan: ExecutionPlan
    let batches: [ExecutionPlan.Batch]
    let commands: [VkCommandBuffer]
    /// Nil when the program copies nothing.
    let streamer: ChunkStreamer?
    /// Whether copies overlap the steps (streaming) or all land before the first step (preload).
    let streaming: Bool

    /// - Parameters:
    ///   - copies: per image, whether this program copies its chunks (nil: every chunk).
    ///   - streaming: batches wait for their chunks; otherwise one batch after every copy landed.
    ///   - sharedStaging: another program's staging ring this one may use (the two never run at once).
    ///   - verifier: checks chunks the first time they stream (shared by the session's programs); nil: trusted.
    init(loaded: LoadedBundle, device: Device, copies: [Bool]?, streaming: Bool, weights: WeightMemory,
         options: SessionOptions, commandPool: VK.CommandPool, loadedSemaphore: VK.TimelineSemaphore,
         computedSemaphore: VK.TimelineSemaphore, sharedStaging: HostBuffer? = nil,
         verifier: ChunkVerifier? = nil) throws {
        let stepCount = loaded.bundle.program.count
        plan = ExecutionPlan(loaded, copies: copies)
        self.streaming = plan.streams(streaming)
        batches = plan.batches(stepCount: stepCount, streaming: streaming)
        commands = try commandPool.allocate(batches.count)
        streamer = plan.order.isEmpty ? nil : try ChunkStreamer(
            device: device, loaded: loaded, plan: plan, weights: weights, options: options,
            loadedSemaphore: loadedSemaphore, computedSemaphore: computedSemaphore, sharedStaging: sharedStaging,
            verifier: verifier)
    }
}

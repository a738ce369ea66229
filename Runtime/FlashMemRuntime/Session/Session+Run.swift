import CVulkan

extension Session {
    /// Runs the model once. `inputs` must match `inputs` (names, element types, shapes) exactly; the
    /// outputs come back in the declared element types and shapes, in `outputs` order.
    ///
    /// Streaming: one host loop walks the steps; before submitting step k it decodes and submits every
    /// chunk whose issue step is ≤ k, then submits the steps up to the next issue point waiting on `loaded`
    /// for the chunks they read. Every wait refers to a value signalled by an earlier submission, so the
    /// loop also works where copies and kernels share one queue. Preload: the first run loads every chunk,
    /// then each run is one submission.
    public func run(inputs given: [HostTensor]) throws -> [HostTensor] {
        let start = monotonicSeconds()
        try io.write(given)
        let inputSeconds = monotonicSeconds() - start
        var loadSeconds: Double? = nil
        var counters = ChunkStreamer.Counters()
        if options.loadMode == .preload && !weightsResident {
            let loadStart = monotonicSeconds()
            counters = try loadAllChunks()
            loadSeconds = monotonicSeconds() - loadStart
        }
        let computeWait: Double
        switch options.loadMode {
        case .streaming:
            (counters, computeWait) = try runStreaming()
        case .preload:
            computeWait = try runResident()
            counters.submissions += 1
        }
        let outputStart = monotonicSeconds()
        let outputs = io.read(reusing: &outputStorage)
        let outputSeconds = monotonicSeconds() - outputStart
        lastStats = RunStats(
            loadMode: options.loadMode, wallSeconds: monotonicSeconds() - start, loadSeconds: loadSeconds,
            transferWaitSeconds: counters.transferWaitSeconds, decodeSeconds: counters.decodeSeconds,
            computeWaitSeconds: computeWait, inputSeconds: inputSeconds, outputSeconds: outputSeconds,
            bytesStreamed: counters.bytesStreamed, bytesRead: counters.bytesRead,
            chunksStreamed: counters.chunks, submissions: counters.submissions, memory: memory,
            heaps: device.memoryBudget(), stepSeconds: try stepTimes())
        return outputs
    }

    /// Preload mode: copies every weight chunk into its image and waits for all of them; afterwards the
    /// staging ring is released (the weights stay resident). `run` calls it on first use; calling it
    /// earlier moves the load out of the first run. Does nothing in streaming mode or when loaded.
    @discardableResult
    public func loadWeights() throws -> (seconds: Double, bytes: UInt64) {
        guard options.loadMode == .preload, !weightsResident else { return (0, 0) }
        let start = monotonicSeconds()
        let counters = try loadAllChunks()
        return (monotonicSeconds() - start, counters.bytesStreamed)
    }

    private func loadAllChunks() throws -> ChunkStreamer.Counters {
        guard let streamer else { return ChunkStreamer.Counters() }
        let base = loadedValue
        streamer.begin(loadedBase: base, computedBase: computedValue, waitForCompute: false)
        do {
            try streamer.stage(plan.order.indices)
            try streamer.flush()
            let waitStart = monotonicSeconds()
            try loadedSemaphore.wait(for: base + UInt64(plan.order.count), timeout: timeoutNanoseconds)
            var counters = streamer.counters
            counters.transferWaitSeconds += monotonicSeconds() - waitStart
            loadedValue = base + UInt64(plan.order.count)
            weightsResident = true
            self.streamer = nil  // frees the staging ring and the transfer command buffers
            return counters
        } catch {
            drain(loaded: streamer.submittedLoaded, computed: computedValue)
            throw error
        }
    }

    /// Steps a run advances `computed` by (an empty program still signals once, for its I/O copies).
    private var computedSpan: UInt64 { UInt64(max(bundle.bundle.program.count, 1)) }

    private func computeSubmission(batch index: Int, computedBase: UInt64) -> VK.Submission {
        var buffers = [batchCommands[index]]
        if index == 0 { buffers.insert(uploadCommand, at: 0) }
        if index == batches.count - 1 { buffers.append(readbackCommand) }
        let end = index == batches.count - 1 ? computedSpan : UInt64(batches[index].steps.upperBound)
        return VK.Submission(commandBuffers: buffers, signals: [(computedSemaphore, computedBase + end)])
    }

    private func runResident() throws -> Double {
        let base = computedValue
        try VK.submit([computeSubmission(batch: 0, computedBase: base)], to: device.computeQueue)
        computedValue = base + computedSpan
        let waitStart = monotonicSeconds()
        try computedSemaphore.wait(for: computedValue, timeout: timeoutNanoseconds)
        return monotonicSeconds() - waitStart
    }

    private func runStreaming() throws -> (ChunkStreamer.Counters, Double) {
        guard let streamer else { preconditionFailure("streaming session without a streamer") }
        let loadedBase = loadedValue, computedBase = computedValue
        let chunkCount = plan.order.count
        streamer.begin(loadedBase: loadedBase, computedBase: computedBase, waitForCompute: true)
        var next = 0
        var submittedComputed = computedBase
        var submissions = 0
        do {
            for (index, batch) in batches.enumerated() {
                var end = next
                while end < chunkCount && plan.issueBefore[end] <= batch.steps.lowerBound { end += 1 }
                try streamer.stage(next..<end)
                next = end
                try streamer.flush()
                var submission = computeSubmission(batch: index, computedBase: computedBase)
                if batch.waitLoaded > 0 {
                    submission.waits.append((loadedSemaphore, loadedBase + UInt64(batch.waitLoaded),
                                             VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT.rawValue))
                }
                try VK.submit([submission], to: device.computeQueue)
                submittedComputed = submission.signals[0].value
                submissions += 1
            }
            // Chunks of images no step reads (issued after the last step, if the schedule says so).
            try streamer.stage(next..<chunkCount)
            try streamer.flush()
            let waitStart = monotonicSeconds()
            try computedSemaphore.wait(for: computedBase + computedSpan, timeout: timeoutNanoseconds)
            try loadedSemaphore.wait(for: loadedBase + UInt64(chunkCount), timeout: timeoutNanoseconds)
            let computeWait = monotonicSeconds() - waitStart
            loadedValue = loadedBase + UInt64(chunkCount)
            computedValue = computedBase + computedSpan
            var counters = streamer.counters
            counters.submissions += submissions
            return (counters, computeWait)
        } catch {
            drain(loaded: streamer.submittedLoaded, computed: submittedComputed)
            throw error
        }
    }

    /// After a failed run: waits for everything already submitted (best effort) and moves the timeline
    /// bases past it, so the next run starts clean.
    private func drain(loaded: UInt64, computed: UInt64) {
        _ = try? loadedSemaphore.wait(for: loaded, timeout: timeoutNanoseconds)
        _ = try? computedSemaphore.wait(for: computed, timeout: timeoutNanoseconds)
        loadedValue = max(loadedValue, loaded)
        computedValue = max(computedValue, computed)
    }

    /// Per-step GPU seconds from the timestamp queries, when profiling.
    private func stepTimes() throws -> [Double]? {
        guard let queryPool else { return nil }
        let count = bundle.bundle.program.count
        guard count > 0 else { return [] }
        let values = try queryPool.results()
        let bits = device.physical.queueFamilies[Int(device.computeFamily)].timestampValidBits
        let mask: UInt64 = bits >= 64 ? .max : (UInt64(1) << bits) - 1
        let period = Double(device.limits.timestampPeriod) * 1e-9
        return (0..<count).map { k in Double((values[2 * k + 1] &- values[2 * k]) & mask) * period }
    }
}

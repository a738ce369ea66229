import CVulkan
import Dispatch

extension Session {
    /// Runs the model once. `inputs` must match `inputs` (names, element types, shapes) exactly; the
    /// outputs come back in the declared element types and shapes, in `outputs` order.
    ///
    /// The first run executes `first` (every chunk: resident images are loaded then and stay), later runs `warm`
    /// (only streamed images' chunks). Streaming: compute batches wait on `loaded` for the chunks their steps read;
    /// copies wait on `computed` for the steps that must finish before their slot is reused. With a dedicated
    /// transfer queue a streamer task decodes and submits copies in plan order while this thread submits every
    /// compute batch at once, so host copies never hold back a kernel; on a device with one queue (lavapipe) the
    /// two are interleaved so every wait refers to an earlier submission. Preload: the first run loads every
    /// chunk, then each run is one submission.
    ///
    /// The session's device memory is acquired from its context first when it does not hold it (the run waits for
    /// room while other sessions of the context run; `RunStats.acquireSeconds`), and kept afterwards.
    public func run(inputs given: [HostTensor]) throws -> [HostTensor] {
        try run(inputs: given, copiesIssued: nil).outputs
    }

    /// `run`, calling `copiesIssued` (on any thread) once the run has submitted its last weight copy, or when it
    /// has none to submit: from then on the transfer queue is free for the next model's prefetch (`Pipeline`).
    /// Returns this run's statistics too (`lastStats` may already be another thread's run).
    func run(inputs given: [HostTensor], copiesIssued: (() -> Void)?) throws -> (outputs: [HostTensor], stats: RunStats) {
        try operationLock.locked {
            let acquireStart = monotonicSeconds()
            let acquisition = try acquire(wait: true)
            defer { context.unpin(self) }
            try ensureConstants()
            let acquireSeconds = monotonicSeconds() - acquireStart
            var (outputs, stats) = try runHolding(inputs: given, copiesIssued: copiesIssued)
            stats.acquireSeconds = acquireSeconds
            stats.acquiredMemory = acquisition == .acquired
            stats.wallSeconds += acquireSeconds
            lastStats = stats
            return (outputs, stats)
        }
    }

    /// A run while the context has the session's memory pinned.
    private func runHolding(inputs given: [HostTensor], copiesIssued: (() -> Void)?) throws -> ([HostTensor], RunStats) {
        let start = monotonicSeconds()
        try checkBundleUnchanged()
        hostEvents = []
        firstComputeSubmit = nil
        copiesLanded = nil
        try io.write(given)
        let inputSeconds = monotonicSeconds() - start
        traceHost("inputs", from: start)
        var loadSeconds: Double? = nil
        var counters = ChunkStreamer.Counters()
        let program = first ?? warm
        let computeWait: Double
        var copier: ChunkStreamer? = nil
        if program.streaming {
            (counters, computeWait) = try runStreaming(program, copiesIssued: copiesIssued)
            copier = program.streamer
        } else {
            if let first, first.streamer != nil {
                copier = first.streamer
                let loadStart = monotonicSeconds()
                counters = try load(first)
                loadSeconds = monotonicSeconds() - loadStart
            }
            copiesIssued?()
            computeWait = try runResident(program)
            counters.submissions += 1
        }
        if first != nil {
            context.locked { weights.residentLoaded = true }
            first = nil  // frees its staging ring and transfer command buffers when `warm` is another program
        }
        // Conditions the kernels checked on the device (e.g. Gather indices in range): the outputs are not valid.
        if let failed = io.failedCheck(path: bundle.path) { throw failed }
        let outputStart = monotonicSeconds()
        let outputs = io.read(reusing: &outputStorage)
        let outputSeconds = monotonicSeconds() - outputStart
        traceHost("outputs", from: outputStart)
        let ticks = try stepTicks()
        var stats = RunStats(
            loadMode: options.loadMode, wallSeconds: monotonicSeconds() - start, loadSeconds: loadSeconds,
            transferWaitSeconds: counters.transferWaitSeconds, decodeSeconds: counters.decodeSeconds,
            computeWaitSeconds: computeWait, inputSeconds: inputSeconds, outputSeconds: outputSeconds,
            bytesStreamed: counters.bytesStreamed, bytesRead: counters.bytesRead,
            chunksStreamed: counters.chunks, submissions: counters.submissions, memory: memory,
            heaps: device.memoryBudget(), stepSeconds: ticks.map(stepSeconds))
        stats.copyCommands = counters.copyCommands
        if let ticks, let first = ticks.first, let last = ticks.last {
            stats.stepSpanSeconds = ticksToSeconds(last.end, minus: first.start, family: device.computeFamily)
        }
        if options.timestamps {
            (stats.transferSeconds, stats.transferTiming) = try transferTime(copier, counters)
        }
        if options.trace {
            stats.trace = try trace(steps: ticks ?? [], copier: copier, counters: counters, start: start)
        }
        return (outputs, stats)
    }

    /// Preload mode: copies every weight chunk into its image and waits for all of them, so the first run only
    /// computes. `run` calls it on first use; calling it earlier moves the load out of the first run. Does
    /// nothing in streaming mode or once loaded.
    @discardableResult
    public func loadWeights() throws -> (seconds: Double, bytes: UInt64) {
        guard options.loadMode == .preload else { return (0, 0) }
        try checkBundleUnchanged()
        let report = try prefetch()
        return (report.seconds, report.bytesCopied)
    }

    /// Runs read chunks from the bundle's mapping (and nothing else of it after start-up): a file changed under it
    /// would give warm runs bytes no checksum looked at, or fault on pages past a truncated end. One fstat per run.
    private func checkBundleUnchanged() throws {
        if let file = bundle.file, let change = file.changeSinceOpen() {
            throw RuntimeError.bundleChanged(path: bundle.path, reason: change)
        }
    }

    /// Copies every chunk of `program` and waits for them, with no step running.
    func load(_ program: RunProgram) throws -> ChunkStreamer.Counters {
        guard let streamer = program.streamer else { return ChunkStreamer.Counters() }
        let base = loadedValue
        do {
            try streamer.begin(loadedBase: base, computedBase: computedValue, waitForCompute: false)
            try streamer.stage(program.plan.order.indices)
            try streamer.flush()
            let waitStart = monotonicSeconds()
            try loadedSemaphore.wait(for: base + UInt64(program.plan.order.count), timeout: timeoutNanoseconds)
            copiesLanded = monotonicSeconds()
            traceHost("wait for the weight load", from: waitStart)
            var counters = streamer.counters
            counters.transferWaitSeconds += monotonicSeconds() - waitStart
            loadedValue = base + UInt64(program.plan.order.count)
            return counters
        } catch {
            drain(loaded: streamer.submittedLoaded, computed: computedValue)
            throw error
        }
    }

    /// Steps a run advances `computed` by (an empty program still signals once, for its I/O copies).
    private var computedSpan: UInt64 { UInt64(max(bundle.bundle.program.count, 1)) }

    private func computeSubmission(_ program: RunProgram, batch index: Int, computedBase: UInt64) -> VK.Submission {
        var buffers = [program.commands[index]]
        if index == 0 { buffers.insert(residency!.uploadCommand, at: 0) }
        if index == program.batches.count - 1 { buffers.append(residency!.readbackCommand) }
        let end = index == program.batches.count - 1 ? computedSpan : UInt64(program.batches[index].steps.upperBound)
        return VK.Submission(commandBuffers: buffers, signals: [(computedSemaphore, computedBase + end)])
    }

    private func runResident(_ program: RunProgram) throws -> Double {
        let base = computedValue
        let submitStart = monotonicSeconds()
        firstComputeSubmit = submitStart
        try device.submit([computeSubmission(program, batch: 0, computedBase: base)], to: device.computeQueue)
        traceHost("submit compute", from: submitStart)
        computedValue = base + computedSpan
        let waitStart = monotonicSeconds()
        try computedSemaphore.wait(for: computedValue, timeout: timeoutNanoseconds)
        traceHost("wait for the last step", from: waitStart)
        return monotonicSeconds() - waitStart
    }

    private func runStreaming(_ program: RunProgram, copiesIssued: (() -> Void)?) throws -> (ChunkStreamer.Counters, Double) {
        guard let streamer = program.streamer else { preconditionFailure("streaming program without a streamer") }
        let plan = program.plan
        let loadedBase = loadedValue, computedBase = computedValue
        let chunkCount = plan.order.count
        let separateQueues = device.transferQueue != device.computeQueue
        let order = separateQueues && options.signalsBeforeWaits
            ? SubmissionOrder(loaded: loadedBase, computed: computedBase) : nil
        // Warm runs may grow the ring to hold the streamed set; it then replaces the ring the session keeps.
        if try streamer.begin(loadedBase: loadedBase, computedBase: computedBase, waitForCompute: true, order: order,
                              hold: first == nil) {
            keptStaging = streamer.staging
            memory.stagingBytes = streamer.staging.size
        }
        var submittedComputed = computedBase
        var submissions = 0
        func submitBatch(_ index: Int) throws {
            var submission = computeSubmission(program, batch: index, computedBase: computedBase)
            let batch = program.batches[index]
            if batch.waitLoaded > 0 {
                let value = loadedBase + UInt64(batch.waitLoaded)
                submission.waits.append((loadedSemaphore, value, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT.rawValue))
                if let order, !order.awaitCopies(value) { throw SubmissionOrder.Abandoned() }
            }
            let submitStart = monotonicSeconds()
            if firstComputeSubmit == nil { firstComputeSubmit = submitStart }
            try device.submit([submission], to: device.computeQueue)
            order?.computeSubmitted(through: submission.signals[0].value)
            traceHost("submit compute", from: submitStart,
                      ["steps": "\(batch.steps.lowerBound)..<\(batch.steps.upperBound)", "waitLoaded": "\(batch.waitLoaded)"])
            submittedComputed = submission.signals[0].value
            submissions += 1
        }
        do {
            if separateQueues {
                // Copies on their own task: waits before signals are fine across queues with timeline semaphores.
                let group = DispatchGroup()
                let streamError = ErrorBox()
                DispatchQueue.global(qos: .userInitiated).async(group: group) {
                    do {
                        try streamer.stage(0..<chunkCount)
                        try streamer.flush()
                        copiesIssued?()
                    } catch {
                        streamError.error = error
                        order?.abandon()
                    }
                }
                var computeError: Error? = nil
                do {
                    for index in program.batches.indices { try submitBatch(index) }
                } catch {
                    computeError = error
                    order?.abandon()
                }
                group.wait()
                // The thread that failed first, not the one that stopped waiting for it.
                let errors = [streamError.error, computeError].compactMap { $0 }
                if let error = errors.first(where: { !($0 is SubmissionOrder.Abandoned) }) ?? errors.first { throw error }
            } else {
                var next = 0
                for (index, batch) in program.batches.enumerated() {
                    var end = next
                    while end < chunkCount && plan.issueBefore[end] <= batch.steps.lowerBound { end += 1 }
                    try streamer.stage(next..<end)
                    next = end
                    try streamer.flush()
                    try submitBatch(index)
                }
                // Chunks of images no step reads (issued after the last step, if the schedule says so).
                try streamer.stage(next..<chunkCount)
                try streamer.flush()
                copiesIssued?()
            }
            let waitStart = monotonicSeconds()
            try computedSemaphore.wait(for: computedBase + computedSpan, timeout: timeoutNanoseconds)
            traceHost("wait for the last step", from: waitStart)
            let copiesWait = monotonicSeconds()
            try loadedSemaphore.wait(for: loadedBase + UInt64(chunkCount), timeout: timeoutNanoseconds)
            copiesLanded = monotonicSeconds()
            traceHost("wait for the last copy", from: copiesWait)
            let computeWait = monotonicSeconds() - waitStart
            loadedValue = loadedBase + UInt64(chunkCount)
            computedValue = computedBase + computedSpan
            var counters = streamer.counters
            counters.submissions += submissions
            return (counters, computeWait)
        } catch {
            // A copy that failed (a chunk that did not verify or decode) was never submitted, and submitted steps may
            // wait for it. Once every submitted copy has landed, signal `loaded` to the end of the run from the host:
            // those steps then run on images that are not fully loaded (their outputs are discarded; the next run
            // copies every chunk again), and the session stays usable.
            let submitted = max(streamer.submittedLoaded, loadedBase)
            let runEnd = loadedBase + UInt64(chunkCount)
            if submitted < runEnd, (try? loadedSemaphore.wait(for: submitted, timeout: timeoutNanoseconds)) != nil,
               (try? loadedSemaphore.signal(runEnd)) != nil {
                drain(loaded: runEnd, computed: submittedComputed)
            } else {
                drain(loaded: submitted, computed: submittedComputed)
            }
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
}

/// The error of a task whose completion the owner waits for (DispatchGroup.wait orders the write before the read).
private final class ErrorBox: @unchecked Sendable {
    var error: Error?
}

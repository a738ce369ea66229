/// Everything the session derives from a bundle before touching Vulkan: the checks the runtime relies
/// on for safety (indices in range, chunks inside their images, a schedule that cannot deadlock) and the
/// streaming plan (chunk ordinals, when each is issued, which `loaded` value each step waits for, how
/// steps are batched into submissions). Pure values; errors name the field.
///
/// Vocabulary: a chunk's *ordinal* is its position among the chunks this plan copies, in `Schedule.order`;
/// the `loaded` timeline counts finished copies in that order, so `loaded >= o + 1` means chunks 0…o have
/// landed. A session has two plans: the first run copies every chunk; later runs only those of streamed images
/// (resident ones stay loaded).
struct ExecutionPlan {
    /// Per ordinal: the chunk index.
    let order: [Int]
    /// Per ordinal: the chunk's own issueStep (its copy waits for `computed >= issueStep`).
    let issueStep: [Int]
    /// Per ordinal: the step before which the host loop issues it. Copies are issued in ordinal order
    /// (timeline values must grow), so this is the running maximum of `issueStep`.
    let issueBefore: [Int]
    /// Per image: the ordinals of its first and last chunk (nil for an image without chunks).
    let imageFirstOrdinal: [Int?]
    let imageLastOrdinal: [Int?]
    /// Per step: the `loaded` value it needs (all chunks of every image it binds), 0 for none.
    let stepNeed: [Int]

    /// A run of consecutive steps submitted together.
    struct Batch: Equatable {
        var steps: Range<Int>
        /// `loaded` value to wait for before the batch starts (0: none).
        var waitLoaded: Int
    }

    /// - Parameter copies: per image, whether this plan copies its chunks (nil: all of them).
    init(_ loaded: LoadedBundle, copies: [Bool]? = nil) throws {
        let bundle = loaded.bundle
        let path = loaded.path
        func fail(_ field: String, _ reason: String) -> RuntimeError {
            .invalidBundle(path: path, field: field, reason: reason)
        }
        try ExecutionPlan.checkStructure(loaded, fail)

        // Chunk order and issue steps.
        let schedule = bundle.schedule
        let chunkCount = bundle.chunks.count
        guard schedule.order.count == chunkCount else {
            throw fail("schedule.order", "has \(schedule.order.count) entries for \(chunkCount) chunks")
        }
        guard schedule.issueStep.count == chunkCount else {
            throw fail("schedule.issueStep", "has \(schedule.issueStep.count) entries for \(chunkCount) chunks")
        }
        guard schedule.lastUse.count == bundle.images.count, schedule.firstUse.count == bundle.images.count else {
            throw fail("schedule.lastUse", "firstUse/lastUse have \(schedule.firstUse.count)/\(schedule.lastUse.count) "
                       + "entries for \(bundle.images.count) images")
        }
        var seen = [Bool](repeating: false, count: chunkCount)
        for (ordinal, chunk) in schedule.order.enumerated() {
            guard Int(chunk) < chunkCount, !seen[Int(chunk)] else {
                throw fail("schedule.order[\(ordinal)]", "chunk \(chunk) is out of range or listed twice")
            }
            seen[Int(chunk)] = true
        }
        order = schedule.order.map(Int.init).filter { copies?[Int(bundle.chunks[$0].image)] ?? true }
        issueStep = order.map { Int(schedule.issueStep[$0]) }
        var running = 0
        issueBefore = issueStep.map { running = max(running, $0); return running }

        var first = [Int?](repeating: nil, count: bundle.images.count)
        var last = [Int?](repeating: nil, count: bundle.images.count)
        for (ordinal, chunk) in order.enumerated() {
            let image = Int(bundle.chunks[chunk].image)
            first[image] = first[image] ?? ordinal
            last[image] = ordinal
        }
        imageFirstOrdinal = first
        imageLastOrdinal = last

        // Which steps read each image, and what each step must wait for.
        var actualFirst = [Int?](repeating: nil, count: bundle.images.count)
        var actualLast = [Int?](repeating: nil, count: bundle.images.count)
        var need = [Int](repeating: 0, count: bundle.program.count)
        for (k, step) in bundle.program.enumerated() {
            for (b, binding) in step.bindings.enumerated() {
                guard case let .image(i) = binding else { continue }
                let image = Int(i)
                if copies?[image] == false { continue }  // resident: loaded by an earlier run
                guard let lastOrdinal = last[image] else {
                    throw fail("program[\(k)].bindings[\(b)]", "reads image \(image) (\(bundle.images[image].name)), "
                               + "which has no chunks")
                }
                actualFirst[image] = actualFirst[image] ?? k
                actualLast[image] = k
                need[k] = max(need[k], lastOrdinal + 1)
            }
        }
        stepNeed = need

        // Deadlock and aliasing safety: every chunk is issued no later than the first step that reads its
        // image, and the declared lastUse covers every reader (aliasing trusts it).
        for (ordinal, chunk) in order.enumerated() {
            let image = Int(bundle.chunks[chunk].image)
            if let firstReader = actualFirst[image], issueBefore[ordinal] > firstReader {
                throw fail("schedule.issueStep[\(chunk)]", "chunk \(chunk) of image \(image) would be issued before step "
                           + "\(issueBefore[ordinal]) (issue order \(ordinal)), but step \(firstReader) reads the image")
            }
            if issueStep[ordinal] > bundle.program.count {
                throw fail("schedule.issueStep[\(chunk)]", "\(issueStep[ordinal]) is past the last step "
                           + "(\(bundle.program.count) steps)")
            }
        }
        for image in bundle.images.indices {
            let declared = Int(schedule.lastUse[image])
            if let reader = actualLast[image], declared < reader {
                throw fail("schedule.lastUse[\(image)]", "is \(declared), but step \(reader) reads image \(image)")
            }
        }
    }

    /// Streaming batches: a new batch starts where chunks must be issued first, or where a step needs more
    /// landed chunks than every earlier step (so earlier steps are not held back by later steps' weights).
    /// Waits are cumulative: the barrier between consecutive steps orders a batch after the previous one,
    /// so a batch never needs to wait for less than the batch before it.
    func streamingBatches(stepCount: Int) -> [Batch] {
        var batches: [Batch] = []
        let issueSteps = Set(issueBefore)
        var waited = 0
        for k in 0..<stepCount {
            if !batches.isEmpty, !issueSteps.contains(k), stepNeed[k] <= waited {
                batches[batches.count - 1].steps = batches[batches.count - 1].steps.lowerBound..<(k + 1)
            } else {
                waited = max(waited, stepNeed[k])
                batches.append(Batch(steps: k..<(k + 1), waitLoaded: waited))
            }
        }
        return batches
    }
}

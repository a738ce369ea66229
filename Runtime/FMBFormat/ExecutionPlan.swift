/// What the session derives from a validated bundle (`LoadedBundle.validate()`: indices in range, chunks tile
/// their images, a schedule that cannot deadlock) before touching Vulkan: the streaming plan (chunk ordinals,
/// when each is issued, which `loaded` value each step waits for, how steps are batched into submissions).
/// Pure values.
///
/// Vocabulary: a chunk's *ordinal* is its position among the chunks this plan copies, in `Schedule.order`;
/// the `loaded` timeline counts finished copies in that order, so `loaded >= o + 1` means chunks 0…o have
/// landed. A session has two plans: the first run copies every chunk; later runs only those of streamed images
/// (resident ones stay loaded).
public struct ExecutionPlan: Sendable {
    /// Per ordinal: the chunk index.
    public let order: [Int]
    /// Per ordinal: the chunk's own issueStep (its copy waits for `computed >= issueStep`).
    public let issueStep: [Int]
    /// Per ordinal: the step before which the host loop issues it. Copies are issued in ordinal order
    /// (timeline values must grow), so this is the running maximum of `issueStep`.
    public let issueBefore: [Int]
    /// Per image: the ordinals of its first and last chunk (nil for an image without chunks).
    public let imageFirstOrdinal: [Int?]
    public let imageLastOrdinal: [Int?]
    /// Per step: the `loaded` value it needs (all chunks of the images it waits for), 0 for none.
    public let stepNeed: [Int]

    /// A run of consecutive steps submitted together.
    public struct Batch: Equatable, Sendable {
        public var steps: Range<Int>
        /// `loaded` value to wait for before the batch starts (0: none).
        public var waitLoaded: Int

        public init(steps: Range<Int>, waitLoaded: Int) {
            self.steps = steps
            self.waitLoaded = waitLoaded
        }
    }

    /// - Parameter copies: per image, whether this plan copies its chunks (nil: all of them).
    public init(_ loaded: LoadedBundle, copies: [Bool]? = nil) {
        self.init(loaded.bundle, copies: copies)
    }

    /// - Parameter copies: per image, whether this plan copies its chunks (nil: all of them).
    public init(_ bundle: FMBundle, copies: [Bool]? = nil) {
        // Indices, ranges and the schedule's consistency were checked by the one validator
        // (`LoadedBundle.validate()`, which `Session` runs first); this only derives.
        let schedule = bundle.schedule
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

        // What each step must wait for: every chunk of every image whose wait step it is (its first use unless the
        // plan waits earlier, `Schedule.waitStep`; the validator keeps it between the chunks' issue and first use).
        var need = [Int](repeating: 0, count: bundle.program.count)
        for (i, lastOrdinal) in last.enumerated() {
            guard let lastOrdinal else { continue }  // resident in this plan: loaded earlier
            let k = schedule.waitStep(image: i)
            if k < need.count { need[k] = max(need[k], lastOrdinal + 1) }
        }
        stepNeed = need
    }

    /// Whether a run of this plan overlaps copies with its steps when asked to stream: only when it copies something.
    public func streams(_ streaming: Bool) -> Bool { streaming && !order.isEmpty }

    /// The submissions of a run of `stepCount` steps: `streamingBatches` when it streams (`streams`), else one batch
    /// (nothing to copy, or every copy lands before the first step).
    public func batches(stepCount: Int, streaming: Bool) -> [Batch] {
        streams(streaming) && stepCount > 0
            ? streamingBatches(stepCount: stepCount) : [Batch(steps: 0..<stepCount, waitLoaded: 0)]
    }

    /// Streaming batches: a new batch starts where chunks must be issued first, or where a step needs more
    /// landed chunks than every earlier step (so earlier steps are not held back by later steps' weights).
    /// Waits are cumulative: the barrier between consecutive steps orders a batch after the previous one,
    /// so a batch never needs to wait for less than the batch before it.
    public func streamingBatches(stepCount: Int) -> [Batch] {
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

extension FMBundle {
    /// Compute submissions of a streamed run, as the runtime cuts them (`ExecutionPlan.streamingBatches`): the first
    /// run, which copies every image, and later runs, which copy the streamed ones (one when they copy nothing).
    public var streamingSubmissions: (first: Int, warm: Int) {
        func count(_ copies: [Bool]?) -> Int {
            ExecutionPlan(self, copies: copies).batches(stepCount: program.count, streaming: true).count
        }
        return (count(nil), count(placement.map { $0.slots.map { !$0.resident } }))
    }
}

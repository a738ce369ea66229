// The load plan: from the lowered program's steps and weight images to the bundle's `schedule` (time: issue
// order and steps, the cost model, predictions) and `placement` (memory: which images stay resident, where every
// slot lives in the weight space) under ONE device budget covering the arena and the weights.

import FMBFormat

/// What `fmc compile --memory-budget` asks for.
public enum MemoryBudget: Equatable, Sendable, CustomStringConvertible {
    /// Everything resident, nothing streamed by warm runs.
    case unbounded
    /// Device bytes for everything the run needs at any moment: arena + weight space.
    case bytes(UInt64)
    /// The arena plus this fraction of the weights' bytes (0 < f ≤ 1), e.g. 0.25 for "25%".
    case fractionOfWeights(Double)
    /// The smallest budget whose predicted warm latency is within `LoadPlanning.autoTolerance` of all-resident.
    case auto

    public var description: String {
        switch self {
        case .unbounded: "unbounded"
        case .bytes(let b): "\(b) bytes"
        case .fractionOfWeights(let f): "\(f * 100)% of the weights"
        case .auto: "auto"
        }
    }
}

/// Figures of the plan for the compile report.
public struct LoadPlanReport: Sendable {
    public var budgetBytes: UInt64 = 0
    public var arenaBytes: UInt64 = 0
    public var weightSpaceBytes: UInt64 = 0
    public var residentBytes: UInt64 = 0
    public var streamedBytes: UInt64 = 0
    public var predictedSeconds = 0.0
    public var lowerBoundSeconds = 0.0
    /// Σ step times: the warm latency with every weight resident.
    public var computeSeconds = 0.0
    public var method: Placement.Method = .allResident
    /// The wall-clock safety net, not the work budget, ended the plan's search (`LoadSchedule.stoppedByClock`):
    /// compiling again may give another plan.
    public var stoppedByClock = false
    /// The final plan's search: work units spent (of `LoadPlanner.Options.workUnits`) and wall-clock seconds.
    public var searchUnits = 0
    public var searchSeconds = 0.0
    /// What `auto` chose, and why; nil otherwise.
    public var autoChoice: String?
    /// Compute submissions of a streamed first and warm run (`FMBundle.streamingSubmissions`), once the bundle exists.
    public var submissions: (first: Int, warm: Int)?
}

enum LoadPlanning {
    /// Each segment of the weight space becomes one allocation; 1 GiB is below every maxMemoryAllocationSize
    /// we target (lavapipe 2 GiB, NVIDIA 4 GiB).
    static let segmentBytes: UInt64 = 1 << 30
    /// Slot offsets are multiples of this (the H200 asks 1 KiB for images, lavapipe 16 B).
    static let slotAlignment: UInt64 = 4 << 10
    /// `auto` accepts a predicted warm latency this much above all-resident.
    static let autoTolerance = 0.05

    /// The slot an image needs on a device: each layer's rows as a tiled layout pads them
    /// (`ImageLayout.paddedRows`), aligned to `slotAlignment`.
    static func slotBytes(_ image: Image) -> UInt64 {
        let rows = UInt64(ImageLayout.paddedRows(Int(image.height)))
        let bytes = UInt64(image.width) * rows * UInt64(image.layers) * UInt64(image.format.texelBytes)
        return alignUp(bytes, slotAlignment)
    }

    struct Input {
        var stepSeconds: [Double]
        var images: [Image]
        var firstUse: [Int]
        var lastUse: [Int]
        /// Per image, its chunk indices in copy order.
        var chunksOf: [[Int]]
        var chunkCount: Int
        var arenaBytes: UInt64
        var model: CostModel
    }

    static func plan(_ input: Input, budget: MemoryBudget, name: String, options: LoadPlanner.Options = .init()) throws
        -> (schedule: Schedule, placement: Placement, report: LoadPlanReport) {
        let slots = input.images.map(slotBytes)
        // "100%" is every weight resident: the weight space of the all-resident placement (segment ends included).
        let largest = slots.indices.max { slots[$0] < slots[$1] }
        if let largest, slots[largest] > segmentBytes {
            throw CompileError(file: name, "weight image '\(input.images[largest].name)' needs \(slots[largest]) bytes, "
                               + "more than one allocation segment (\(segmentBytes) bytes); limit image sizes so it is split")
        }
        let weightBytes = try SlotPlacement.place(sizes: slots, alignments: slots.map { _ in slotAlignment },
                                                  resident: slots.map { _ in true }, windows: slots.map { _ in 0...0 },
                                                  segmentBytes: segmentBytes).end
        var report = LoadPlanReport()
        report.arenaBytes = input.arenaBytes
        report.computeSeconds = input.stepSeconds.reduce(0, +)
        let budgetBytes: UInt64?
        switch budget {
        case .unbounded: budgetBytes = nil
        case .bytes(let b): budgetBytes = b
        case .fractionOfWeights(let f): budgetBytes = input.arenaBytes + UInt64((Double(weightBytes) * f).rounded(.up))
        case .auto: budgetBytes = try autoBudget(input, slots: slots, name: name, report: &report)
        }
        if let budgetBytes {
            let minimum = minimumBudget(input, slots: slots)
            if budgetBytes < minimum {
                let why = budgetBytes < input.arenaBytes ? "the activation arena alone takes \(input.arenaBytes) bytes"
                    : "the arena takes \(input.arenaBytes) bytes and the weights read by one step with their "
                        + "neighbours need \(minimum - input.arenaBytes)"
                throw CompileError(file: name, "memory budget of \(budgetBytes) bytes is too small: \(why); the smallest "
                                   + "feasible budget is \(minimum) bytes")
            }
        }
        let solved = try solve(input, slots: slots, capacity: budgetBytes.map { $0 - input.arenaBytes }, name: name,
                               options: options)

        // Chunks in issue order: by their image's issue step, then first use, then image.
        let imageOrder = input.images.indices.sorted {
            (solved.issueStep[$0], input.firstUse[$0], $0) < (solved.issueStep[$1], input.firstUse[$1], $1)
        }
        var order: [UInt32] = []
        var issueStep = [UInt32](repeating: 0, count: input.chunkCount)
        for i in imageOrder {
            for c in input.chunksOf[i] {
                order.append(UInt32(c))
                issueStep[c] = UInt32(solved.issueStep[i])
            }
        }
        let streamed = input.images.indices.filter { !solved.resident[$0] }.reduce(UInt64(0)) { $0 + input.images[$1].byteSize }
        let schedule = Schedule(order: order, issueStep: issueStep, firstUse: input.firstUse.map { UInt32($0) },
                                lastUse: input.lastUse.map { UInt32($0) }, budgetBytes: budgetBytes ?? 0,
                                bandwidth: input.model.transferBandwidth, stepSeconds: input.stepSeconds,
                                predictedSeconds: solved.predictedSeconds, lowerBoundSeconds: solved.lowerBoundSeconds,
                                waitStep: solved.waitStep.flatMap { $0 == input.firstUse ? nil : $0.map { UInt32($0) } })
        let placement = Placement(
            weightSpaceBytes: solved.weightSpaceBytes, segmentBytes: segmentBytes, slotAlignment: slotAlignment,
            method: solved.method,
            slots: slots.indices.map { Placement.Slot(resident: solved.resident[$0], offset: solved.offsets[$0], size: slots[$0]) })
        report.budgetBytes = budgetBytes ?? 0
        report.weightSpaceBytes = solved.weightSpaceBytes
        report.residentBytes = placement.residentBytes
        report.streamedBytes = streamed
        report.predictedSeconds = solved.predictedSeconds
        report.lowerBoundSeconds = solved.lowerBoundSeconds
        report.method = solved.method
        report.stoppedByClock = report.stoppedByClock || solved.stoppedByClock  // `auto`'s probes set it too
        (report.searchUnits, report.searchSeconds) = (solved.searchUnits, solved.searchSeconds)
        return (schedule, placement, report)
    }

    static func problem(_ input: Input, slots: [UInt64], capacity: UInt64?) -> ScheduleProblem {
        ScheduleProblem(stepSeconds: input.stepSeconds,
                        loads: input.images.indices.map {
                            ScheduleProblem.Load(bytes: slots[$0], firstUse: input.firstUse[$0], lastUse: input.lastUse[$0])
                        },
                        bandwidth: input.model.transferBandwidth, capacityBytes: capacity,
                        segmentBytes: segmentBytes, slotAlignment: slotAlignment,
                        submissionSeconds: input.model.submissionSeconds)
    }

    /// Resident set, issue steps and slots for a weight capacity (nil: unbounded, everything resident), by
    /// `LoadPlanner` (heuristic, and GLPK's MIP where it has time).
    static func solve(_ input: Input, slots: [UInt64], capacity: UInt64?, name: String,
                      options: LoadPlanner.Options = .init()) throws -> LoadSchedule {
        do {
            return try LoadPlanner.solve(problem(input, slots: slots, capacity: capacity), options: options)
        } catch let error as CompileError {
            throw CompileError(file: name, error.message)
        }
    }

    /// The smallest budget (arena + weights) for which a plan exists (`LoadPlanner.minimumCapacity`).
    static func minimumBudget(_ input: Input, slots: [UInt64]) -> UInt64 {
        input.arenaBytes + LoadPlanner.minimumCapacity(problem(input, slots: slots, capacity: nil))
    }

    /// `auto`: bisects the weight capacity for the smallest whose predicted warm latency is within
    /// `autoTolerance` of all-resident (Σ step times); probes run the heuristic alone, briefly.
    static func autoBudget(_ input: Input, slots: [UInt64], name: String, report: inout LoadPlanReport) throws -> UInt64 {
        let compute = input.stepSeconds.reduce(0, +)
        let target = compute * (1 + autoTolerance)
        let probe = LoadPlanner.Options(workUnits: LoadPlanner.Options.defaultWorkUnits / 8, useExact: false)
        var low = LoadPlanner.minimumCapacity(problem(input, slots: slots, capacity: nil))
        var high = slots.reduce(0, +) + segmentBytes
        if let solved = try? solve(input, slots: slots, capacity: low, name: name, options: probe) {
            report.stoppedByClock = report.stoppedByClock || solved.stoppedByClock
            if solved.predictedSeconds <= target { high = low }
        }
        while high - low > max(high / 256, slotAlignment) {
            let mid = low + (high - low) / 2
            let solved = try? solve(input, slots: slots, capacity: mid, name: name, options: probe)
            report.stoppedByClock = report.stoppedByClock || solved?.stoppedByClock == true
            if let solved, solved.predictedSeconds <= target {
                high = mid
            } else {
                low = mid
            }
        }
        let budget = input.arenaBytes + high
        report.autoChoice = "auto: \(budget) bytes, the smallest budget found whose predicted warm latency is within "
            + "\(Int(autoTolerance * 100))% of all-resident (\(String(format: "%.3f", compute * 1000)) ms)"
        return budget
    }
}

extension Compiler {
    /// A new load plan for a compiled bundle: another budget, another cost model's bandwidth, or measured step
    /// times, without compiling the model again. Kernels, images and chunks are unchanged (so is the image limit
    /// the weights were cut with); only `schedule` and `placement` are recomputed.
    ///
    /// - Parameters:
    ///   - stepSeconds: step times to plan with (e.g. a profile); nil keeps the bundle's.
    ///   - bandwidth: host→device bytes/s to plan with; nil keeps the bundle's.
    ///   - submissionSeconds: the device's cost of a compute-submission boundary (`CostModel.submissionSeconds`).
    public static func replan(_ bundle: FMBundle, budget: MemoryBudget, stepSeconds: [Double]? = nil,
                              bandwidth: Double? = nil, submissionSeconds: Double = 0,
                              name: String) throws -> (bundle: FMBundle, report: LoadPlanReport) {
        try replan(bundle, budget: budget, stepSeconds: stepSeconds, bandwidth: bandwidth,
                   submissionSeconds: submissionSeconds, name: name, options: .init())
    }

    static func replan(_ bundle: FMBundle, budget: MemoryBudget, stepSeconds: [Double]?, bandwidth: Double?,
                       submissionSeconds: Double, name: String,
                       options: LoadPlanner.Options) throws -> (bundle: FMBundle, report: LoadPlanReport) {
        let input = try planningInput(bundle, stepSeconds: stepSeconds, bandwidth: bandwidth,
                                      submissionSeconds: submissionSeconds, name: name)
        var (schedule, placement, report) = try LoadPlanning.plan(input, budget: budget, name: name, options: options)
        var out = bundle
        out.schedule = schedule
        out.placement = placement
        report.submissions = out.streamingSubmissions
        return (out, report)
    }

    /// The smallest budget (arena + weights) `replan` accepts for this bundle with these step times and bandwidth.
    public static func minimumBudget(_ bundle: FMBundle, stepSeconds: [Double]? = nil, bandwidth: Double? = nil,
                                     submissionSeconds: Double = 0, name: String) throws -> UInt64 {
        let input = try planningInput(bundle, stepSeconds: stepSeconds, bandwidth: bandwidth,
                                      submissionSeconds: submissionSeconds, name: name)
        return LoadPlanning.minimumBudget(input, slots: input.images.map(LoadPlanning.slotBytes))
    }

    /// A compiled bundle as the load planner's input.
    static func planningInput(_ bundle: FMBundle, stepSeconds: [Double]?, bandwidth: Double?,
                              submissionSeconds: Double, name: String) throws -> LoadPlanning.Input {
        let steps = stepSeconds ?? bundle.schedule.stepSeconds
        guard steps.count == bundle.program.count else {
            throw CompileError(file: name, "\(steps.count) step times for a bundle of \(bundle.program.count) steps")
        }
        var chunksOf = [[Int]](repeating: [], count: bundle.images.count)
        for c in bundle.schedule.order.map(Int.init) { chunksOf[Int(bundle.chunks[c].image)].append(c) }
        // Only the bandwidth and the submission cost matter once step times are known.
        let model = CostModel(name: "bundle", flopsPerSecond: 1, memoryBandwidth: 1,
                              transferBandwidth: bandwidth ?? bundle.schedule.bandwidth, launchSeconds: 0,
                              submissionSeconds: submissionSeconds)
        return LoadPlanning.Input(stepSeconds: steps, images: bundle.images,
                                  firstUse: bundle.schedule.firstUse.map(Int.init),
                                  lastUse: bundle.schedule.lastUse.map(Int.init), chunksOf: chunksOf,
                                  chunkCount: bundle.chunks.count, arenaBytes: bundle.meta.arenaSize, model: model)
    }
}

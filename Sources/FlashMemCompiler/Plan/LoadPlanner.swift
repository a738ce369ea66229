// LoadPlanner: which weight images stay resident, when each streamed image's copy is issued, and where
// every image's slot lies — DESIGN.md, "The schedule problem".
//
// ## The model (LoadPlanner.simulate is its one source of truth)
// A warm run executes steps 0..<K with predicted times t_k. Resident images are already on the device and
// cost nothing. Streamed images are copied one after another on one transfer queue at `bandwidth`, in the
// order (issueStep, firstUse, index); a copy starts when the queue is free and steps 0..<issueStep have
// finished. Step k starts when step k−1 has ended and every streamed image first read by k has landed.
// The makespan is the end of the last step.
//
// Memory: a streamed image holds its slot over steps [issueStep, lastUse], a resident one always. Streamed
// slots may share bytes when their step intervals are disjoint; resident slots share nothing. Resident
// slots are packed from offset 0, then streamed slots are placed first-fit above them (largest first, or in
// issue order when that gives a smaller weight space); no slot straddles a multiple of `segmentBytes` (one
// device allocation each). The highest slot end (the weight space) must not exceed the capacity.
//
// ## The exact formulation (LoadPlanner+Exact.swift, solved with GLPK's branch and cut)
// Binary x[i,k] (image i streamed, its copy issued at step k ≤ firstUse_i) and r[i] (resident),
// Σ_k x[i,k] + r[i] = 1. Continuous y[i,j] ≥ 0: seconds of image i's copy that run in step j's window
// (issue_i ≤ j ≤ firstUse_i), Σ_j y[i,j] = d_i(1 − r_i) with d_i = bytes_i / bandwidth, and
// y[i,j] ≤ d_i Σ_{k≤j} x[i,k] (no copy before its issue). Window j lasts T_j ≥ t_j + Σ_{firstUse_i=j} y[i,j]
// (copies step j waits for run first, then the step) and T_j ≥ Σ_i y[i,j] (the queue is busy at most the
// whole window). Memory per step: Σ resident bytes + Σ bytes of streamed images live at k ≤ capacity
// (fragmentation ignored; see below). Issue steps are monotone in first use (firstUse_a < firstUse_b ⇒
// issue_a ≤ issue_b for streamed a, b), through one "frontier" variable per first-use group.
// Objective: minimize Σ_j T_j, less a tie-break reward for resident bytes worth at most 1e-6 of Σ t_j in
// all (so among equally fast plans the MIP streams the fewest bytes); ExactResult reports Σ_j T_j alone.
//
// Relation to simulate: with monotone issue steps the queue order (issueStep, firstUse, index) is
// earliest-deadline-first with release times in the same order, so the copies are never better served by
// preemption, and the best split y of a fixed (r, x) gives Σ_j T_j = simulate(r, issue) exactly (the test
// suite checks this equality, and that the MIP's optimum equals a brute-force minimum of simulate over all
// monotone, memory-feasible assignments). Non-monotone assignments are outside the MIP's space; the
// heuristic never produces them either (and on the brute-forced test instances none was faster).
//
// Fragmentation: the MIP bounds bytes, not the placement. Its plan is placed; if the weight space
// overflows the capacity by E bytes, the MIP is solved again with the capacity reduced by E (a few times).
//
// ## Windows
// Large instances are solved in rolling windows: the loads are taken in first-use order, a few at a time;
// each window frees those loads (resident or issue step in [windowStart − lookback, firstUse]) over the
// steps of the window plus a lookback that covers their transfer time (at most 32 steps). Decisions of
// earlier windows are fixed; later loads keep the heuristic's plan (their memory counts; their copies are
// not modelled inside the window). A window's plan goes through the heuristic's fragmentation repair (delay prefetches under a
// lower limit) and is kept only when the whole plan then simulates faster and places within the capacity,
// so windows never make the heuristic's plan worse. The result is `.windowedExact` when any window was kept.
//
// ## Submission boundaries
// A run starts another compute submission at every issue step and every wait step (`submissionSeconds` each,
// `timeline`). The solvers wait for each image at its first use; `coalesce` (LoadPlanner+Coalesce.swift) then moves
// issues and waits onto fewer steps where that simulates faster, in the last quarter of the search budget. The
// bundle stores the waits (`Schedule.waitStep`, format 1.4).
//
// ## Fallback, and the search budget
// Every phase below stops at its share of one work budget (SearchBudget.swift: elements visited, GLPK's nodes and
// simplex iterations included), not at a wall-clock time, so a compile gives the same plan on every machine; a
// wall-clock limit is only a safety net, and a plan it cut short says so (`LoadSchedule.stoppedByClock`).
// The heuristic (LoadPlanner+Heuristic.swift) always runs: its prefix scan to the end, its local search for
// at most 40% of the budget. The exact method runs when budget is left, the heuristic has not already
// reached the lower bound, and GLPK returns a solution; a window whose MIP finds nothing within its share
// keeps the heuristic's decisions. Budget the exact method leaves goes to local search from the best plan
// (a plan it improves is labelled `.heuristic`). `solve` keeps whichever plan simulates faster (ties: fewer
// streamed bytes, then the earlier one). `.exact` means one MIP over the whole instance: optimal for the MIP
// unless its share of the budget stopped GLPK at a feasible plan (a LoadSchedule does not say which). On
// large instances the result depends on how far the budget let the search go.

import FMBFormat
import Foundation

public enum LoadPlanner {
    public struct Options: Sendable {
        /// The search's work budget, in elements visited (`SearchBudget`): what makes the plan the same on every
        /// machine. The default is about 2–3 s on a 2-core development VM for a 1000-step, 300-image problem that
        /// does not converge sooner (Depth Anything L, SAM 2, Whisper-Medium and SD-UNet converge within it in
        /// 0.3–1.1 s).
        public var workUnits: Int
        /// Wall-clock safety net for the whole solve, seconds: reached only on a machine far slower than the
        /// budget assumes, and then reported (`LoadSchedule.stoppedByClock`).
        public var timeLimitSeconds: Double
        /// Run the MIP at all.
        public var useExact: Bool
        /// Instances with at most this many issue variables x[i,k] are solved by one MIP; larger ones in windows.
        public var exactMaxIssueVariables: Int
        /// Loads freed per window of the windowed method.
        public var windowLoads: Int

        public static let defaultWorkUnits = 300_000_000

        public init(workUnits: Int = Options.defaultWorkUnits, timeLimitSeconds: Double = 60, useExact: Bool = true,
                    exactMaxIssueVariables: Int = 400, windowLoads: Int = 8) {
            self.workUnits = workUnits
            self.timeLimitSeconds = timeLimitSeconds
            self.useExact = useExact
            self.exactMaxIssueVariables = exactMaxIssueVariables
            self.windowLoads = windowLoads
        }
    }

    /// A decision without a placement: per load, resident or the step its copy is issued at.
    struct Plan: Equatable {
        var resident: [Bool]
        var issueStep: [Int]
        /// Per load, the step whose submission waits for it; nil: its first use (what the solvers plan with;
        /// `coalesce` sets it).
        var waitStep: [Int]? = nil
    }

    // MARK: Solve

    /// The best plan the heuristic and the exact method find within `options.workUnits`.
    /// Throws a CompileError for a malformed problem or a capacity below `minimumCapacity`.
    public static func solve(_ p: ScheduleProblem, options: Options = .init()) throws -> LoadSchedule {
        try p.validate()
        let clock = Date()
        let budget = SearchBudget(units: options.workUnits, seconds: options.timeLimitSeconds)
        var solved = try solve(p, options: options, budget: budget)
        solved.stoppedByClock = budget.stoppedByClock
        solved.searchUnits = budget.spent
        solved.searchSeconds = Date().timeIntervalSince(clock)
        return solved
    }

    private static func solve(_ p: ScheduleProblem, options: Options, budget: SearchBudget) throws -> LoadSchedule {
        let end = budget.deadline(1)
        // Where boundaries cost time, the last quarter of the budget merges them (`coalesce`, after the solvers).
        let deadline = p.submissionSeconds > 0 ? budget.deadline(0.75) : end
        guard let capacity = p.capacityBytes else {
            // Unbounded: everything resident; warm runs stream nothing and run at Σ t_k, the lower bound.
            let plan = Plan(resident: Array(repeating: true, count: p.loads.count),
                            issueStep: Array(repeating: 0, count: p.loads.count))
            return schedule(p, coalesce(p, plan, capacity: nil, deadline: end), method: .allResident)
        }
        let minimum = minimumCapacity(p)
        if capacity < minimum {
            throw capacityError(p, capacity: capacity, minimum: minimum)
        }

        // The heuristic's local search gets 40% of the budget when the exact method follows; what the exact
        // method leaves goes to local search from the best plan (whose label stays unless it improves).
        let heuristicDeadline = options.useExact ? budget.deadline(0.4) : deadline
        var best = schedule(p, heuristic(p, capacity: capacity, deadline: heuristicDeadline, hardDeadline: deadline),
                            method: .heuristic)
        if options.useExact, !p.loads.isEmpty, best.predictedSeconds > best.lowerBoundSeconds * (1 + 1e-9),
           !deadline.passed {
            if let exact = exactSchedule(p, capacity: capacity, start: best, options: options, deadline: deadline),
               better(exact, than: best, p) {
                best = exact
            }
            let searched = localSearch(p, capacity: capacity,
                                       start: Plan(resident: best.resident, issueStep: best.issueStep), deadline: deadline)
            let candidate = schedule(p, searched, method: .heuristic)
            if better(candidate, than: best, p) { best = candidate }
        }
        // Boundaries merged last: the solvers above plan without wait steps.
        let merged = coalesce(p, Plan(resident: best.resident, issueStep: best.issueStep), capacity: capacity,
                              deadline: end)
        return schedule(p, merged, method: best.method)
    }

    /// The smallest weight capacity `solve` accepts, computed directly rather than by bisection: the weight
    /// space of the just-in-time plan (everything streamed, each copy issued at its first use) under the
    /// planner's placement. That plan gives every image its shortest live interval, so it holds the fewest
    /// bytes at every step of any plan; its placement does not depend on the capacity, and `solve` always
    /// keeps it as a fallback, so every capacity at least this large yields a schedule and `solve` throws
    /// below it. (Another placement could in principle pack the same intervals tighter; first-fit's
    /// fragmentation is the only slack between this and the peak live bytes the error message reports.)
    public static func minimumCapacity(_ p: ScheduleProblem) -> UInt64 {
        place(p, justInTime(p)).weightSpaceBytes
    }

    static func justInTime(_ p: ScheduleProblem) -> Plan {
        Plan(resident: Array(repeating: false, count: p.loads.count), issueStep: p.loads.map(\.firstUse))
    }

    static func capacityError(_ p: ScheduleProblem, capacity: UInt64, minimum: UInt64) -> CompileError {
        let live = liveBytes(p, justInTime(p))
        let step = live.indices.max { (live[$0], $1) < (live[$1], $0) } ?? 0
        let readers = p.loads.indices.filter { p.loads[$0].firstUse <= step && step <= p.loads[$0].lastUse }
        let shown = readers.prefix(8).map { "load \($0) (\(p.loads[$0].bytes) bytes)" }
        let more = readers.count > 8 ? ", and \(readers.count - 8) more" : ""
        return CompileError(file: "<schedule>",
            "memory budget too small: weight capacity is \(capacity) bytes, but weights need at least "
            + "\(live.isEmpty ? 0 : live[step]) bytes at step \(step) (images read there: "
            + "\(shown.joined(separator: ", "))\(more)); the smallest feasible weight capacity is \(minimum) bytes")
    }

    /// a is better than b: faster, or as fast and streaming fewer bytes.
    static func better(_ a: LoadSchedule, than b: LoadSchedule, _ p: ScheduleProblem) -> Bool {
        let tolerance = 1e-9 * max(a.predictedSeconds, b.predictedSeconds)
        if a.predictedSeconds < b.predictedSeconds - tolerance { return true }
        if a.predictedSeconds > b.predictedSeconds + tolerance { return false }
        return a.streamedBytes(p) < b.streamedBytes(p)
    }

    /// Places, simulates and bounds a plan.
    static func schedule(_ p: ScheduleProblem, _ plan: Plan, method: LoadSchedule.Method) -> LoadSchedule {
        let placement = place(p, plan)
        let streamed = p.loads.indices.reduce(0.0) { plan.resident[$1] ? $0 : $0 + Double(p.loads[$1].bytes) }
        let lowerBound = max(p.stepSeconds.reduce(0, +), streamed / p.bandwidth)
        return LoadSchedule(resident: plan.resident, issueStep: plan.issueStep, offsets: placement.offsets,
                            weightSpaceBytes: placement.weightSpaceBytes,
                            predictedSeconds: simulate(p, resident: plan.resident, issueStep: plan.issueStep,
                                                       waitStep: plan.waitStep),
                            lowerBoundSeconds: lowerBound, method: method, waitStep: plan.waitStep)
    }

    // MARK: Time

    /// Where the runtime starts another compute submission of a run that copies `copied`
    /// (ExecutionPlan.streamingBatches): where copies are issued and where a step waits for copied images.
    static func cutSteps(_ p: ScheduleProblem, copied: [Int], issueStep: [Int], waitStep: [Int]) -> Set<Int> {
        var steps = Set<Int>()
        for i in copied {
            if issueStep[i] > 0, issueStep[i] < p.stepSeconds.count { steps.insert(issueStep[i]) }
            if waitStep[i] > 0 { steps.insert(waitStep[i]) }
        }
        return steps
    }

    /// Makespan of a warm run (see the model above). Issue steps of resident loads are ignored.
    public static func simulate(_ p: ScheduleProblem, resident: [Bool], issueStep: [Int], waitStep: [Int]? = nil) -> Double {
        timeline(p, resident: resident, issueStep: issueStep, waitStep: waitStep).makespan
    }

    /// `simulate`'s makespan and when the last streamed copy lands (0 when nothing is streamed): from then on the
    /// transfer queue idles, which is where `fmc plan-pipeline` counts on the next model's prefetch.
    ///
    /// - Parameters:
    ///   - waitStep: per load, the step whose submission waits for it (nil: its first use; `Schedule.waitStep`).
    ///   - firstRun: model the first run instead, which copies resident loads too (at their issue steps).
    static func timeline(_ p: ScheduleProblem, resident: [Bool], issueStep: [Int], waitStep: [Int]? = nil,
                         firstRun: Bool = false) -> (makespan: Double, lastLanding: Double) {
        let order = p.loads.indices.filter { firstRun || !resident[$0] }.sorted {
            (issueStep[$0], p.loads[$0].firstUse, $0) < (issueStep[$1], p.loads[$1].firstUse, $1)
        }
        let wait = waitStep ?? p.loads.map(\.firstUse)
        var landedBy = [Double](repeating: 0, count: p.stepSeconds.count)  // latest landing per wait step
        var cut = [Bool](repeating: false, count: p.stepSeconds.count)
        if p.submissionSeconds > 0 {
            for k in cutSteps(p, copied: order, issueStep: issueStep, waitStep: wait) { cut[k] = true }
        }
        var next = 0
        var queueFree = 0.0
        var previousEnd = 0.0
        for k in p.stepSeconds.indices {
            while next < order.count, issueStep[order[next]] <= k {
                let i = order[next]
                queueFree = max(queueFree, previousEnd) + p.transferSeconds(i)
                landedBy[wait[i]] = max(landedBy[wait[i]], queueFree)
                next += 1
            }
            let boundary = cut[k] ? p.submissionSeconds : 0
            previousEnd = max(previousEnd + boundary, landedBy[k]) + p.stepSeconds[k]
        }
        return (previousEnd, order.isEmpty ? 0 : queueFree)
    }

    // MARK: Memory

    /// Bytes held at each step, fragmentation ignored: resident loads everywhere, streamed ones over
    /// [issueStep, lastUse].
    static func liveBytes(_ p: ScheduleProblem, _ plan: Plan) -> [UInt64] {
        var delta = [Int64](repeating: 0, count: p.stepSeconds.count + 1)
        for (i, load) in p.loads.enumerated() {
            let from = plan.resident[i] ? 0 : plan.issueStep[i]
            let to = plan.resident[i] ? p.stepSeconds.count : load.lastUse + 1
            delta[from] += Int64(load.bytes)
            delta[to] -= Int64(load.bytes)
        }
        var live: Int64 = 0
        return p.stepSeconds.indices.map { k in
            live += delta[k]
            return UInt64(live)
        }
    }

    /// Slot offsets and the weight space of a plan (the placement rules above). Streamed slots are placed
    /// first-fit in two orders, largest first and by issue step (as an allocator running with the copies
    /// would); the lower weight space wins, largest first on a tie.
    static func place(_ p: ScheduleProblem, _ plan: Plan) -> (offsets: [UInt64], weightSpaceBytes: UInt64) {
        let bySize = p.loads.indices.sorted { (p.loads[$1].bytes, $0) < (p.loads[$0].bytes, $1) }
        let byIssue = p.loads.indices.sorted {
            (plan.issueStep[$0], p.loads[$0].firstUse, $0) < (plan.issueStep[$1], p.loads[$1].firstUse, $1)
        }
        let a = place(p, plan, streamedOrder: bySize)
        let b = place(p, plan, streamedOrder: byIssue)
        return b.weightSpaceBytes < a.weightSpaceBytes ? b : a
    }

    static func place(_ p: ScheduleProblem, _ plan: Plan,
                      streamedOrder: [Int]) -> (offsets: [UInt64], weightSpaceBytes: UInt64) {
        let sizes = p.loads.map(\.bytes)
        let windows = p.loads.indices.map { i in
            plan.resident[i] ? 0...max(p.stepSeconds.count, 1) : plan.issueStep[i]...max(plan.issueStep[i], p.loads[i].lastUse)
        }
        // `validate` rejected loads larger than a segment, so placement cannot fail.
        let placed = try! SlotPlacement.place(sizes: sizes, alignments: sizes.map { _ in max(p.slotAlignment, 1) },
                                              resident: plan.resident, windows: windows,
                                              segmentBytes: max(p.segmentBytes, 1), streamedOrder: streamedOrder)
        return (placed.offsets, placed.end)
    }
}

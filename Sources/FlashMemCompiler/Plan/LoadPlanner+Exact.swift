// The exact method: the time-indexed MIP described at the top of LoadPlanner.swift, built over a range of
// steps with some loads free and the others fixed, solved by GLPK (glp_intopt). One MIP over everything
// is `.exact`; rolling windows are `.windowedExact`.

import CGLPK
import Foundation

extension LoadPlanner {
    /// The MIP's answer for its free loads.
    struct ExactResult {
        var plan: Plan
        /// The MIP objective Σ T_j over its step range, seconds.
        var objectiveSeconds: Double
        /// GLPK proved it optimal (not just feasible when its budget ran out).
        var optimal: Bool
    }

    // MARK: Driver

    /// The best exact (or windowed) schedule within `capacity`, or nil when GLPK found nothing within its budget.
    static func exactSchedule(_ p: ScheduleProblem, capacity: UInt64, start: LoadSchedule, options: Options,
                              deadline: SearchDeadline) -> LoadSchedule? {
        let issueVariables = p.loads.reduce(0) { $0 + $1.firstUse + 1 }
        if issueVariables <= options.exactMaxIssueVariables {
            var limit = capacity
            for _ in 0..<4 {
                guard !deadline.passed,
                      let result = solveModel(p, capacity: limit, steps: 0..<p.stepSeconds.count,
                                              free: Array(p.loads.indices), fixed: nil, deadline: deadline)
                else { return nil }
                let candidate = schedule(p, result.plan, method: .exact)
                if candidate.weightSpaceBytes <= capacity { return candidate }
                let overflow = candidate.weightSpaceBytes - capacity
                guard limit > overflow else { return nil }
                limit -= overflow
            }
            return nil
        }
        return windowed(p, capacity: capacity, start: Plan(resident: start.resident, issueStep: start.issueStep),
                        windowLoads: max(1, options.windowLoads), deadline: deadline)
    }

    /// Rolling windows over the loads in first-use order, starting from `start`. A window's answer is kept
    /// only when the whole plan then simulates faster (or as fast, streaming fewer bytes) and still places
    /// within the capacity: the MIP does not see copies of later loads, so a window alone may mislead.
    /// nil when no window improved on `start`.
    static func windowed(_ p: ScheduleProblem, capacity: UInt64, start: Plan, windowLoads: Int,
                         deadline: SearchDeadline) -> LoadSchedule? {
        let order = p.loads.indices.sorted { (p.loads[$0].firstUse, $0) < (p.loads[$1].firstUse, $1) }
        var current = schedule(p, start, method: .heuristic)
        var plan = start
        var improved = false
        let windowCount = (order.count + windowLoads - 1) / windowLoads
        for window in 0..<windowCount {
            let free = Array(order[(window * windowLoads)..<min(order.count, (window + 1) * windowLoads)])
            let first = p.loads[free[0]].firstUse
            let last = free.map { p.loads[$0].firstUse }.max()!
            // Look back far enough for the window's copies to hide behind earlier steps (at most 32 steps).
            let transfer = free.reduce(0.0) { $0 + p.transferSeconds($1) }
            var s0 = first
            var covered = 0.0
            while s0 > 0, covered < transfer, first - s0 < 32 {
                s0 -= 1
                covered += p.stepSeconds[s0]
            }
            // The MIP counts bytes, not placement: when the plan overflows in placement, solve the window
            // again with the capacity inside its step range lowered by the overflow (twice at most).
            var limit = capacity
            for attempt in 0..<3 {
                let share = deadline.share(1 / Double(windowCount - window) / Double(3 - attempt))
                guard !deadline.passed,
                      let result = solveModel(p, capacity: capacity, rangeCapacity: limit, steps: s0..<(last + 1),
                                              free: free, fixed: plan, deadline: share),
                      result.plan != plan else { break }
                // Fragmentation first meets the heuristic's repair (delay prefetches under a lower limit).
                guard let repaired = fitPlacement(p, result.plan, order: order, capacity: capacity) else {
                    let overflow = schedule(p, result.plan, method: .windowedExact).weightSpaceBytes - capacity
                    guard limit > overflow else { break }
                    limit -= overflow
                    continue
                }
                let candidate = schedule(p, repaired, method: .windowedExact)
                if candidate.weightSpaceBytes <= capacity {
                    if better(candidate, than: current, p) {
                        plan = repaired
                        current = candidate
                        improved = true
                    }
                    break
                }
                let overflow = candidate.weightSpaceBytes - capacity
                guard limit > overflow else { break }
                limit -= overflow
            }
        }
        return improved ? current : nil
    }

    // MARK: Model

    /// Builds and solves the MIP over `steps` with `free` loads decided and every other load as in `fixed`
    /// (nil: all loads are free). Returns the whole plan with the free loads' decisions filled in.
    /// `rangeCapacity` (≤ capacity) bounds the bytes at the steps of the range only.
    static func solveModel(_ p: ScheduleProblem, capacity: UInt64, rangeCapacity: UInt64? = nil, steps: Range<Int>,
                           free: [Int], fixed: Plan?, deadline: SearchDeadline) -> ExactResult? {
        let stepCount = p.stepSeconds.count
        var plan = fixed ?? Plan(resident: Array(repeating: false, count: p.loads.count),
                                 issueStep: Array(repeating: 0, count: p.loads.count))
        var isFree = [Bool](repeating: false, count: p.loads.count)
        for i in free { isFree[i] = true }
        let fixedLoads = p.loads.indices.filter { !isFree[$0] }

        // Units that keep GLPK's coefficients near 1.
        let rangeSeconds = steps.reduce(0.0) { $0 + p.stepSeconds[$1] } + free.reduce(0.0) { $0 + p.transferSeconds($1) }
        let tau = max(rangeSeconds / Double(max(1, steps.count + free.count)), 1e-15)
        let beta = Double(max(capacity, 1))

        // Issue range of each free load: in the step range, after every fixed streamed load read earlier,
        // not after any fixed streamed load read later (the whole plan stays monotone).
        var lo = [Int](repeating: 0, count: p.loads.count)
        var hi = [Int](repeating: 0, count: p.loads.count)
        for i in free {
            let u = p.loads[i].firstUse
            lo[i] = steps.lowerBound
            hi[i] = u
            for j in fixedLoads where !plan.resident[j] {
                if p.loads[j].firstUse < u { lo[i] = max(lo[i], plan.issueStep[j]) }
                if p.loads[j].firstUse > u { hi[i] = min(hi[i], plan.issueStep[j]) }
            }
            if lo[i] > hi[i] { return nil }
        }

        var m = MIPBuilder()
        var r = [Int: Int](), x = [Int: [Int]](), y = [Int: [Int]]()  // load → column(s)
        var yFrom = [Int: Int]()                                        // load → first step with a y column
        // Ties go to the plan streaming fewer bytes: a reward for resident bytes worth at most 1e-6 of the
        // range's compute time in all (objectiveSeconds below is Σ T_j alone, without it).
        let totalFreeBytes = free.reduce(0.0) { $0 + Double(p.loads[$1].bytes) }
        let tieWeight = 1e-6 * steps.reduce(0.0) { $0 + p.stepSeconds[$1] } / tau / max(totalFreeBytes, 1)
        for i in free {
            r[i] = m.addColumn(binary: true, objective: -tieWeight * Double(p.loads[i].bytes))
            x[i] = (lo[i]...hi[i]).map { _ in m.addColumn(binary: true) }
            yFrom[i] = lo[i]
            y[i] = (lo[i]...p.loads[i].firstUse).map { _ in m.addColumn(lower: 0) }
        }
        // Fixed streamed loads read inside the range still need the queue there.
        for i in fixedLoads where !plan.resident[i] && steps.contains(p.loads[i].firstUse) {
            let from = max(plan.issueStep[i], steps.lowerBound)
            yFrom[i] = from
            y[i] = (from...p.loads[i].firstUse).map { _ in m.addColumn(lower: 0) }
        }
        let windowColumns = steps.map { m.addColumn(lower: p.stepSeconds[$0] / tau, objective: 1) }

        for i in free {
            let d = p.transferSeconds(i) / tau
            m.addRow(x[i]!.map { ($0, 1) } + [(r[i]!, 1)], equals: 1)
            m.addRow(y[i]!.map { ($0, 1) } + [(r[i]!, d)], equals: d)
            // No copy before its issue: y[i,j] ≤ d Σ_{k≤j} x[i,k] (at the first use the total row binds).
            for j in lo[i]..<p.loads[i].firstUse {
                let issued = (lo[i]...min(j, hi[i])).map { (x[i]![$0 - lo[i]], -d) }
                m.addRow([(y[i]![j - lo[i]], 1)] + issued, atMost: 0)
            }
        }
        for i in fixedLoads where y[i] != nil {
            m.addRow(y[i]!.map { ($0, 1) }, equals: p.transferSeconds(i) / tau)
        }
        // Windows: T_j ≥ t_j + copies step j waits for; T_j ≥ all copies in window j.
        var blocking = [[(Int, Double)]](repeating: [], count: steps.count)
        var all = [[(Int, Double)]](repeating: [], count: steps.count)
        for (i, columns) in y {
            for (n, column) in columns.enumerated() {
                let j = yFrom[i]! + n
                all[j - steps.lowerBound].append((column, -1))
                if j == p.loads[i].firstUse { blocking[j - steps.lowerBound].append((column, -1)) }
            }
        }
        for (n, j) in steps.enumerated() {
            if !blocking[n].isEmpty {
                m.addRow([(windowColumns[n], 1)] + blocking[n], atLeast: p.stepSeconds[j] / tau)
            }
            if !all[n].isEmpty { m.addRow([(windowColumns[n], 1)] + all[n], atLeast: 0) }
        }

        // Memory at every step. Fixed loads and free loads at [firstUse, lastUse] are constants; a free load
        // adds bytes·r before its issue range and after its last use, and bytes·(r + issued-by-k) inside it.
        var constant = [Double](repeating: 0, count: stepCount + 1)
        func addConstant(_ from: Int, _ to: Int, _ bytes: UInt64) {
            guard from <= to else { return }
            constant[from] += Double(bytes)
            constant[to + 1] -= Double(bytes)
        }
        for i in fixedLoads {
            if plan.resident[i] { addConstant(0, stepCount - 1, p.loads[i].bytes) }
            else { addConstant(plan.issueStep[i], p.loads[i].lastUse, p.loads[i].bytes) }
        }
        for i in free { addConstant(p.loads[i].firstUse, p.loads[i].lastUse, p.loads[i].bytes) }
        for k in 0..<stepCount { constant[k + 1] += constant[k] }
        // Steps outside the range with the same coefficients share one row with the tightest bound.
        var lastKey: [Int]? = nil
        var pending: (terms: [(Int, Double)], bound: Double)? = nil
        for k in 0..<stepCount {
            var terms: [(Int, Double)] = []
            var key: [Int] = []
            for i in free {
                let load = p.loads[i]
                let bytes = Double(load.bytes) / beta
                if k >= load.firstUse && k <= load.lastUse { continue }
                terms.append((r[i]!, bytes))
                if k >= lo[i] && k < load.firstUse {
                    for kk in lo[i]...min(k, hi[i]) { terms.append((x[i]![kk - lo[i]], bytes)) }
                    key.append(-1 - i)
                } else {
                    key.append(i)
                }
            }
            let limit = steps.contains(k) ? min(capacity, rangeCapacity ?? capacity) : capacity
            let bound = (Double(limit) - constant[k]) / beta
            if steps.contains(k) || key != lastKey {
                if let row = pending { m.addRow(row.terms, atMost: row.bound) }
                pending = (terms, bound)
                lastKey = steps.contains(k) ? nil : key
            } else {
                pending!.bound = min(pending!.bound, bound)
            }
        }
        if let row = pending { m.addRow(row.terms, atMost: row.bound) }

        // Monotone issue steps among free loads: a frontier per first-use group, ≥ every issue in the group
        // and the frontier before; a streamed load issues at or after the previous group's frontier.
        let groups = Dictionary(grouping: free) { p.loads[$0].firstUse }.sorted { $0.key < $1.key }.map(\.value)
        var previousFrontier: Int? = nil
        let bigM = Double(steps.upperBound)
        for group in groups {
            let frontier = m.addColumn(lower: 0, upper: bigM)
            for i in group {
                let issue = (lo[i]...hi[i]).map { (x[i]![$0 - lo[i]], Double($0)) }
                m.addRow([(frontier, 1)] + issue.map { ($0.0, -$0.1) }, atLeast: 0)
                if let previous = previousFrontier {
                    m.addRow(issue + [(r[i]!, bigM), (previous, -1)], atLeast: 0)
                }
            }
            if let previous = previousFrontier { m.addRow([(frontier, 1), (previous, -1)], atLeast: 0) }
            previousFrontier = frontier
        }

        guard let solution = m.solve(deadline: deadline) else { return nil }
        for i in free {
            plan.resident[i] = solution.values[r[i]!] > 0.5
            let chosen = (lo[i]...hi[i]).first(where: { solution.values[x[i]![$0 - lo[i]]] > 0.5 })
            plan.issueStep[i] = plan.resident[i] ? 0 : (chosen ?? hi[i])
        }
        let windows = windowColumns.reduce(0.0) { $0 + solution.values[$1] }
        return ExactResult(plan: plan, objectiveSeconds: windows * tau, optimal: solution.optimal)
    }
}

// MARK: GLPK

/// What the branch-and-bound callback charges, and where it stops.
private struct NodeCounter {
    let deadline: SearchDeadline
    let nodeUnits: Int
    /// Charged per simplex iteration: four passes over the rows and columns (a pivot updates the factorized basis).
    let iterationUnits: Int
    /// Simplex iterations counted so far.
    var iterations = 0
}

/// A MIP in coordinate form, solved by glp_intopt. Columns and rows are 0-based here, 1-based in GLPK.
struct MIPBuilder {
    private struct Column { var binary: Bool; var lower: Double; var upper: Double?; var objective: Double }
    private enum Bound { case atMost(Double), atLeast(Double), equals(Double) }
    private var columns: [Column] = []
    private var rows: [Bound] = []
    private var entries: [(row: Int32, column: Int32, value: Double)] = []

    struct Solution { var values: [Double]; var objective: Double; var optimal: Bool }

    mutating func addColumn(binary: Bool = false, lower: Double = 0, upper: Double? = nil,
                            objective: Double = 0) -> Int {
        columns.append(Column(binary: binary, lower: lower, upper: upper, objective: objective))
        return columns.count - 1
    }
    mutating func addRow(_ terms: [(Int, Double)], atMost bound: Double) { add(terms, .atMost(bound)) }
    mutating func addRow(_ terms: [(Int, Double)], atLeast bound: Double) { add(terms, .atLeast(bound)) }
    mutating func addRow(_ terms: [(Int, Double)], equals bound: Double) { add(terms, .equals(bound)) }

    private mutating func add(_ terms: [(Int, Double)], _ bound: Bound) {
        rows.append(bound)
        // GLPK rejects duplicate (row, column) pairs: merge them.
        var merged: [Int: Double] = [:]
        for (column, value) in terms { merged[column, default: 0] += value }
        for (column, value) in merged.sorted(by: { $0.key < $1.key }) where value != 0 {
            entries.append((Int32(rows.count), Int32(column + 1), value))
        }
    }

    /// GLPK keeps global state per thread and prints to the terminal unless told not to: one solve at a time.
    private static let lock = NSLock()

    /// Solves with presolve until `deadline`: each branch-and-bound node and each simplex iteration charges its
    /// work (SearchBudget.swift), and the search ends when the deadline's share is spent (GLPK's own time limit is
    /// the budget's wall-clock safety net); nil when no integer-feasible solution was found.
    func solve(deadline: SearchDeadline) -> Solution? {
        Self.lock.lock()
        defer { Self.lock.unlock() }
        _ = glp_term_out(GLP_OFF)
        guard let lp = glp_create_prob() else { return nil }
        defer { glp_delete_prob(lp) }
        glp_set_obj_dir(lp, GLP_MIN)
        if !columns.isEmpty { glp_add_cols(lp, Int32(columns.count)) }
        for (n, c) in columns.enumerated() {
            let j = Int32(n + 1)
            if c.binary {
                glp_set_col_kind(lp, j, GLP_BV)
            } else if let upper = c.upper {
                glp_set_col_bnds(lp, j, upper > c.lower ? GLP_DB : GLP_FX, c.lower, upper)
            } else {
                glp_set_col_bnds(lp, j, GLP_LO, c.lower, 0)
            }
            glp_set_obj_coef(lp, j, c.objective)
        }
        if !rows.isEmpty { glp_add_rows(lp, Int32(rows.count)) }
        for (n, bound) in rows.enumerated() {
            let i = Int32(n + 1)
            switch bound {
            case .atMost(let b): glp_set_row_bnds(lp, i, GLP_UP, 0, b)
            case .atLeast(let b): glp_set_row_bnds(lp, i, GLP_LO, b, 0)
            case .equals(let b): glp_set_row_bnds(lp, i, GLP_FX, b, b)
            }
        }
        var ia: [Int32] = [0] + entries.map(\.row)
        var ja: [Int32] = [0] + entries.map(\.column)
        var ar: [Double] = [0] + entries.map(\.value)
        glp_load_matrix(lp, Int32(entries.count), &ia, &ja, &ar)

        // The root LP charges a pass too: the search is then charged even when it ends before branching.
        let nodeUnits = 4 * (rows.count + columns.count + entries.count)
        deadline.charge(nodeUnits)
        var search = NodeCounter(deadline: deadline, nodeUnits: nodeUnits,
                                 iterationUnits: 4 * (rows.count + columns.count))
        var parm = glp_iocp()
        glp_init_iocp(&parm)
        parm.msg_lev = GLP_MSG_OFF
        parm.presolve = GLP_ON
        parm.tm_lim = Int32(max(1, min(deadline.budget.secondsLeft * 1000, Double(Int32.max))))
        parm.cb_func = { tree, info in
            guard let tree, let info else { return }
            let counter = info.assumingMemoryBound(to: NodeCounter.self)
            // Every simplex iteration since the last call (the LPs of the nodes), and each node selected.
            let iterations = Int(glp_get_it_cnt(glp_ios_get_prob(tree)))
            let newIterations = max(0, iterations - counter.pointee.iterations)
            counter.pointee.deadline.charge(newIterations * counter.pointee.iterationUnits)
            counter.pointee.iterations = iterations
            if glp_ios_reason(tree) == GLP_ISELECT { counter.pointee.deadline.charge(counter.pointee.nodeUnits) }
            if counter.pointee.deadline.passed { glp_ios_terminate(tree) }
        }
        let code = withUnsafeMutablePointer(to: &search) { counter in
            parm.cb_info = UnsafeMutableRawPointer(counter)
            return glp_intopt(lp, &parm)
        }
        let status = glp_mip_status(lp)
        guard code == 0 || code == GLP_ETMLIM || code == GLP_ESTOP, status == GLP_OPT || status == GLP_FEAS else {
            return nil
        }
        let values = (0..<columns.count).map { glp_mip_col_val(lp, Int32($0 + 1)) }
        return Solution(values: values, objective: glp_mip_obj_val(lp), optimal: status == GLP_OPT)
    }
}

// The fast heuristic: images read first in a run have no compute to hide their copies behind, so a prefix
// of the loads in first-use order is kept resident; the rest are streamed, each copy issued as late as the
// transfer queue allows (a backward pass over an ideal, stall-free timeline), then the latest-issued
// prefetches are delayed wherever memory would exceed the capacity. Every prefix length that fits is tried
// (a grid and a refinement around its best point on large graphs), then a local search flips single loads
// in or out of the resident set (and swaps pairs on small graphs) while the simulated makespan improves.

import Foundation

extension LoadPlanner {
    /// Loads in first-use order, and the ideal (stall-free) start time of every step plus the end.
    private static func firstUseOrder(_ p: ScheduleProblem) -> (order: [Int], starts: [Double]) {
        let order = p.loads.indices.sorted { (p.loads[$0].firstUse, $0) < (p.loads[$1].firstUse, $1) }
        var starts = [Double](repeating: 0, count: p.stepSeconds.count + 1)
        for k in p.stepSeconds.indices { starts[k + 1] = starts[k] + p.stepSeconds[k] }
        return (order, starts)
    }

    /// The best plan seen so far: fastest simulated, then fewest streamed bytes, then first seen.
    private struct Incumbent {
        var plan: Plan
        var seconds = Double.infinity
        var streamed = UInt64.max

        mutating func consider(_ candidate: Plan, _ p: ScheduleProblem) {
            let seconds = simulate(p, resident: candidate.resident, issueStep: candidate.issueStep)
            let streamed = p.loads.indices.reduce(UInt64(0)) { candidate.resident[$1] ? $0 : $0 + p.loads[$1].bytes }
            let tolerance = 1e-9 * max(seconds, self.seconds == .infinity ? 0 : self.seconds)
            if seconds < self.seconds - tolerance || (seconds <= self.seconds + tolerance && streamed < self.streamed) {
                (plan, self.seconds, self.streamed) = (candidate, seconds, streamed)
            }
        }
    }

    /// Work charged per candidate plan: planned, placed (twice, typically, to fit) and simulated.
    static func candidateUnits(_ p: ScheduleProblem) -> Int {
        4 * p.passUnits + 2 * p.placeUnits
    }

    /// The prefix scan (always completed unless `hardDeadline` passes), then local search until `deadline`.
    static func heuristic(_ p: ScheduleProblem, capacity: UInt64, deadline: SearchDeadline,
                          hardDeadline: SearchDeadline? = nil) -> Plan {
        let hardDeadline = hardDeadline ?? deadline
        let (order, starts) = firstUseOrder(p)
        let n = order.count
        // The just-in-time plan fits whenever capacity ≥ minimumCapacity: the fallback.
        var best = Incumbent(plan: justInTime(p))
        best.consider(justInTime(p), p)
        var tried = Set<Int>()
        func tryPrefix(_ m: Int) {
            guard m >= 0, m <= n, !hardDeadline.passed, tried.insert(m).inserted else { return }
            hardDeadline.charge(candidateUnits(p))
            if let plan = prefixPlan(p, order: order, residentCount: m, starts: starts, capacity: capacity) {
                best.consider(plan, p)
            }
        }
        // Resident bytes grow with the prefix: skip prefixes that cannot fit at all.
        var residentBytes: UInt64 = 0
        var maxPrefix = 0
        for i in order {
            residentBytes += p.loads[i].bytes
            if residentBytes > capacity { break }
            maxPrefix += 1
        }
        if maxPrefix <= 48 {
            for m in 0...maxPrefix { tryPrefix(m) }
        } else {
            let stride = max(1, maxPrefix / 32)
            for m in Swift.stride(from: maxPrefix, through: 0, by: -stride) { tryPrefix(m) }
            tryPrefix(0)
            let centre = bestPrefix(best.plan, order: order)
            for m in max(0, centre - stride)...min(maxPrefix, centre + stride) { tryPrefix(m) }
        }
        return localSearch(p, capacity: capacity, start: best.plan, deadline: deadline.earlier(hardDeadline))
    }

    /// Local search over the resident set of `start`: flip one load (and, on small graphs, swap a resident
    /// one for a streamed one), re-planning the streamed loads each time, while that simulates faster; until
    /// nothing improves or `deadline` passes. Returns `start` itself unless something beat it.
    static func localSearch(_ p: ScheduleProblem, capacity: UInt64, start: Plan, deadline: SearchDeadline) -> Plan {
        let (order, starts) = firstUseOrder(p)
        var best = Incumbent(plan: start)
        best.consider(start, p)
        func tryResident(_ resident: [Bool]) {
            deadline.charge(candidateUnits(p))
            if let plan = streamedPlan(p, order: order, resident: resident, starts: starts, capacity: capacity) {
                best.consider(plan, p)
            }
        }
        var improved = true
        while improved, !deadline.passed {
            let current = best.plan
            for i in order where !deadline.passed {
                var resident = current.resident
                resident[i].toggle()
                tryResident(resident)
            }
            if order.count <= 16 {
                for i in order where current.resident[i] {
                    for j in order where !current.resident[j] && !deadline.passed {
                        var resident = current.resident
                        resident[i] = false
                        resident[j] = true
                        tryResident(resident)
                    }
                }
            }
            improved = best.plan != current
        }
        return best.plan
    }

    /// Length of the resident prefix of a plan (in first-use order).
    private static func bestPrefix(_ plan: Plan, order: [Int]) -> Int {
        order.firstIndex { !plan.resident[$0] } ?? order.count
    }

    /// The first `residentCount` loads resident, the rest streamed as late as the queue allows, then
    /// delayed to fit; nil when no placement within `capacity` results.
    static func prefixPlan(_ p: ScheduleProblem, order: [Int], residentCount: Int, starts: [Double],
                           capacity: UInt64) -> Plan? {
        var resident = [Bool](repeating: false, count: p.loads.count)
        for i in order.prefix(residentCount) { resident[i] = true }
        return streamedPlan(p, order: order, resident: resident, starts: starts, capacity: capacity)
    }

    /// `resident` kept, the rest streamed as late as the queue allows, then delayed to fit; nil when no
    /// placement within `capacity` results. `order` is the loads in first-use order.
    static func streamedPlan(_ p: ScheduleProblem, order: [Int], resident: [Bool], starts: [Double],
                             capacity: UInt64) -> Plan? {
        var plan = Plan(resident: resident, issueStep: Array(repeating: 0, count: p.loads.count))
        let streamed = order.filter { !resident[$0] }
        let residentBytes = order.reduce(UInt64(0)) { resident[$1] ? $0 + p.loads[$1].bytes : $0 }
        guard residentBytes <= capacity else { return nil }

        // Backward pass: each copy lands by the ideal start of its first reader and before the next copy
        // starts; it is issued at the last step boundary not after its latest start.
        var nextStart = Double.infinity
        for i in streamed.reversed() {
            let u = p.loads[i].firstUse
            let start = min(starts[u], nextStart) - p.transferSeconds(i)
            nextStart = start
            // Largest k ≤ u with starts[k] ≤ start.
            var (lo, hi) = (0, u)
            while lo < hi {
                let mid = (lo + hi + 1) / 2
                if starts[mid] <= start + 1e-15 * starts[u] { lo = mid } else { hi = mid - 1 }
            }
            plan.issueStep[i] = lo
        }

        return fitPlacement(p, plan, order: order, capacity: capacity)
    }

    /// Delays prefetches until the plan's placement fits `capacity`: first to the byte limit `capacity`,
    /// then, while fragmentation overflows it, to a limit lowered by the overflow (four tries); nil if none
    /// fits.
    static func fitPlacement(_ p: ScheduleProblem, _ plan: Plan, order: [Int], capacity: UInt64) -> Plan? {
        let streamed = order.filter { !plan.resident[$0] }
        var limit = capacity
        for _ in 0..<4 {
            var attempt = plan
            guard delayToFit(p, &attempt, streamed: streamed, limit: limit) else { return nil }
            let space = place(p, attempt).weightSpaceBytes
            if space <= capacity { return attempt }
            let overflow = space - capacity
            guard limit > overflow else { return nil }
            limit -= overflow
        }
        return nil
    }

    /// Delays the prefetches issued latest (largest first use first) to the step after the first step where
    /// live bytes exceed `limit`; false when the images read at some step alone exceed it. Delaying only
    /// shortens live intervals, so one forward sweep suffices, and issue steps stay monotone in first use.
    static func delayToFit(_ p: ScheduleProblem, _ plan: inout Plan, streamed: [Int], limit: UInt64) -> Bool {
        var live = liveBytes(p, plan)
        // streamed is in first-use order; walk it backwards to delay the largest first use first.
        for k in p.stepSeconds.indices where live[k] > limit {
            for i in streamed.reversed() where live[k] > limit {
                guard plan.issueStep[i] <= k, k < p.loads[i].firstUse else { continue }
                plan.issueStep[i] = k + 1
                live[k] -= p.loads[i].bytes
            }
            if live[k] > limit { return false }
        }
        return true
    }
}

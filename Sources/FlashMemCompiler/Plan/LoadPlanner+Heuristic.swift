// The fast heuristic: images read first in a run have no compute to hide their copies behind, so a prefix
// of the loads in first-use order is kept resident; the rest are streamed, each copy issued as late as the
// transfer queue allows (a backward pass over an ideal, stall-free timeline), then the latest-issued
// prefetches are delayed wherever memory would exceed the capacity. Every prefix length that fits is tried
// (a grid and a refinement around its best point on large graphs), then a local search flips single loads
// in or out of the resident set (and swaps pairs on small graphs) while the simulated makespan improves.

import Foundation

extension LoadPlanner {
    static func heuristic(_ p: ScheduleProblem, capacity: UInt64, deadline: Date) -> Plan {
        let order = p.loads.indices.sorted { (p.loads[$0].firstUse, $0) < (p.loads[$1].firstUse, $1) }
        let n = order.count
        var starts = [Double](repeating: 0, count: p.stepSeconds.count + 1)
        for k in p.stepSeconds.indices { starts[k + 1] = starts[k] + p.stepSeconds[k] }

        var best = (plan: justInTime(p), seconds: Double.infinity, streamed: UInt64.max)
        var tried = Set<Int>()
        func consider(_ plan: Plan) {
            let seconds = simulate(p, resident: plan.resident, issueStep: plan.issueStep)
            let streamed = p.loads.indices.reduce(UInt64(0)) { plan.resident[$1] ? $0 : $0 + p.loads[$1].bytes }
            let tolerance = 1e-9 * max(seconds, best.seconds == .infinity ? 0 : best.seconds)
            if seconds < best.seconds - tolerance || (seconds <= best.seconds + tolerance && streamed < best.streamed) {
                best = (plan, seconds, streamed)
            }
        }
        func tryPrefix(_ m: Int) {
            guard m >= 0, m <= n, tried.insert(m).inserted else { return }
            if let plan = prefixPlan(p, order: order, residentCount: m, starts: starts, capacity: capacity) {
                consider(plan)
            }
        }
        // The just-in-time plan fits whenever capacity ≥ minimumCapacity: the fallback.
        consider(justInTime(p))

        // Resident bytes grow with the prefix: skip prefixes that cannot fit at all.
        var residentBytes: UInt64 = 0
        var maxPrefix = 0
        for i in order {
            residentBytes += p.loads[i].bytes
            if residentBytes > capacity { break }
            maxPrefix += 1
        }
        if maxPrefix <= 48 {
            for m in 0...maxPrefix where Date() < deadline { tryPrefix(m) }
        } else {
            let stride = max(1, maxPrefix / 32)
            var m = maxPrefix
            while m >= 0, Date() < deadline {
                tryPrefix(m)
                m -= stride
            }
            tryPrefix(0)
            let centre = bestPrefix(best.plan, order: order)
            for m in max(0, centre - stride)...min(maxPrefix, centre + stride) where Date() < deadline { tryPrefix(m) }
        }

        // Local search over the resident set: flip one load (and, on small graphs, swap a resident one for
        // a streamed one) while that simulates faster, until nothing improves or time runs out.
        var improved = true
        while improved, Date() < deadline {
            improved = false
            let current = best
            for i in order where Date() < deadline {
                var resident = current.plan.resident
                resident[i].toggle()
                if let plan = streamedPlan(p, order: order, resident: resident, starts: starts, capacity: capacity) {
                    consider(plan)
                }
            }
            if n <= 16 {
                for i in order where current.plan.resident[i] {
                    for j in order where !current.plan.resident[j] && Date() < deadline {
                        var resident = current.plan.resident
                        resident[i] = false
                        resident[j] = true
                        if let plan = streamedPlan(p, order: order, resident: resident, starts: starts,
                                                   capacity: capacity) {
                            consider(plan)
                        }
                    }
                }
            }
            improved = best.plan != current.plan
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

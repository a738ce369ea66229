// Fewer submission boundaries. A run cuts its steps into another compute submission wherever copies are issued
// and wherever it waits for copied images (ExecutionPlan.streamingBatches), and every cut costs the device
// `submissionSeconds` (23 µs on the H200): ViT-B/16 at 25% ran its 345 steps in 74 submissions, 1.8 ms of a
// 7.6 ms warm run (Benchmarks/results/h200-trace-gaps-2026-12-04.txt). The solvers issue each copy as late as
// the queue allows and wait for each image at its first use, so nearly every streamed image makes its own cuts.
//
// `coalesce` merges cuts afterwards: it moves every issue and wait at one cut to the cut before it (an earlier
// issue holds its slot longer, so only where the plan still places within the capacity) or to the cut after it
// (later issues only up to the image's wait, later waits only up to its first use), and keeps a move when neither
// the simulated warm run nor the first run (which also copies the resident images) gets slower and the two
// together get faster. Waits are stored in the bundle (`Schedule.waitStep`, format 1.4).

import Foundation

extension LoadPlanner {
    /// `plan` with its cuts merged where that simulates faster (see above); `plan` itself, with waits at first
    /// uses, when boundaries cost nothing or nothing improves before `deadline`.
    static func coalesce(_ p: ScheduleProblem, _ plan: Plan, capacity: UInt64?, deadline: SearchDeadline) -> Plan {
        var best = plan
        let firstUse = p.loads.map(\.firstUse)
        best.waitStep = best.waitStep ?? firstUse
        guard p.submissionSeconds > 0, !p.loads.isEmpty else { return best }
        func cost(_ q: Plan) -> (warm: Double, first: Double) {
            (timeline(p, resident: q.resident, issueStep: q.issueStep, waitStep: q.waitStep).makespan,
             timeline(p, resident: q.resident, issueStep: q.issueStep, waitStep: q.waitStep, firstRun: true).makespan)
        }
        func fits(_ q: Plan) -> Bool {
            capacity.map { place(p, q).weightSpaceBytes <= $0 } ?? true
        }
        var bestCost = cost(best)
        func consider(_ q: Plan, movesIssues: Bool) -> (Plan, (warm: Double, first: Double))? {
            // Two runs simulated, the cuts, and a placement where issues move.
            deadline.charge(3 * p.passUnits + (movesIssues ? p.placeUnits : 0))
            let c = cost(q)
            let tolerance = 1e-9 * (bestCost.warm + bestCost.first)
            guard c.warm <= bestCost.warm + tolerance, c.first <= bestCost.first + tolerance,
                  c.warm + c.first < bestCost.warm + bestCost.first - tolerance else { return nil }
            return !movesIssues || fits(q) ? (q, c) : nil
        }
        // The first run's cuts: it copies every load, so they include the warm run's.
        func cuts(_ q: Plan) -> [Int] {
            cutSteps(p, copied: Array(p.loads.indices), issueStep: q.issueStep, waitStep: q.waitStep!).sorted()
        }
        var improved = true
        while improved, !deadline.passed {
            improved = false
            var list = cuts(best)
            var index = 0
            while index < list.count, !deadline.passed {
                let cut = list[index]
                var found: [(Plan, (warm: Double, first: Double))] = []
                // Backward: to the previous cut (or the start of the run).
                var back = best
                var issuesMoved = false
                let before = index > 0 ? list[index - 1] : 0
                for i in p.loads.indices {
                    if back.waitStep![i] == cut { back.waitStep![i] = before }
                    if !back.resident[i], back.issueStep[i] == cut {
                        back.issueStep[i] = before
                        issuesMoved = true
                    }
                }
                if let kept = consider(back, movesIssues: issuesMoved) { found.append(kept) }
                // Forward: to the next cut, where every moved wait stays at or before its first use and every
                // moved issue at or before its wait.
                if index + 1 < list.count {
                    let after = list[index + 1]
                    var forward = best
                    var valid = true
                    issuesMoved = false
                    for i in p.loads.indices where valid {
                        if forward.waitStep![i] == cut { forward.waitStep![i] = after }
                        if !forward.resident[i], forward.issueStep[i] == cut {
                            forward.issueStep[i] = after
                            issuesMoved = true
                        }
                        valid = forward.waitStep![i] <= firstUse[i]
                            && (forward.resident[i] || forward.issueStep[i] <= forward.waitStep![i])
                    }
                    if valid, let kept = consider(forward, movesIssues: issuesMoved) { found.append(kept) }
                }
                if let winner = found.min(by: { $0.1.warm + $0.1.first < $1.1.warm + $1.1.first }) {
                    (best, bestCost) = winner
                    improved = true
                    list = cuts(best)  // `cut` is gone: the same index is now the next one
                } else {
                    index += 1
                }
            }
        }
        return best
    }
}

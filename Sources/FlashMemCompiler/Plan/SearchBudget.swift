// The load planner's search budget. Every search loop of LoadPlanner (the prefix scan, local search, the MIP and
// its windows, coalesce) charges the work it does and stops when its share of the budget is spent, so the same
// problem with the same options gets the same plan on any machine under any load: a bundle compiles to the same
// bytes every time. Work is counted in elements visited: a pass over the problem (a simulated run, a live-bytes
// sweep) visits its steps and its loads once, a placement compares every pair of streamed slots
// (SlotPlacement's first fit, in two orders); GLPK's branch and bound, through its callback, charges each node
// it selects as a pass over the MIP's rows, columns and entries and each simplex iteration as four passes over
// its rows and columns (a MIP of few nodes and long LPs — the compile-memory test's, at 50% — otherwise ran
// 60 s on 181M units where the others take 0.3–1.6 s for up to 200M).
//
// A wall-clock limit remains as a safety net for a machine far slower than the budget was sized for. A search it
// stops is reported (`LoadSchedule.stoppedByClock`, and fmc says so), since that plan may differ between compiles.

import Foundation

final class SearchBudget {
    /// Elements the whole search may visit.
    let units: Int
    private(set) var spent = 0
    private let clockDeadline: Date
    /// The wall-clock safety net ended a search (the plan may then differ between compiles).
    private(set) var stoppedByClock = false

    init(units: Int, seconds: Double) {
        self.units = max(0, units)
        self.clockDeadline = Date().addingTimeInterval(seconds)
    }

    func charge(_ units: Int) {
        let (sum, overflow) = spent.addingReportingOverflow(max(0, units))
        spent = overflow ? Int.max : sum
    }

    /// The point `fraction` of the way through the budget, for a phase that must leave the rest to later ones.
    func deadline(_ fraction: Double) -> SearchDeadline {
        SearchDeadline(budget: self, unit: fraction >= 1 ? units : Int(Double(units) * max(0, fraction)))
    }

    /// Seconds left before the wall-clock safety net (what GLPK's own time limit is set to).
    var secondsLeft: Double {
        clockDeadline.timeIntervalSinceNow
    }

    fileprivate func exhausted(at unit: Int) -> Bool {
        if spent >= unit { return true }
        if Date() >= clockDeadline {
            stoppedByClock = true
            return true
        }
        return false
    }
}

/// Where one phase of the search stops: a point in its `SearchBudget`.
struct SearchDeadline {
    let budget: SearchBudget
    let unit: Int

    /// Whether the phase must stop (its share is spent, or the wall clock ran out).
    var passed: Bool {
        budget.exhausted(at: unit)
    }

    /// Units the phase may still spend.
    var remaining: Int {
        max(0, unit - budget.spent)
    }

    /// The point `fraction` of the way from what is spent now to this deadline (a share for one of several
    /// sub-searches that follow one another).
    func share(_ fraction: Double) -> SearchDeadline {
        SearchDeadline(budget: budget, unit: budget.spent
                       + (fraction >= 1 ? remaining : Int(Double(remaining) * Swift.max(0, fraction))))
    }

    /// The earlier of two deadlines of one budget.
    func earlier(_ other: SearchDeadline) -> SearchDeadline {
        unit <= other.unit ? self : other
    }

    func charge(_ units: Int) {
        budget.charge(units)
    }
}

extension ScheduleProblem {
    /// Elements one pass over the problem visits (a simulated run, a live-bytes sweep).
    var passUnits: Int {
        stepSeconds.count + loads.count
    }

    /// Pairs of slots a placement compares (`LoadPlanner.place`: first fit in two orders).
    var placeUnits: Int {
        loads.count * loads.count
    }
}

// LoadPlanner: the MIP against brute force on tiny instances, the heuristic against the MIP, the memory
// rules of every returned schedule (one checker), infeasible and unbounded capacities, and a GPT-sized
// instance within the time limit. Random instances come from a fixed seed.

import Foundation
import XCTest
import TestSupport
@testable import FlashMemCompiler

final class LoadPlannerTests: XCTestCase {
    // MARK: Helpers

    typealias Random = SplitMix

    /// A random instance; its capacity lies between the smallest feasible one and everything resident.
    func randomProblem(_ random: inout Random, maxLoads: Int, maxSteps: Int,
                       alignment: UInt64 = 1, segment: UInt64 = 1 << 40) -> ScheduleProblem {
        let steps = random.int(2...maxSteps)
        let loads = (0..<random.int(1...maxLoads)).map { _ -> ScheduleProblem.Load in
            let first = random.int(0...(steps - 1))
            return .init(bytes: UInt64(random.int(1...100)) * 1000, firstUse: first,
                         lastUse: random.int(first...min(steps - 1, first + 2)))
        }
        let stepSeconds = (0..<steps).map { _ in random.double(0.5...2) * 1e-3 }
        // Copies take 0.3×–3× the compute in all.
        let bytes = Double(loads.reduce(0) { $0 + $1.bytes })
        let bandwidth = bytes / (stepSeconds.reduce(0, +) * random.double(0.3...3))
        var p = ScheduleProblem(stepSeconds: stepSeconds, loads: loads, bandwidth: bandwidth, capacityBytes: nil,
                                segmentBytes: segment, slotAlignment: alignment)
        let minimum = LoadPlanner.minimumCapacity(p)
        let total = loads.reduce(0) { $0 + $1.bytes }
        p.capacityBytes = minimum + UInt64(random.double(0...1) * Double(max(total, minimum) - minimum))
        return p
    }

    /// Every rule a schedule must keep; returns the violations (empty = valid).
    func violations(_ s: LoadSchedule, _ p: ScheduleProblem) -> [String] {
        var problems: [String] = []
        let n = p.loads.count
        guard s.resident.count == n, s.issueStep.count == n, s.offsets.count == n else {
            return ["per-load arrays have the wrong length"]
        }
        var top: UInt64 = 0
        for (i, load) in p.loads.enumerated() {
            if !s.resident[i] && !(0...load.firstUse).contains(s.issueStep[i]) {
                problems.append("load \(i) issued at \(s.issueStep[i]), after its first use \(load.firstUse)")
            }
            if s.offsets[i] % p.slotAlignment != 0 { problems.append("load \(i) offset \(s.offsets[i]) unaligned") }
            let end = s.offsets[i] + load.bytes
            if load.bytes > 0 && s.offsets[i] / p.segmentBytes != (end - 1) / p.segmentBytes {
                problems.append("load \(i) straddles a segment boundary")
            }
            top = max(top, end)
            for j in 0..<i where s.offsets[i] < s.offsets[j] + p.loads[j].bytes && s.offsets[j] < end
                && load.bytes > 0 && p.loads[j].bytes > 0 {
                let disjoint = !s.resident[i] && !s.resident[j]
                    && (load.lastUse < s.issueStep[j] || p.loads[j].lastUse < s.issueStep[i])
                if !disjoint { problems.append("loads \(j) and \(i) overlap while both live") }
            }
        }
        if s.weightSpaceBytes < top { problems.append("weight space \(s.weightSpaceBytes) < highest slot end \(top)") }
        if let capacity = p.capacityBytes, s.weightSpaceBytes > capacity {
            problems.append("weight space \(s.weightSpaceBytes) exceeds capacity \(capacity)")
        }
        let simulated = LoadPlanner.simulate(p, resident: s.resident, issueStep: s.issueStep)
        if abs(simulated - s.predictedSeconds) > 1e-12 + 1e-9 * simulated {
            problems.append("predicted \(s.predictedSeconds) s, simulated \(simulated) s")
        }
        if s.predictedSeconds < s.lowerBoundSeconds * (1 - 1e-9) {
            problems.append("predicted \(s.predictedSeconds) s below the lower bound \(s.lowerBoundSeconds) s")
        }
        return problems
    }

    func assertValid(_ s: LoadSchedule, _ p: ScheduleProblem, _ context: String,
                     file: StaticString = #filePath, line: UInt = #line) {
        for problem in violations(s, p) { XCTFail("\(context): \(problem)", file: file, line: line) }
    }

    /// Every assignment (resident, or issued at 0...firstUse) of every load.
    func forEachAssignment(_ p: ScheduleProblem, _ body: (LoadPlanner.Plan) -> Void) {
        let n = p.loads.count
        var choice = [Int](repeating: -1, count: n)  // -1 = resident, else the issue step
        func recurse(_ i: Int) {
            if i == n {
                body(LoadPlanner.Plan(resident: choice.map { $0 < 0 }, issueStep: choice.map { max($0, 0) }))
                return
            }
            for c in -1...p.loads[i].firstUse {
                choice[i] = c
                recurse(i + 1)
            }
        }
        recurse(0)
    }

    func isMonotone(_ plan: LoadPlanner.Plan, _ p: ScheduleProblem) -> Bool {
        for a in p.loads.indices where !plan.resident[a] {
            for b in p.loads.indices where !plan.resident[b] && p.loads[a].firstUse < p.loads[b].firstUse {
                if plan.issueStep[a] > plan.issueStep[b] { return false }
            }
        }
        return true
    }

    // MARK: (a) The MIP against brute force

    /// The MIP minimizes Σ T_j over monotone, byte-feasible plans; for a fixed plan that objective is
    /// simulate's makespan. Brute force evaluates simulate over every such plan; the optima must agree, and
    /// the MIP's own plan must simulate to its objective.
    func testExactMatchesBruteForceOnTinyInstances() throws {
        var random = Random(seed: 20261204)
        var unrestrictedBetter = 0
        for instance in 0..<60 {
            let p = randomProblem(&random, maxLoads: 5, maxSteps: 6)
            let capacity = p.capacityBytes!
            var best = Double.infinity
            var bestUnrestricted = Double.infinity
            forEachAssignment(p) { plan in
                guard LoadPlanner.liveBytes(p, plan).allSatisfy({ $0 <= capacity }) else { return }
                let seconds = LoadPlanner.simulate(p, resident: plan.resident, issueStep: plan.issueStep)
                bestUnrestricted = min(bestUnrestricted, seconds)
                if isMonotone(plan, p) { best = min(best, seconds) }
            }
            let result = try XCTUnwrap(LoadPlanner.solveModel(p, capacity: capacity, steps: 0..<p.stepSeconds.count,
                                                              free: Array(p.loads.indices), fixed: nil, deadline: .unlimited),
                                       "instance \(instance): the MIP found no plan")
            XCTAssertTrue(result.optimal, "instance \(instance): not proved optimal")
            XCTAssertEqual(result.objectiveSeconds, best, accuracy: 2e-6 * best, "instance \(instance): MIP vs brute force")
            let simulated = LoadPlanner.simulate(p, resident: result.plan.resident, issueStep: result.plan.issueStep)
            XCTAssertEqual(simulated, result.objectiveSeconds, accuracy: 1e-7 * best,
                           "instance \(instance): MIP objective vs simulate of its plan")
            XCTAssertTrue(LoadPlanner.liveBytes(p, result.plan).allSatisfy { $0 <= capacity },
                          "instance \(instance): MIP plan exceeds capacity")
            if bestUnrestricted < best * (1 - 1e-9) { unrestrictedBetter += 1 }
        }
        // Monotone issue steps lose nothing on these instances either.
        XCTAssertEqual(unrestrictedBetter, 0, "instances where a non-monotone plan simulates faster")
    }

    // MARK: (b) The heuristic against the MIP, and solve against both

    func testHeuristicIsWithinFactorOfExactAndSolveIsNeverWorse() throws {
        var random = Random(seed: 7)
        let factor = 1.3  // the heuristic's simulated makespan is within 30% of the exact method's (worst seen: 1.20)
        var worst = 1.0
        var missing = 0
        for instance in 0..<40 {
            let p = randomProblem(&random, maxLoads: 8, maxSteps: 10, alignment: 256, segment: 1 << 20)
            let capacity = p.capacityBytes!
            let heuristic = LoadPlanner.schedule(p, LoadPlanner.heuristic(p, capacity: capacity, deadline: .unlimited),
                                                 method: .heuristic)
            assertValid(heuristic, p, "instance \(instance) heuristic")
            // nil when every MIP plan fragments past the capacity (solve then keeps the heuristic).
            guard let exact = LoadPlanner.exactSchedule(p, capacity: capacity, start: heuristic,
                                                        options: .init(timeLimitSeconds: 10),
                                                        deadline: .unlimited) else {
                missing += 1
                continue
            }
            assertValid(exact, p, "instance \(instance) exact")
            XCTAssertEqual(exact.method, .exact)
            let ratio = heuristic.predictedSeconds / exact.predictedSeconds
            worst = max(worst, ratio)
            XCTAssertLessThanOrEqual(ratio, factor, "instance \(instance)")

            let solved = try LoadPlanner.solve(p, options: .init(timeLimitSeconds: 10))
            assertValid(solved, p, "instance \(instance) solve")
            let tolerance = 1e-9 * solved.predictedSeconds
            XCTAssertLessThanOrEqual(solved.predictedSeconds, heuristic.predictedSeconds + tolerance, "instance \(instance)")
            XCTAssertLessThanOrEqual(solved.predictedSeconds, exact.predictedSeconds + tolerance, "instance \(instance)")
        }
        print("LoadPlanner: worst heuristic / exact makespan on 40 instances: \(worst); exact placed no plan in \(missing)")
        XCTAssertLessThanOrEqual(missing, 4, "the exact method should place a plan on most instances")
    }

    // MARK: (c) Memory rules with fragmentation: small segments, coarse alignment

    func testEverySolvedScheduleKeepsMemoryRules() throws {
        var random = Random(seed: 99)
        for instance in 0..<60 {
            let p = randomProblem(&random, maxLoads: 10, maxSteps: 12, alignment: 4096, segment: 1 << 18)
            let s = try LoadPlanner.solve(p, options: .init(workUnits: 20_000_000))
            assertValid(s, p, "instance \(instance) (\(s.method))")
        }
    }

    func testCheckerCatchesBrokenSchedules() throws {
        let p = ScheduleProblem(stepSeconds: [1e-3, 1e-3, 1e-3], loads: [.init(bytes: 1000, firstUse: 0, lastUse: 1),
                                                                      .init(bytes: 1000, firstUse: 1, lastUse: 2)],
                                bandwidth: 1e6, capacityBytes: 2000, segmentBytes: 1 << 20, slotAlignment: 1)
        let good = try LoadPlanner.solve(p)
        XCTAssertEqual(violations(good, p), [])
        var overlapping = good
        overlapping.resident = [false, false]
        overlapping.issueStep = [0, 1]
        overlapping.offsets = [0, 500]
        overlapping.predictedSeconds = LoadPlanner.simulate(p, resident: overlapping.resident, issueStep: [0, 1])
        XCTAssertTrue(violations(overlapping, p).contains { $0.contains("overlap") })
        var late = good
        late.resident = [false, false]
        late.issueStep = [1, 1]
        XCTAssertTrue(violations(late, p).contains { $0.contains("after its first use") })
    }

    // MARK: (d) Infeasible capacity

    func testInfeasibleCapacityNamesTheSmallestFeasibleOne() throws {
        var random = Random(seed: 3)
        for instance in 0..<20 {
            var p = randomProblem(&random, maxLoads: 8, maxSteps: 10, alignment: 512, segment: 1 << 18)
            let minimum = LoadPlanner.minimumCapacity(p)
            XCTAssertGreaterThanOrEqual(minimum, LoadPlanner.liveBytes(p, LoadPlanner.justInTime(p)).max() ?? 0)
            p.capacityBytes = minimum - 1
            XCTAssertThrowsError(try LoadPlanner.solve(p), "instance \(instance)") { error in
                let message = (error as? CompileError)?.message ?? ""
                XCTAssertTrue(message.hasPrefix("memory budget too small"), message)
                XCTAssertTrue(message.contains("the smallest feasible weight capacity is \(minimum) bytes"), message)
            }
            p.capacityBytes = minimum
            let s = try LoadPlanner.solve(p, options: .init(workUnits: 20_000_000))
            assertValid(s, p, "instance \(instance) at the minimum capacity")
        }
    }

    func testLoadLargerThanASegmentIsAnError() {
        let p = ScheduleProblem(stepSeconds: [1], loads: [.init(bytes: 10, firstUse: 0, lastUse: 0),
                                                         .init(bytes: 5000, firstUse: 0, lastUse: 0)],
                                bandwidth: 1, capacityBytes: 1 << 20, segmentBytes: 4096, slotAlignment: 16)
        XCTAssertThrowsError(try LoadPlanner.solve(p)) { error in
            XCTAssertTrue("\(error)".contains("load 1 needs 5000 bytes"), "\(error)")
        }
    }

    // MARK: (e) Unbounded capacity

    func testUnboundedCapacityKeepsEverythingResident() throws {
        var random = Random(seed: 5)
        var p = randomProblem(&random, maxLoads: 10, maxSteps: 12)
        p.capacityBytes = nil
        let s = try LoadPlanner.solve(p)
        XCTAssertEqual(s.resident, Array(repeating: true, count: p.loads.count))
        XCTAssertEqual(s.streamedBytes(p), 0)
        XCTAssertEqual(s.predictedSeconds, p.stepSeconds.reduce(0, +), accuracy: 1e-12)
        assertValid(s, p, "unbounded")
    }

    func testEmptyProblemIsTrivial() throws {
        let p = ScheduleProblem(stepSeconds: [1e-3, 2e-3], loads: [], bandwidth: 1e9, capacityBytes: 0)
        let s = try LoadPlanner.solve(p)
        XCTAssertEqual(s.weightSpaceBytes, 0)
        XCTAssertEqual(s.predictedSeconds, 3e-3, accuracy: 1e-15)
        assertValid(s, p, "empty")
    }

    /// Each step where the runtime starts another compute submission (copies issued there, or the first use of a
    /// streamed image) costs `submissionSeconds`; resident loads and step 0 cost nothing.
    func testSubmissionBoundariesCostTheirTime() {
        // 5 steps of 1 ms; load 0 (1 kB, lands in 1 µs) issued at step 1 and first read by step 3; load 1 resident.
        var p = ScheduleProblem(stepSeconds: Array(repeating: 1e-3, count: 5),
                                loads: [.init(bytes: 1000, firstUse: 3, lastUse: 3), .init(bytes: 1000, firstUse: 2, lastUse: 4)],
                                bandwidth: 1e9, capacityBytes: nil)
        XCTAssertEqual(LoadPlanner.simulate(p, resident: [false, true], issueStep: [1, 0]), 5e-3, accuracy: 1e-15)
        p.submissionSeconds = 20e-6
        XCTAssertEqual(LoadPlanner.simulate(p, resident: [false, true], issueStep: [1, 0]), 5e-3 + 2 * 20e-6,
                       accuracy: 1e-15, "boundaries at steps 1 (issue) and 3 (first use)")
        XCTAssertEqual(LoadPlanner.simulate(p, resident: [false, true], issueStep: [3, 0]), 5e-3 + 20e-6,
                       accuracy: 1e-15, "one boundary where the issue and the first use coincide (the 1 µs copy lands within it)")
        XCTAssertEqual(LoadPlanner.simulate(p, resident: [true, true], issueStep: [0, 0]), 5e-3, accuracy: 1e-15)
    }

    // MARK: (f) A GPT-sized instance

    /// 100 blocks of 10 kernels reading 3 weights each (attention, MLP up, MLP down) plus an embedding read
    /// by the first and last step: 1000 steps, 301 loads; copies need 1.5× the compute; `fraction` of the
    /// weights fit.
    func gptLike(fraction: Double = 1.0 / 3) -> ScheduleProblem {
        var random = Random(seed: 2)
        var steps: [Double] = []
        var loads: [ScheduleProblem.Load] = [.init(bytes: 48 << 20, firstUse: 0, lastUse: 999)]
        for block in 0..<100 {
            steps += (0..<10).map { _ in random.double(10...60) * 1e-6 }
            let base = block * 10
            loads.append(.init(bytes: 12 << 20, firstUse: base + 1, lastUse: base + 2))
            loads.append(.init(bytes: 16 << 20, firstUse: base + 5, lastUse: base + 5))
            loads.append(.init(bytes: 16 << 20, firstUse: base + 7, lastUse: base + 7))
        }
        let bytes = Double(loads.reduce(0) { $0 + $1.bytes })
        return ScheduleProblem(stepSeconds: steps, loads: loads, bandwidth: bytes / (1.5 * steps.reduce(0, +)),
                               capacityBytes: UInt64(bytes * fraction), segmentBytes: 1 << 30, slotAlignment: 4096)
    }

    /// A work budget small enough for a debug build; the wall clock only as the safety net.
    private static let gptWork = LoadPlanner.Options(workUnits: 15_000_000, timeLimitSeconds: 300)

    /// The search stops at its work budget, not at a time: solving the same GPT-sized instance twice gives the same
    /// schedule, byte for byte what the bundle stores (resident set, issue and wait steps, slots, method).
    func testGPTSizedInstanceSolvesTheSameEveryTime() throws {
        for fraction in [1.0 / 3, 0.15] {
            let p = gptLike(fraction: fraction)
            let s = try LoadPlanner.solve(p, options: Self.gptWork)
            assertValid(s, p, "gpt-like \(fraction)")
            XCTAssertFalse(s.stoppedByClock, "the safety net should not be what stopped the search")
            XCTAssertLessThanOrEqual(s.searchUnits, Self.gptWork.workUnits + 1_000_000, "the budget's overshoot is one step")
            let again = try LoadPlanner.solve(p, options: Self.gptWork)
            XCTAssertEqual(again.resident, s.resident)
            XCTAssertEqual(again.issueStep, s.issueStep)
            XCTAssertEqual(again.waitStep, s.waitStep)
            XCTAssertEqual(again.offsets, s.offsets)
            XCTAssertEqual(again.method, s.method)
            XCTAssertEqual(again.searchUnits, s.searchUnits)
            var heuristicOnly = Self.gptWork
            heuristicOnly.useExact = false
            let h = try LoadPlanner.solve(p, options: heuristicOnly)
            assertValid(h, p, "gpt-like \(fraction), heuristic only")
            print("LoadPlanner gpt-like, capacity \(fraction) of the weights: \(p.loads.count) loads, "
                  + "\(p.stepSeconds.count) steps; solve \(s.searchSeconds) s, \(s.searchUnits) units (\(s.method), "
                  + "predicted \(s.predictedSeconds * 1e3) ms, bound \(s.lowerBoundSeconds * 1e3) ms, streamed "
                  + "\(s.streamedBytes(p) >> 20) MiB); heuristic only \(h.searchSeconds) s, predicted "
                  + "\(h.predictedSeconds * 1e3) ms")
            XCTAssertGreaterThan(s.streamedBytes(p), 0)
            // Within 5% of the lower bound on this instance (about 0.3–0.8% seen).
            XCTAssertLessThan(s.predictedSeconds, s.lowerBoundSeconds * 1.05)
        }
    }

    /// A budget far beyond what the machine does in the time limit: the wall clock ends the search (with the
    /// slack of one candidate plan or one GLPK node) and the schedule says so.
    func testTheClockStopsASearchWhoseBudgetIsTooLarge() throws {
        let p = gptLike(fraction: 0.15)
        let limit = 1.0
        let clock = Date()
        let s = try LoadPlanner.solve(p, options: .init(workUnits: Int.max, timeLimitSeconds: limit))
        let elapsed = Date().timeIntervalSince(clock)
        assertValid(s, p, "gpt-like, stopped by the clock")
        XCTAssertTrue(s.stoppedByClock)
        XCTAssertLessThan(elapsed, limit * 1.5, "solve overran its safety net")
        let small = try LoadPlanner.solve(p, options: .init(workUnits: 1_000_000, timeLimitSeconds: 300))
        XCTAssertFalse(small.stoppedByClock)
    }

    // MARK: (g) Coalescing submission boundaries (wait steps)

    /// A random instance with submission boundaries that matter: steps of 50–200 µs, copies taking 0.3×–3× the
    /// compute, 20 µs per boundary (`submissionSeconds`).
    func randomBoundaryProblem(_ random: inout Random, maxLoads: Int = 8, maxSteps: Int = 10,
                               submissionSeconds: Double = 20e-6) -> ScheduleProblem {
        var p = randomProblem(&random, maxLoads: maxLoads, maxSteps: maxSteps, alignment: 256, segment: 1 << 20)
        let scale = 1e-4 / 1e-3
        p.stepSeconds = p.stepSeconds.map { $0 * scale }
        p.bandwidth /= scale
        p.submissionSeconds = submissionSeconds
        return p
    }

    /// A random plan the solvers could return: each load resident (issue step 0, as the planner records it) or
    /// streamed with an issue step in 0...firstUse.
    func randomPlan(_ random: inout Random, _ p: ScheduleProblem) -> LoadPlanner.Plan {
        var plan = LoadPlanner.Plan(resident: [], issueStep: [])
        for load in p.loads {
            let resident = random.int(4) == 0
            plan.resident.append(resident)
            plan.issueStep.append(resident ? 0 : random.int(0...load.firstUse))
        }
        return plan
    }

    /// Warm and first-run makespans of a plan (nil waits: first uses).
    func makespans(_ p: ScheduleProblem, _ plan: LoadPlanner.Plan) -> (warm: Double, first: Double) {
        (LoadPlanner.timeline(p, resident: plan.resident, issueStep: plan.issueStep, waitStep: plan.waitStep).makespan,
         LoadPlanner.timeline(p, resident: plan.resident, issueStep: plan.issueStep, waitStep: plan.waitStep,
                              firstRun: true).makespan)
    }

    /// What the format requires of a coalesced plan (and the runtime relies on): the same residency, every
    /// streamed copy issued by its first use, every wait between the issue step (any load: the first run copies
    /// resident ones too) and the first use, and a placement within the capacity.
    func coalesceViolations(_ out: LoadPlanner.Plan, from plan: LoadPlanner.Plan, _ p: ScheduleProblem,
                            capacity: UInt64?) -> [String] {
        var problems: [String] = []
        guard let waits = out.waitStep, waits.count == p.loads.count, out.issueStep.count == p.loads.count else {
            return ["waits missing or of the wrong length: \(String(describing: out.waitStep))"]
        }
        if out.resident != plan.resident { problems.append("residency changed: \(plan.resident) -> \(out.resident)") }
        for (i, load) in p.loads.enumerated() {
            if !(0...load.firstUse).contains(out.issueStep[i]) {
                problems.append("load \(i) issued at \(out.issueStep[i]), first use \(load.firstUse)")
            }
            if !(out.issueStep[i]...max(out.issueStep[i], load.firstUse)).contains(waits[i]) {
                problems.append("load \(i) (\(out.resident[i] ? "resident" : "streamed")) waited for at \(waits[i]), "
                                + "issued at \(out.issueStep[i]), first use \(load.firstUse)")
            }
            if out.resident[i], out.issueStep[i] != plan.issueStep[i] {
                problems.append("resident load \(i) issue step moved")
            }
        }
        if let capacity, LoadPlanner.place(p, out).weightSpaceBytes > capacity {
            problems.append("weight space \(LoadPlanner.place(p, out).weightSpaceBytes) exceeds capacity \(capacity)")
        }
        return problems
    }

    /// On random instances and plans (the heuristic's, under a random capacity, and random ones under the capacity
    /// of their own placement), coalescing never makes the warm or the first run slower, keeps every wait between
    /// its issue step and its first use, and stays within the capacity; it often makes them faster.
    func testCoalesceNeverSlowsARunAndKeepsTheRules() throws {
        var random = Random(seed: 20261206)
        var faster = 0
        var total = 0
        for instance in 0..<150 {
            let p = randomBoundaryProblem(&random)
            let capacity = p.capacityBytes!
            var inputs: [(String, LoadPlanner.Plan, UInt64)] = [
                ("heuristic", LoadPlanner.heuristic(p, capacity: capacity, deadline: .unlimited), capacity),
            ]
            let plan = randomPlan(&random, p)
            inputs.append(("random", plan, LoadPlanner.place(p, plan).weightSpaceBytes))
            for (kind, plan, capacity) in inputs {
                let context = "instance \(instance) (\(kind), \(p.loads.count) loads, \(p.stepSeconds.count) steps)"
                XCTAssertLessThanOrEqual(LoadPlanner.place(p, plan).weightSpaceBytes, capacity, context)
                let out = LoadPlanner.coalesce(p, plan, capacity: capacity, deadline: .unlimited)
                for problem in coalesceViolations(out, from: plan, p, capacity: capacity) {
                    XCTFail("\(context): \(problem)")
                }
                let before = makespans(p, plan)
                let after = makespans(p, out)
                XCTAssertLessThanOrEqual(after.warm, before.warm * (1 + 1e-7), "\(context): warm run slower")
                XCTAssertLessThanOrEqual(after.first, before.first * (1 + 1e-7), "\(context): first run slower")
                XCTAssertEqual(LoadPlanner.simulate(p, resident: out.resident, issueStep: out.issueStep,
                                                    waitStep: out.waitStep), after.warm, "\(context)")
                total += 1
                if after.warm + after.first < (before.warm + before.first) * (1 - 1e-9) { faster += 1 }
            }
        }
        print("LoadPlanner.coalesce: faster on \(faster) of \(total) plans")
        XCTAssertGreaterThan(faster, total / 4, "coalescing should speed up many of these plans")
    }

    /// Without a capacity (every plan fits), the same holds, also for the all-resident plan `solve` coalesces.
    func testCoalesceWithoutCapacity() {
        var random = Random(seed: 31)
        for instance in 0..<60 {
            let p = randomBoundaryProblem(&random)
            var plans = [randomPlan(&random, p)]
            plans.append(LoadPlanner.Plan(resident: p.loads.map { _ in true }, issueStep: p.loads.map { _ in 0 }))
            for plan in plans {
                let out = LoadPlanner.coalesce(p, plan, capacity: nil, deadline: .unlimited)
                for problem in coalesceViolations(out, from: plan, p, capacity: nil) {
                    XCTFail("instance \(instance): \(problem)")
                }
                let before = makespans(p, plan), after = makespans(p, out)
                XCTAssertLessThanOrEqual(after.warm, before.warm * (1 + 1e-7), "instance \(instance)")
                XCTAssertLessThanOrEqual(after.first, before.first * (1 + 1e-7), "instance \(instance)")
            }
        }
    }

    /// Boundaries that cost nothing are left alone: waits at the first uses, the same issue steps and residency.
    func testCoalesceWithoutSubmissionCostChangesNothing() {
        var random = Random(seed: 12)
        for instance in 0..<60 {
            let p = randomBoundaryProblem(&random, submissionSeconds: 0)
            let capacity = p.capacityBytes!
            for plan in [LoadPlanner.heuristic(p, capacity: capacity, deadline: .unlimited), randomPlan(&random, p)] {
                let out = LoadPlanner.coalesce(p, plan, capacity: capacity, deadline: .unlimited)
                XCTAssertEqual(out.waitStep, p.loads.map(\.firstUse), "instance \(instance)")
                XCTAssertEqual(out.issueStep, plan.issueStep, "instance \(instance)")
                XCTAssertEqual(out.resident, plan.resident, "instance \(instance)")
            }
        }
    }

    /// A deadline already past returns the plan itself, with waits at the first uses.
    func testCoalescePastItsDeadlineReturnsThePlan() {
        var random = Random(seed: 4)
        let p = randomBoundaryProblem(&random)
        let plan = randomPlan(&random, p)
        let out = LoadPlanner.coalesce(p, plan, capacity: nil, deadline: .spent)
        XCTAssertEqual(out, LoadPlanner.Plan(resident: plan.resident, issueStep: plan.issueStep,
                                             waitStep: p.loads.map(\.firstUse)))
    }

    /// Four steps of 100 µs. Load 0 (2 kB, read by steps 0…1) fills the capacity until step 1; loads 1 and 2 (1 kB
    /// each, 1 µs copies) are read by steps 2 and 3 and issued just in time, so the plan cuts at 2 and at 3. Neither
    /// can be issued before step 2 (no room), and load 1 cannot be waited for after step 2 (its first use); but load
    /// 2 can be issued and waited for at step 2 along with load 1 (2 kB live there): one boundary, 20 µs, less.
    func testCoalesceMergesTwoLateCopiesBehindOneBoundary() throws {
        let submission = 20e-6
        let p = ScheduleProblem(stepSeconds: Array(repeating: 1e-4, count: 4),
                                loads: [.init(bytes: 2000, firstUse: 0, lastUse: 1), .init(bytes: 1000, firstUse: 2, lastUse: 2),
                                        .init(bytes: 1000, firstUse: 3, lastUse: 3)],
                                bandwidth: 1e9, capacityBytes: 2000, slotAlignment: 1, submissionSeconds: submission)
        let plan = LoadPlanner.Plan(resident: [false, false, false], issueStep: [0, 2, 3])
        XCTAssertEqual(LoadPlanner.place(p, plan).weightSpaceBytes, 2000)
        let before = LoadPlanner.simulate(p, resident: plan.resident, issueStep: plan.issueStep)
        // Step 0 waits 2 µs for load 0; boundaries at 2 and 3 (load 2's copy lands within its own).
        XCTAssertEqual(before, 4e-4 + 2e-6 + 2 * submission, accuracy: 1e-12)

        let out = LoadPlanner.coalesce(p, plan, capacity: 2000, deadline: .unlimited)
        XCTAssertEqual(out.resident, plan.resident)
        XCTAssertEqual(out.issueStep, [0, 2, 2])
        XCTAssertEqual(out.waitStep, [0, 2, 2])
        XCTAssertLessThanOrEqual(LoadPlanner.place(p, out).weightSpaceBytes, 2000)
        let after = LoadPlanner.simulate(p, resident: out.resident, issueStep: out.issueStep, waitStep: out.waitStep)
        XCTAssertEqual(after, 4e-4 + 2e-6 + submission, accuracy: 1e-12, "both 1 µs copies land within one boundary")
        XCTAssertEqual(before - after, submission, accuracy: 1e-12)
        // The first run copies the same loads (none is resident): the same saving.
        XCTAssertEqual(LoadPlanner.timeline(p, resident: out.resident, issueStep: out.issueStep, waitStep: out.waitStep,
                                            firstRun: true).makespan, after, accuracy: 1e-15)

        // With room for everything, nothing needs a boundary at all: every copy issued and waited for at step 0.
        let roomy = LoadPlanner.coalesce(p, plan, capacity: 4000, deadline: .unlimited)
        XCTAssertEqual(roomy.issueStep, [0, 0, 0])
        XCTAssertEqual(roomy.waitStep, [0, 0, 0])
        XCTAssertEqual(LoadPlanner.simulate(p, resident: roomy.resident, issueStep: roomy.issueStep,
                                            waitStep: roomy.waitStep), 4e-4 + 4e-6, accuracy: 1e-12)
    }

    /// A streamed load issued before its first use makes two boundaries (issue, first use); its wait moved to the
    /// issue step (or its issue to its first use) leaves one, 20 µs less less the 1 µs copy the step now waits for.
    func testCoalesceJoinsTheIssueAndTheWaitOfOneCopy() {
        let p = ScheduleProblem(stepSeconds: Array(repeating: 1e-4, count: 4),
                                loads: [.init(bytes: 1000, firstUse: 0, lastUse: 1), .init(bytes: 1000, firstUse: 3, lastUse: 3)],
                                bandwidth: 1e9, capacityBytes: 1000, slotAlignment: 1, submissionSeconds: 20e-6)
        let plan = LoadPlanner.Plan(resident: [false, false], issueStep: [0, 2])
        let before = LoadPlanner.simulate(p, resident: plan.resident, issueStep: plan.issueStep)
        XCTAssertEqual(before, 4e-4 + 1e-6 + 2 * 20e-6, accuracy: 1e-12)
        let out = LoadPlanner.coalesce(p, plan, capacity: 1000, deadline: .unlimited)
        XCTAssertTrue(out.issueStep == [0, 2] && out.waitStep == [0, 2] || out.issueStep == [0, 3] && out.waitStep == [0, 3],
                      "\(out)")
        let after = LoadPlanner.simulate(p, resident: out.resident, issueStep: out.issueStep, waitStep: out.waitStep)
        XCTAssertEqual(after, 4e-4 + 1e-6 + 20e-6, accuracy: 1e-12)
    }

    /// `solve` reports the simulated time of the schedule it returns, wait steps included, and its waits keep the
    /// rules; on random instances with costly boundaries and without a capacity.
    func testSolvePredictsItsOwnWaits() throws {
        var random = Random(seed: 77)
        var moved = 0
        for instance in 0..<30 {
            var p = randomBoundaryProblem(&random)
            if instance % 5 == 4 { p.capacityBytes = nil }
            let s = try LoadPlanner.solve(p, options: .init(workUnits: 20_000_000))
            let context = "instance \(instance) (\(s.method))"
            let waits = try XCTUnwrap(s.waitStep, context)
            XCTAssertEqual(s.predictedSeconds, LoadPlanner.simulate(p, resident: s.resident, issueStep: s.issueStep,
                                                                    waitStep: s.waitStep), context)
            let plan = LoadPlanner.Plan(resident: s.resident, issueStep: s.issueStep, waitStep: waits)
            for problem in coalesceViolations(plan, from: plan, p, capacity: p.capacityBytes) {
                XCTFail("\(context): \(problem)")
            }
            XCTAssertEqual(LoadPlanner.place(p, plan).weightSpaceBytes, s.weightSpaceBytes, context)
            XCTAssertEqual(LoadPlanner.place(p, plan).offsets, s.offsets, context)
            if waits != p.loads.map(\.firstUse) { moved += 1 }
        }
        XCTAssertGreaterThan(moved, 0, "some solved schedule should wait before a first use")
        // Boundaries that cost nothing: waits at the first uses.
        var p = randomBoundaryProblem(&random, submissionSeconds: 0)
        let s = try LoadPlanner.solve(p, options: .init(workUnits: 20_000_000))
        XCTAssertEqual(s.waitStep ?? p.loads.map(\.firstUse), p.loads.map(\.firstUse))
        p.capacityBytes = nil
        let unbounded = try LoadPlanner.solve(p)
        XCTAssertEqual(unbounded.waitStep ?? p.loads.map(\.firstUse), p.loads.map(\.firstUse))
        XCTAssertEqual(unbounded.predictedSeconds, p.stepSeconds.reduce(0, +), accuracy: 1e-12)
    }

    /// Coalescing is part of `solve` and its budget: on the GPT-sized instance with 20 µs boundaries its waits keep
    /// the rules, and the plan is the same when solved again.
    func testGPTSizedInstanceWithBoundariesKeepsTheRules() throws {
        var p = gptLike(fraction: 1.0 / 3)
        p.submissionSeconds = 20e-6
        let s = try LoadPlanner.solve(p, options: Self.gptWork)
        let plan = LoadPlanner.Plan(resident: s.resident, issueStep: s.issueStep, waitStep: s.waitStep)
        for problem in coalesceViolations(plan, from: plan, p, capacity: p.capacityBytes).prefix(5) {
            XCTFail("gpt-like with boundaries: \(problem)")
        }
        XCTAssertEqual(s.predictedSeconds, LoadPlanner.simulate(p, resident: s.resident, issueStep: s.issueStep,
                                                                waitStep: s.waitStep))
        let uncoalesced = LoadPlanner.simulate(p, resident: s.resident, issueStep: s.issueStep)
        print("LoadPlanner gpt-like with 20 µs boundaries: solve \(s.searchSeconds) s (\(s.method)), predicted "
              + "\(s.predictedSeconds * 1e3) ms (same issue steps, waits at first uses: \(uncoalesced * 1e3) ms), "
              + "\(zip(s.waitStep ?? [], p.loads).filter { $0 != $1.firstUse }.count) waits moved")
        XCTAssertFalse(s.stoppedByClock)
        let again = try LoadPlanner.solve(p, options: Self.gptWork)
        XCTAssertEqual(again.waitStep, s.waitStep)
        XCTAssertEqual(again.issueStep, s.issueStep)
    }
}

extension SearchDeadline {
    /// A search that runs until it finishes (an hour of wall clock at most): exact answers for the tests.
    static var unlimited: SearchDeadline {
        SearchBudget(units: Int.max, seconds: 3600).deadline(1)
    }

    /// A search with nothing left to spend.
    static var spent: SearchDeadline {
        SearchBudget(units: 0, seconds: 3600).deadline(1)
    }
}

// The load plan as data: what the planner is given (ScheduleProblem) and what it returns (LoadSchedule).
// LoadPlanner.swift explains the model; LoadPlanner.simulate is its one source of truth for time.

import FMBFormat

/// One instance of DESIGN.md's schedule problem: kernels in order with predicted times, the weight images
/// they read, the host→device bandwidth and the device memory left to weights.
public struct ScheduleProblem: Sendable {
    /// One weight image, read by steps `firstUse...lastUse`.
    public struct Load: Sendable, Equatable {
        /// Slot bytes this image occupies on the device.
        public var bytes: UInt64
        public var firstUse: Int
        public var lastUse: Int

        public init(bytes: UInt64, firstUse: Int, lastUse: Int) {
            self.bytes = bytes
            self.firstUse = firstUse
            self.lastUse = lastUse
        }
    }

    /// Predicted time of each step (kernel), in order, seconds.
    public var stepSeconds: [Double]
    public var loads: [Load]
    /// Host→device bytes/s.
    public var bandwidth: Double
    /// Device bytes for weights (budget minus arena); nil = unbounded.
    public var capacityBytes: UInt64?
    /// No slot may straddle a multiple of this: each segment is one device allocation.
    public var segmentBytes: UInt64
    /// Slot offsets are multiples of this.
    public var slotAlignment: UInt64
    /// GPU time lost where the runtime cuts the steps into another compute submission (a timeline-semaphore
    /// signal and wait between two steps): at every step where copies are issued and every first use of a
    /// streamed image (`LoadPlanner.simulate`). `CostModel.submissionSeconds`.
    public var submissionSeconds: Double

    public init(stepSeconds: [Double], loads: [Load], bandwidth: Double, capacityBytes: UInt64?,
                segmentBytes: UInt64 = 1 << 32, slotAlignment: UInt64 = 256, submissionSeconds: Double = 0) {
        self.submissionSeconds = submissionSeconds
        self.stepSeconds = stepSeconds
        self.loads = loads
        self.bandwidth = bandwidth
        self.capacityBytes = capacityBytes
        self.segmentBytes = segmentBytes
        self.slotAlignment = slotAlignment
    }

    /// Bytes that can move while step k runs.
    public func loadCapacity(step k: Int) -> Double {
        stepSeconds[k] * bandwidth
    }

    /// Seconds the transfer queue needs for load i.
    func transferSeconds(_ i: Int) -> Double {
        Double(loads[i].bytes) / bandwidth
    }

    /// Problems the planner cannot work with, as the error a user sees.
    func validate() throws {
        func fail(_ message: String) -> CompileError { CompileError(file: "<schedule>", message) }
        guard bandwidth > 0, bandwidth.isFinite else { throw fail("transfer bandwidth must be positive, got \(bandwidth)") }
        guard segmentBytes > 0 else { throw fail("segment size must be positive") }
        guard submissionSeconds >= 0, submissionSeconds.isFinite else {
            throw fail("submission cost must be finite and non-negative, got \(submissionSeconds)")
        }
        guard slotAlignment > 0, segmentBytes % slotAlignment == 0 else {
            throw fail("slot alignment \(slotAlignment) must be positive and divide the segment size \(segmentBytes)")
        }
        for (k, t) in stepSeconds.enumerated() where !(t >= 0 && t.isFinite) {
            throw fail("step \(k) has predicted time \(t) s; step times must be finite and non-negative")
        }
        for (i, load) in loads.enumerated() {
            guard 0 <= load.firstUse, load.firstUse <= load.lastUse, load.lastUse < stepSeconds.count else {
                throw fail("load \(i) is read by steps \(load.firstUse)...\(load.lastUse), outside the \(stepSeconds.count) steps")
            }
            guard load.bytes <= segmentBytes else {
                throw fail("load \(i) needs \(load.bytes) bytes, more than one allocation segment (\(segmentBytes) bytes)")
            }
        }
    }
}

/// The solved plan: which images stay resident, when every streamed image's copy is issued, and where each
/// image's slot lies in the one weight space.
public struct LoadSchedule: Sendable, Equatable {
    /// The bundle's own record of which planner won (`Placement.Method`, stored in the placement section).
    public typealias Method = Placement.Method

    /// Per load: loaded once and kept across runs (warm runs do not stream it).
    public var resident: [Bool]
    /// Per load: the warm-run copy may start once steps 0..<issueStep have completed (≤ firstUse). For a
    /// resident load: the issue step of the first (cold) run, which loads everything; the planner uses 0
    /// (queue it at the start; the queue's first-use order then lands it as early as it can).
    public var issueStep: [Int]
    /// Per load: slot offset in the weight space.
    public var offsets: [UInt64]
    /// Highest slot end.
    public var weightSpaceBytes: UInt64
    /// LoadPlanner.simulate of a warm run.
    public var predictedSeconds: Double
    /// max(Σ stepSeconds, streamed bytes / bandwidth).
    public var lowerBoundSeconds: Double
    public var method: Method
    /// Per load, the step whose compute submission waits for its copy (`Schedule.waitStep`); nil: its first use.
    public var waitStep: [Int]?
    /// The wall-clock safety net, not the work budget, ended the search: this plan may differ between compiles.
    public var stoppedByClock = false
    /// Work units the search spent (`SearchBudget`), and its wall-clock seconds.
    public var searchUnits = 0
    public var searchSeconds = 0.0

    public init(resident: [Bool], issueStep: [Int], offsets: [UInt64], weightSpaceBytes: UInt64,
                predictedSeconds: Double, lowerBoundSeconds: Double, method: Method, waitStep: [Int]? = nil) {
        self.waitStep = waitStep
        self.resident = resident
        self.issueStep = issueStep
        self.offsets = offsets
        self.weightSpaceBytes = weightSpaceBytes
        self.predictedSeconds = predictedSeconds
        self.lowerBoundSeconds = lowerBoundSeconds
        self.method = method
    }

    /// Bytes every warm run copies.
    public func streamedBytes(_ problem: ScheduleProblem) -> UInt64 {
        problem.loads.indices.reduce(0) { resident[$1] ? $0 : $0 + problem.loads[$1].bytes }
    }
}

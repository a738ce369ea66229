import CVulkan

/// Profiles and traces of a run: GPU timestamps read back and turned into seconds, copy bandwidth measurements,
/// and the run's timeline (`SessionOptions.profile`, `SessionOptions.trace`).
extension Session {
    /// Per step, its start and end timestamps on the compute queue (device ticks), when profiling or tracing.
    func stepTicks() throws -> [(start: UInt64, end: UInt64)]? {
        guard let queryPool else { return nil }
        let count = bundle.bundle.program.count
        guard count > 0 else { return [] }
        let values = try queryPool.results()
        return (0..<count).map { (values[2 * $0], values[2 * $0 + 1]) }
    }

    func stepSeconds(_ ticks: [(start: UInt64, end: UInt64)]) -> [Double] {
        ticks.map { ticksToSeconds($0.end, minus: $0.start, family: device.computeFamily) }
    }

    /// Seconds between two timestamps of a queue family (valid bits masked; a wrap counts as negative).
    func ticksToSeconds(_ a: UInt64, minus b: UInt64, family: UInt32) -> Double {
        let bits = device.physical.queueFamilies[Int(family)].timestampValidBits
        let period = Double(device.limits.timestampPeriod) * 1e-9
        if bits >= 64 { return Double(Int64(bitPattern: a &- b)) * period }
        let mask = (UInt64(1) << bits) - 1
        let d = (a &- b) & mask
        return (d > mask / 2 ? -Double(mask - d + 1) : Double(d)) * period
    }

    /// The time the transfer queue spent copying this run's chunks: the union of the copies' intervals from their
    /// timestamps (a copy's TOP_OF_PIPE start may be stamped while an earlier copy still runs, so their sum could
    /// count that time twice), else the host's wall time from the first copy's submission until it saw the last one
    /// land.
    func transferTime(_ copier: ChunkStreamer?, _ counters: ChunkStreamer.Counters) throws
        -> (Double?, CostProfile.TransferTiming) {
        guard let copier, counters.chunks > 0 else { return (nil, .none) }
        if let ticks = try copier.copyTicks(), let base = ticks.map(\.start).min() {
            let family = device.transferFamily
            let intervals = ticks.map { (ticksToSeconds($0.start, minus: base, family: family),
                                         ticksToSeconds($0.end, minus: base, family: family)) }
            return (Session.unionLength(intervals), .gpuTimestamps)
        }
        guard let first = counters.firstSubmit, let landed = copiesLanded else { return (nil, .none) }
        return (landed - first, .hostWall)
    }

    /// The length of the union of intervals (start, end); empty or reversed ones count nothing.
    static func unionLength(_ intervals: [(start: Double, end: Double)]) -> Double {
        var total = 0.0
        var until = -Double.infinity
        for (start, end) in intervals.sorted(by: { $0.start < $1.start }) where end > start {
            if start >= until {
                total += end - start
                until = end
            } else if end > until {
                total += end - until
                until = end
            }
        }
        return total
    }

    /// Appends a host-main event from `start` to now, when tracing.
    func traceHost(_ name: String, from start: Double, _ args: [String: String] = [:]) {
        guard options.trace else { return }
        let now = monotonicSeconds()
        hostEvents.append(RunTrace.Event(track: .hostMain, name: name, start: start, duration: now - start, args: args))
    }

    /// The run's timeline: kernels and copies from their timestamps put on the host clock, the streamer's host
    /// events, the main thread's. With calibrated timestamps the device clock is sampled with CLOCK_MONOTONIC
    /// after the run; without, the first kernel is placed at its batch's submission (a lower bound: the GPU
    /// starts after the submit), and copies use the same offset (one device timestamp domain).
    func trace(steps: [(start: UInt64, end: UInt64)], copier: ChunkStreamer?, counters: ChunkStreamer.Counters,
               start: Double) throws -> RunTrace {
        var trace = RunTrace()
        trace.events = hostEvents + (copier?.events ?? [])
        trace.add(.hostMain, "run", from: start, to: monotonicSeconds())
        let copies = try copier?.copyTicks() ?? []
        // Host seconds of a device timestamp: reference tick ↔ reference host time.
        var reference: (ticks: UInt64, host: Double)? = nil
        if let sample = device.calibratedTimestamps?.sample() {
            reference = (sample.deviceTicks, sample.hostSeconds)
            trace.clock = "calibrated: VK_EXT/KHR_calibrated_timestamps (device ↔ CLOCK_MONOTONIC, max deviation "
                + "\(Int((sample.deviationSeconds * 1e9).rounded())) ns)"
        } else if let first = steps.first, let submit = firstComputeSubmit {
            reference = (first.start, submit)
            trace.clock = "aligned: no calibrated timestamps; the first kernel is placed at its batch's submission "
                + "(GPU times are relative; copies share the device clock)"
        } else if let first = copies.first, let submit = counters.firstSubmit {
            reference = (first.start, submit)
            trace.clock = "aligned: no calibrated timestamps; the first copy is placed at its submission"
        }
        guard let reference else {
            trace.clock = "none: no GPU timestamps"
            return trace
        }
        let program = bundle.bundle.program
        for (k, t) in steps.enumerated() {
            let begin = reference.host + ticksToSeconds(t.start, minus: reference.ticks, family: device.computeFamily)
            let seconds = ticksToSeconds(t.end, minus: t.start, family: device.computeFamily)
            let step = program[k]
            let kernel = bundle.bundle.kernels[Int(step.kernel)].name
            trace.events.append(RunTrace.Event(
                track: .computeQueue, name: step.label.isEmpty ? kernel : step.label, start: begin, duration: max(seconds, 0),
                args: ["step": "\(k)", "kernel": kernel, "groups": step.groups.map(String.init).joined(separator: "×")]))
        }
        if let copier {
            for (ordinal, t) in copies.enumerated() {
                let begin = reference.host + ticksToSeconds(t.start, minus: reference.ticks, family: device.transferFamily)
                let seconds = ticksToSeconds(t.end, minus: t.start, family: device.transferFamily)
                let label = copier.copyLabel(ordinal)
                trace.events.append(RunTrace.Event(track: .transferQueue, name: label.name, start: begin,
                                                   duration: max(seconds, 0), args: label.args))
            }
        }
        return trace
    }
}

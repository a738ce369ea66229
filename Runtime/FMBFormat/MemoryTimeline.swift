// The planned device memory of a bundle over its steps, as numbers and as a hand-written SVG chart
// (`fmc inspect --timeline memory.svg`). Pure string building: no Vulkan, no dependency.

/// Planned device bytes per step: the arena, resident weights and the streamed weights whose slots are live.
public struct MemoryTimeline: Equatable, Sendable {
    /// One stacked area of the chart.
    public struct Series: Equatable, Sendable {
        public var name: String
        /// Fill colour (CSS).
        public var color: String
        /// Bytes at each step.
        public var bytes: [UInt64]
    }

    /// Bottom to top: arena, resident weights, streamed weights live at each step.
    public var series: [Series]
    /// The budget the plan was made for (0: unbounded).
    public var budgetBytes: UInt64
    public var stepCount: Int

    /// The plan of `bundle`: the arena for the whole run; resident slots (`placement.slots`, loaded once and
    /// kept) at every step; a streamed slot from its window's first step through its last
    /// (`FMBundle.imageWindows()`). Without a placement every image counts as streamed with its own bytes.
    /// Streamed slots whose windows do not overlap may share bytes, so the sum is the bytes live, which the
    /// weight space bounds.
    public init(bundle: FMBundle) {
        let steps = bundle.program.count
        stepCount = steps
        budgetBytes = bundle.schedule.budgetBytes
        let windows = bundle.imageWindows()
        var resident: UInt64 = 0
        var streamed = [UInt64](repeating: 0, count: steps)
        for i in bundle.images.indices {
            let slot = bundle.placement.flatMap { i < $0.slots.count ? $0.slots[i] : nil }
            let size = slot?.size ?? bundle.images[i].byteSize
            if slot?.resident == true {
                resident += size
            } else if i < windows.count {
                for k in windows[i] where k >= 0 && k < steps { streamed[k] += size }
            }
        }
        series = [
            Series(name: "arena", color: "#8da0cb", bytes: Array(repeating: bundle.meta.arenaSize, count: steps)),
            Series(name: "resident weights", color: "#66c2a5", bytes: Array(repeating: resident, count: steps)),
            Series(name: "streamed weights (live)", color: "#fc8d62", bytes: streamed),
        ]
    }

    /// Total planned bytes at each step.
    public var totals: [UInt64] {
        (0..<stepCount).map { k in series.reduce(0) { $0 + $1.bytes[k] } }
    }

    /// The time average of `totals`: each step weighted by its duration (`stepSeconds`, e.g. measured GPU times;
    /// nil or a count that does not match weighs every step alike). The paper's "average memory".
    public func timeAverage(stepSeconds: [Double]? = nil) -> Double {
        let totals = totals
        guard !totals.isEmpty else { return 0 }
        let weights = stepSeconds.flatMap { $0.count == totals.count && $0.reduce(0, +) > 0 ? $0 : nil }
            ?? [Double](repeating: 1, count: totals.count)
        return zip(totals, weights).reduce(0) { $0 + Double($1.0) * $1.1 } / weights.reduce(0, +)
    }

    // MARK: SVG

    /// An SVG chart: one `<polygon class="series">` per series (stacked, a step k spans x ∈ [k, k+1)), a
    /// `<line class="budget">` at the budget when there is one, the y axis in MiB and the x axis in steps.
    public func svg(title: String) -> String {
        let width = 960.0, height = 480.0
        let left = 80.0, right = 200.0, top = 40.0, bottom = 50.0
        let plotW = width - left - right, plotH = height - top - bottom
        let peak = Double(max(totals.max() ?? 0, budgetBytes, 1))
        let yMax = niceCeiling(peak * 1.05 / mib)
        let steps = Double(max(stepCount, 1))
        func x(_ step: Double) -> Double { left + step / steps * plotW }
        func y(_ bytes: Double) -> Double { top + plotH - bytes / mib / yMax * plotH }

        var out = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" \
        viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="12">
        <title>\(escape(title))</title>
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(fmt(left))" y="24" font-size="15">\(escape(title))</text>

        """
        // Stacked areas.
        var below = [Double](repeating: 0, count: stepCount)
        for s in series {
            let above = zip(below, s.bytes).map { $0 + Double($1) }
            var points: [String] = []
            for k in 0..<stepCount {
                points.append("\(fmt(x(Double(k)))),\(fmt(y(above[k])))")
                points.append("\(fmt(x(Double(k + 1)))),\(fmt(y(above[k])))")
            }
            for k in (0..<stepCount).reversed() {
                points.append("\(fmt(x(Double(k + 1)))),\(fmt(y(below[k])))")
                points.append("\(fmt(x(Double(k)))),\(fmt(y(below[k])))")
            }
            out += "<polygon class=\"series\" data-name=\"\(escape(s.name))\" fill=\"\(s.color)\" "
                + "stroke=\"none\" points=\"\(points.joined(separator: " "))\"/>\n"
            below = above
        }
        // Axes, ticks and labels.
        out += "<line x1=\"\(fmt(left))\" y1=\"\(fmt(top + plotH))\" x2=\"\(fmt(left + plotW))\" y2=\"\(fmt(top + plotH))\" stroke=\"black\"/>\n"
        out += "<line x1=\"\(fmt(left))\" y1=\"\(fmt(top))\" x2=\"\(fmt(left))\" y2=\"\(fmt(top + plotH))\" stroke=\"black\"/>\n"
        for i in 0...5 {
            let value = yMax * Double(i) / 5
            let ty = top + plotH - Double(i) / 5 * plotH
            out += "<line x1=\"\(fmt(left - 4))\" y1=\"\(fmt(ty))\" x2=\"\(fmt(left))\" y2=\"\(fmt(ty))\" stroke=\"black\"/>"
            out += "<text x=\"\(fmt(left - 8))\" y=\"\(fmt(ty + 4))\" text-anchor=\"end\">\(fmtMiB(value))</text>\n"
        }
        let stepTick = max(1, Int(niceCeiling(steps / 10)))
        for k in stride(from: 0, through: stepCount, by: stepTick) {
            let tx = x(Double(k))
            out += "<line x1=\"\(fmt(tx))\" y1=\"\(fmt(top + plotH))\" x2=\"\(fmt(tx))\" y2=\"\(fmt(top + plotH + 4))\" stroke=\"black\"/>"
            out += "<text x=\"\(fmt(tx))\" y=\"\(fmt(top + plotH + 18))\" text-anchor=\"middle\">\(k)</text>\n"
        }
        out += "<text x=\"\(fmt(left + plotW / 2))\" y=\"\(fmt(height - 10))\" text-anchor=\"middle\">step</text>\n"
        out += "<text x=\"20\" y=\"\(fmt(top + plotH / 2))\" text-anchor=\"middle\" "
            + "transform=\"rotate(-90 20 \(fmt(top + plotH / 2)))\">device memory (MiB)</text>\n"
        // The budget.
        if budgetBytes > 0 {
            let by = y(Double(budgetBytes))
            out += "<line class=\"budget\" x1=\"\(fmt(left))\" y1=\"\(fmt(by))\" x2=\"\(fmt(left + plotW))\" "
                + "y2=\"\(fmt(by))\" stroke=\"#d62728\" stroke-width=\"2\" stroke-dasharray=\"6 4\"/>\n"
        }
        // Legend.
        var ly = top + 10
        for s in series.reversed() {
            out += "<rect x=\"\(fmt(left + plotW + 16))\" y=\"\(fmt(ly - 10))\" width=\"12\" height=\"12\" fill=\"\(s.color)\"/>"
            out += "<text x=\"\(fmt(left + plotW + 34))\" y=\"\(fmt(ly))\">\(escape(s.name))</text>\n"
            ly += 20
        }
        let budgetText = budgetBytes > 0 ? "budget \(fmtMiB(Double(budgetBytes) / mib)) MiB" : "no budget (unbounded)"
        if budgetBytes > 0 {
            out += "<line x1=\"\(fmt(left + plotW + 16))\" y1=\"\(fmt(ly - 4))\" x2=\"\(fmt(left + plotW + 28))\" "
                + "y2=\"\(fmt(ly - 4))\" stroke=\"#d62728\" stroke-width=\"2\"/>"
        }
        out += "<text x=\"\(fmt(left + plotW + 34))\" y=\"\(fmt(ly))\">\(budgetText)</text>\n"
        out += "<text x=\"\(fmt(left + plotW + 16))\" y=\"\(fmt(ly + 20))\">peak \(fmtMiB(Double(totals.max() ?? 0) / mib)) MiB</text>\n"
        out += "</svg>\n"
        return out
    }
}

private let mib = 1048576.0

/// The smallest 1, 2 or 5 × 10ⁿ at least `value` (value > 0).
private func niceCeiling(_ value: Double) -> Double {
    guard value > 0 else { return 1 }
    var base = 1.0
    while base * 10 <= value { base *= 10 }
    while base > value { base /= 10 }
    for m in [1.0, 2.0, 5.0, 10.0] where base * m >= value { return base * m }
    return base * 10
}

/// Two decimals at most, no exponent (SVG coordinates).
private func fmt(_ v: Double) -> String {
    let r = (v * 100).rounded() / 100
    return r == r.rounded() ? String(Int(r)) : String(r)
}

private func fmtMiB(_ v: Double) -> String {
    v >= 10 || v == 0 ? String(Int(v.rounded())) : fmt(v)
}

private func escape(_ text: String) -> String {
    var out = ""
    for c in text {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        default: out.append(c)
        }
    }
    return out
}
